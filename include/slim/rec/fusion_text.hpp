// slim — fusion policies that bring item text and user rationales into a backbone: `text_concat` (the SLIM
// paper's "+text": e_i = id_i + g_l(t_i)), `slim_fusion` (also s = h + g_f(r_u)) and `text_matching`
// (ID-agnostic: e_i = g_l(t_i)). Formulas and conventions: docs/rec.md, "Fusion".
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <algorithm>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "slim/core/error.hpp"
#include "slim/core/tensor_view.hpp"
#include "slim/nn/context.hpp"
#include "slim/nn/dropout.hpp"
#include "slim/nn/init.hpp"
#include "slim/nn/linear.hpp"
#include "slim/nn/parameter.hpp"
#include "slim/rec/fusion.hpp"

namespace slim::rec {

/// Settings shared by the text fusions. The defaults are what a backbone gets from the four-argument
/// constructor; change them after construction with `model.fusion.configure(cfg)`.
struct text_fusion_config {
  /// Dropout on the projected text g_l(t_i) and the projected rationale g_f(r_u), in training only (one
  /// mask per item and per distinct user of a step). 0 (the default): none.
  float dropout = 0.0f;
};

namespace detail {

/// Dropout layer numbers of the fusion modules (distinct from the backbones' 0, 1 + 2i and 64 + i).
inline constexpr std::uint32_t fusion_item_dropout_layer = 0x7f10;
inline constexpr std::uint32_t fusion_user_dropout_layer = 0x7f11;

/// `items` after checking it is a (num_items+1, e > 0) table.
template <class T>
matrix_view<const T> checked_item_text(matrix_view<const T> items, index_t dim, index_t num_items, const char* where) {
  require(dim > 0 && num_items >= 1, where, "dim and num_items must be positive, got ", dim, " and ", num_items);
  require_valid(items, where, "side.items");
  require(items.extent(0) == num_items + 1 && items.extent(1) > 0, where, "side.items has shape ", shape_string(items),
          ": this fusion needs an item text embedding table of shape (", num_items + 1,
          ", e) with e > 0 (row i: item i, row 0: padding)");
  return items;
}

/// `users` after checking it is a (num_users > 0, e > 0) table.
template <class T>
matrix_view<const T> checked_user_text(matrix_view<const T> users, const char* where) {
  require_valid(users, where, "side.users");
  require(users.extent(0) > 0 && users.extent(1) > 0, where, "side.users has shape ", shape_string(users),
          ": this fusion needs a rationale embedding table of shape (num_users, e), both positive");
  return users;
}

/// The item side of the text fusions:  e_0 = 0;  e_i = [id_i +] drop(g_l(t_i)), i = 1..N.
/// g_l: linear e_item -> dim over the rows 1..N of side.items (row 0 is never read).
template <class Backend, class T>
class text_item_side {
 public:
  text_item_side(const std::string& prefix, index_t dim, index_t num_items, matrix_view<const T> items, bool with_ids,
                 float dropout, const char* where)
      : g_l(prefix + ".g_l", checked_item_text(items, dim, num_items, where).extent(1), dim),
        text_(nn::row_range(items, 1, num_items)),
        dim_(dim),
        num_items_(num_items),
        with_ids_(with_ids),
        where_(where),
        drop_(dropout, fusion_item_dropout_layer) {}

  nn::linear<Backend, T> g_l;  ///< (dim, e_item) and (dim): "<prefix>.g_l.weight", "<prefix>.g_l.bias"

  void set_dropout(float p) { drop_ = nn::dropout<Backend, T>(p, fusion_item_dropout_layer); }

  /// Glorot-uniform weight, zero bias.
  void reset_parameters(std::uint64_t seed) {
    nn::init_xavier_uniform(g_l.weight, seed);
    nn::init_constant(g_l.bias, 0.0);
  }

  /// e = [id +] drop(g_l(t)), row 0 zero.                                          id_table, e (N+1, dim)
  matrix_view<const T> forward(const Backend& be, const nn::step_context& ctx, matrix_view<const T> id_table) {
    require_shape(id_table, {num_items_ + 1, dim_}, where_, "id_table");
    const auto out = out_.resize(num_items_ + 1, dim_);
    std::fill_n(&out(0, 0), dim_, T(0));
    const auto p = nn::row_range(out, 1, num_items_);
    g_l.forward(be, text_, p);
    dropped_ = drop_.active(ctx);
    if (dropped_) drop_.forward(be, ctx, p, p);
    if (with_ids_) nn::add_rows(be, nn::row_range(id_table, 1, num_items_), p);
    return out;
  }

  /// d_id[1..N] += d_e[1..N] (with IDs; skipped when d_id is empty, a frozen table), g_l's gradients +=
  /// through the dropout mask of the last forward. Row 0 of d_e is ignored.       d_e, d_id (N+1, dim)
  void backward(const Backend& be, matrix_view<const T> d_items, matrix_view<T> d_id_table) {
    require_shape(d_items, {num_items_ + 1, dim_}, where_, "d_items");
    const auto dp = nn::row_range(d_items, 1, num_items_);
    if (with_ids_ && !d_id_table.empty()) {
      require_shape(d_id_table, {num_items_ + 1, dim_}, where_, "d_id_table");
      nn::add_rows(be, dp, nn::row_range(d_id_table, 1, num_items_));
    }
    if (dropped_) {
      const auto dz = dz_.zeros(num_items_, dim_);
      drop_.backward(be, dp, dz);
      g_l.backward(be, matrix_view<const T>(dz), matrix_view<T>{});
    } else {
      g_l.backward(be, dp, matrix_view<T>{});
    }
  }

 private:
  matrix_view<const T> text_;  // (N, e_item): rows 1..N of side.items
  index_t dim_, num_items_;
  bool with_ids_;
  const char* where_;
  nn::dropout<Backend, T> drop_;
  bool dropped_ = false;
  nn::buffer<T> out_, dz_;
};

/// The user side of slim_fusion and text_matching:  s_n = h_n + drop(g_f(r_{u(n)})),  u(n) = row_users[n].
/// g_f runs once per distinct user of the call (a batch repeats each user over its positions).
template <class Backend, class T>
class rationale_user_side {
 public:
  rationale_user_side(const std::string& prefix, index_t dim, matrix_view<const T> users, float dropout,
                      const char* where)
      : g_f(prefix + ".g_f", checked_user_text(users, where).extent(1), dim),
        users_(users),
        dim_(dim),
        where_(where),
        drop_(dropout, fusion_user_dropout_layer),
        slot_(static_cast<std::size_t>(users.extent(0)), -1) {}

  nn::linear<Backend, T> g_f;  ///< (dim, e_user) and (dim): "<prefix>.g_f.weight", "<prefix>.g_f.bias"

  void set_dropout(float p) { drop_ = nn::dropout<Backend, T>(p, fusion_user_dropout_layer); }

  /// Glorot-uniform weight, zero bias.
  void reset_parameters(std::uint64_t seed) {
    nn::init_xavier_uniform(g_f.weight, seed);
    nn::init_constant(g_f.bias, 0.0);
  }

  /// s = h + drop(g_f(r_u)) row by row.                                                 h, s (N, dim)
  matrix_view<const T> forward(const Backend& be, const nn::step_context& ctx, matrix_view<const T> states,
                               std::span<const index_t> row_users) {
    const index_t n = states.extent(0), num_users = users_.extent(0), e = users_.extent(1);
    require_shape(states, {n, dim_}, where_, "states");
    require(static_cast<index_t>(row_users.size()) == n, where_, "row_users has ", row_users.size(), " entries for ", n,
            " state rows");
    for (std::size_t r = 0; r < row_users.size(); ++r)
      require(row_users[r] >= 0 && row_users[r] < num_users, where_, "row_users[", r, "] = ", row_users[r],
              " outside [0, ", num_users, "): side.users has a row per user of the split");
    // distinct users in order of first appearance; row_slot_[n] = the slot of row n's user
    distinct_.clear();
    row_slot_.resize(row_users.size());
    for (std::size_t r = 0; r < row_users.size(); ++r) {
      index_t& s = slot_[static_cast<std::size_t>(row_users[r])];
      if (s < 0) {
        s = static_cast<index_t>(distinct_.size());
        distinct_.push_back(row_users[r]);
      }
      row_slot_[r] = s;
    }
    for (const index_t u : distinct_) slot_[static_cast<std::size_t>(u)] = -1;
    const index_t k = static_cast<index_t>(distinct_.size());
    const auto r_in = r_.resize(k, e);
    for (index_t j = 0; j < k; ++j)
      for (index_t c = 0; c < e; ++c) r_in(j, c) = users_(distinct_[static_cast<std::size_t>(j)], c);
    const auto q = q_.resize(k, dim_);
    g_f.forward(be, matrix_view<const T>(r_in), q);
    dropped_ = drop_.active(ctx);
    if (dropped_) drop_.forward(be, ctx, q, q);
    const auto out = out_.resize(n, dim_);
    parallel_for(nn::pool_of(be), n, nn::rows_per_task(dim_), [&](index_t r0, index_t r1) {
      for (index_t r = r0; r < r1; ++r) {
        const T* qs = &q(row_slot_[static_cast<std::size_t>(r)], 0);
        T* os = &out(r, 0);
        for (index_t c = 0; c < dim_; ++c) os[c] = states(r, c) + qs[c];
      }
    });
    return out;
  }

  /// d_h += d_s; g_f's gradients += Σ over each user's rows (in row order) through the last forward's
  /// dropout mask.                                                                    d_s, d_h (N, dim)
  void backward(const Backend& be, matrix_view<const T> d_users, matrix_view<T> d_states) {
    const index_t n = static_cast<index_t>(row_slot_.size()), k = static_cast<index_t>(distinct_.size());
    require_shape(d_users, {n, dim_}, where_, "d_users");
    require_shape(d_states, {n, dim_}, where_, "d_states");
    nn::add_rows(be, d_users, d_states);
    const auto dq = dq_.zeros(k, dim_);
    for (index_t r = 0; r < n; ++r) {
      T* ds = &dq(row_slot_[static_cast<std::size_t>(r)], 0);
      for (index_t c = 0; c < dim_; ++c) ds[c] += d_users(r, c);
    }
    if (dropped_) {
      const auto dz = dz_.zeros(k, dim_);
      drop_.backward(be, matrix_view<const T>(dq), dz);
      g_f.backward(be, matrix_view<const T>(dz), matrix_view<T>{});
    } else {
      g_f.backward(be, matrix_view<const T>(dq), matrix_view<T>{});
    }
  }

 private:
  matrix_view<const T> users_;  // (num_users, e_user)
  index_t dim_;
  const char* where_;
  nn::dropout<Backend, T> drop_;
  bool dropped_ = false;
  std::vector<index_t> slot_;  // per user: its slot in the current call, -1 between calls
  std::vector<index_t> distinct_, row_slot_;
  nn::buffer<T> r_, q_, out_, dq_, dz_;
};

/// What the three text fusions share: the item side, the user side where the fusion has one, and the
/// FusionPolicy interface over them. A user side of none is the identity (s = h).
template <class Backend, class T>
class text_fusion_module {
 public:
  /// with_ids: e_i = id_i + g_l(t_i) (else g_l(t_i) alone); with_users: s = h + g_f(r_u) (else s = h).
  text_fusion_module(const std::string& prefix, index_t dim, index_t num_items, const side_information<T>& side,
                     const text_fusion_config& cfg, bool with_ids, bool with_users, const char* where)
      : items_(prefix, dim, num_items, side.items, with_ids, cfg.dropout, where) {
    if (with_users) users_.emplace(prefix, dim, side.users, cfg.dropout, where);
  }

  /// The item-text projection g_l (e_item -> dim).
  nn::linear<Backend, T>& g_l() noexcept { return items_.g_l; }
  void configure(const text_fusion_config& cfg) {
    items_.set_dropout(cfg.dropout);
    if (users_) users_->set_dropout(cfg.dropout);
  }

  template <class F>
  void visit_parameters(F&& f) {
    items_.g_l.visit_parameters(f);
    if (users_) users_->g_f.visit_parameters(f);
  }
  void reset_parameters(std::uint64_t seed) {
    items_.reset_parameters(seed);
    if (users_) users_->reset_parameters(seed);
  }

  matrix_view<const T> items_forward(const Backend& be, const nn::step_context& ctx, matrix_view<const T> id_table) {
    return items_.forward(be, ctx, id_table);
  }
  /// Without IDs only g_l receives gradient; d_id_table is left untouched.
  void items_backward(const Backend& be, matrix_view<const T> d_items, matrix_view<T> d_id_table) {
    items_.backward(be, d_items, d_id_table);
  }
  matrix_view<const T> users_forward(const Backend& be, const nn::step_context& ctx, matrix_view<const T> states,
                                     std::span<const index_t> row_users) {
    if (users_) return users_->forward(be, ctx, states, row_users);
    return states;
  }
  void users_backward(const Backend& be, matrix_view<const T> d_users, matrix_view<T> d_states) {
    if (users_)
      users_->backward(be, d_users, d_states);
    else
      nn::add_rows(be, d_users, d_states);
  }

 protected:
  text_item_side<Backend, T> items_;
  std::optional<rationale_user_side<Backend, T>> users_;
};

}  // namespace detail

/// "+text" (the SLIM paper's ID + item text): e_i = id_i + g_l(t_i), e_0 = 0; users unchanged (s = h).
/// Needs side.items (num_items+1, e_item); side.users is not used. Parameters: "<prefix>.g_l.weight",
/// "<prefix>.g_l.bias".
struct text_concat {
  static constexpr std::string_view name = "text_concat";
  static constexpr bool identity = false;

  template <class Backend, class T>
  class module : public detail::text_fusion_module<Backend, T> {
    using base = detail::text_fusion_module<Backend, T>;

   public:
    /// Throws slim::error when side.items is not a (num_items+1, e > 0) table.
    module(const std::string& prefix, index_t dim, index_t num_items, const side_information<T>& side,
           const text_fusion_config& cfg = {})
        : base(prefix, dim, num_items, side, cfg, /*with_ids=*/true, /*with_users=*/false, "slim::rec::text_concat") {}
  };
};

/// SLIM's fusion on both sides: e_i = id_i + g_l(t_i), e_0 = 0, and s = h + g_f(r_u) for the state h of
/// user u with rationale embedding r_u. Needs side.items (num_items+1, e_item) and side.users (num_users,
/// e_user). Parameters: "<prefix>.g_l.{weight,bias}", then "<prefix>.g_f.{weight,bias}".
struct slim_fusion {
  static constexpr std::string_view name = "slim_fusion";
  static constexpr bool identity = false;

  template <class Backend, class T>
  class module : public detail::text_fusion_module<Backend, T> {
    using base = detail::text_fusion_module<Backend, T>;

   public:
    /// Throws slim::error when side.items is not (num_items+1, e > 0) or side.users is empty.
    module(const std::string& prefix, index_t dim, index_t num_items, const side_information<T>& side,
           const text_fusion_config& cfg = {})
        : base(prefix, dim, num_items, side, cfg, /*with_ids=*/true, /*with_users=*/true, "slim::rec::slim_fusion") {}

    /// The rationale map g_f (e_user -> dim).
    nn::linear<Backend, T>& g_f() noexcept { return this->users_->g_f; }
  };
};

/// ID-agnostic text matching: e_i = g_l(t_i), e_0 = 0 (the ID table is neither read nor given gradient),
/// and s = h + g_f(r_u) when side.users is given, else s = h. Needs side.items (num_items+1, e_item).
/// Parameters: "<prefix>.g_l.{weight,bias}", then "<prefix>.g_f.{weight,bias}" with side.users.
struct text_matching {
  static constexpr std::string_view name = "text_matching";
  static constexpr bool identity = false;

  template <class Backend, class T>
  class module : public detail::text_fusion_module<Backend, T> {
    using base = detail::text_fusion_module<Backend, T>;

   public:
    /// Throws slim::error when side.items is not (num_items+1, e > 0), or side.users is non-empty with a
    /// zero extent.
    module(const std::string& prefix, index_t dim, index_t num_items, const side_information<T>& side,
           const text_fusion_config& cfg = {})
        : base(prefix, dim, num_items, side, cfg, /*with_ids=*/false,
               /*with_users=*/side.users.extent(0) != 0 || side.users.extent(1) != 0, "slim::rec::text_matching") {}

    /// Whether the user side is on (side.users was given).
    bool has_user_side() const noexcept { return this->users_.has_value(); }
    /// The rationale map g_f (e_user -> dim); requires has_user_side().
    nn::linear<Backend, T>& g_f() {
      require(this->users_.has_value(), "slim::rec::text_matching", "no user side: side.users was empty");
      return this->users_->g_f;
    }
  };
};

}  // namespace slim::rec
