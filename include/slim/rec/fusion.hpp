// slim — fusion policies: how a backbone's item and user representations are formed from its ID-based ones
// and from extra embeddings (item text, user rationales). `id_only` uses the ID embeddings unchanged; the
// text fusions `text_concat`, `slim_fusion` and `text_matching` (fusion_text.hpp, included at the end)
// have the same interface (docs/rec.md, "Fusion").
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "slim/core/tensor_view.hpp"
#include "slim/nn/context.hpp"
#include "slim/nn/parameter.hpp"

namespace slim::rec {

/// Extra embeddings a fusion may draw on. Row i of `items` belongs to item i (row 0: padding, never
/// used); row u of `users` to user u of the split. Either may be empty. The data must outlive the model.
template <class T>
struct side_information {
  matrix_view<const T> items;  ///< (num_items+1, e_item) or empty
  matrix_view<const T> users;  ///< (num_users, e_user) or empty
};

/// FusionPolicy: the interface of a fusion policy F, for a backbone of embedding size `dim`:
///
///   typename F::template module<Backend, T> m(prefix, dim, num_items, side);
///   m.visit_parameters(f); m.reset_parameters(seed);
///   // item side: the ID table (num_items+1, dim) -> the item representations the backbone uses for
///   // both its input and its scores (num_items+1, dim); backward adds into the ID table's gradient
///   matrix_view<const T> e = m.items_forward(be, ctx, id_table);
///   m.items_backward(be, d_e, d_id_table);
///   // user side: the backbone's states (N, dim), row n belonging to user row_users[n] -> the vectors that
///   // are scored against the items (N, dim); backward adds into d_states
///   matrix_view<const T> s = m.users_forward(be, ctx, states, row_users);
///   m.users_backward(be, d_s, d_states);
///
/// `F::identity` true promises that both maps are the identity, so a backbone may skip the copies.
template <class F, class Backend, class T>
concept FusionPolicy = requires(typename F::template module<Backend, T>& m, const Backend& be,
                                const nn::step_context& ctx, matrix_view<const T> in, matrix_view<T> out,
                                std::span<const index_t> rows) {
  { F::name } -> std::convertible_to<std::string_view>;
  { F::identity } -> std::convertible_to<bool>;
  { m.items_forward(be, ctx, in) } -> std::convertible_to<matrix_view<const T>>;
  m.items_backward(be, in, out);
  { m.users_forward(be, ctx, in, rows) } -> std::convertible_to<matrix_view<const T>>;
  m.users_backward(be, in, out);
  m.reset_parameters(std::uint64_t{});
};

/// ID embeddings only: both maps are the identity and there are no parameters.
struct id_only {
  static constexpr std::string_view name = "id_only";
  static constexpr bool identity = true;

  template <class Backend, class T>
  class module {
   public:
    module(const std::string& /*prefix*/, index_t /*dim*/, index_t /*num_items*/, const side_information<T>& /*side*/) {
    }

    template <class F>
    void visit_parameters(F&&) {}
    void reset_parameters(std::uint64_t) {}

    matrix_view<const T> items_forward(const Backend&, const nn::step_context&, matrix_view<const T> id_table) {
      return id_table;
    }
    void items_backward(const Backend& be, matrix_view<const T> d_items, matrix_view<T> d_id_table) {
      nn::add_rows(be, d_items, d_id_table);
    }
    matrix_view<const T> users_forward(const Backend&, const nn::step_context&, matrix_view<const T> states,
                                       std::span<const index_t> /*row_users*/) {
      return states;
    }
    void users_backward(const Backend& be, matrix_view<const T> d_users, matrix_view<T> d_states) {
      nn::add_rows(be, d_users, d_states);
    }
  };
};

}  // namespace slim::rec

// The text fusions (text_concat, slim_fusion, text_matching) build on the definitions above.
#include "slim/rec/fusion_text.hpp"  // IWYU pragma: export
