// slim — what the sequential backbones (gru4rec, sasrec) share in `encode`: the argument checks, the window
// of each history they read, and the pass over chunks of histories through the user fusion into `out`.
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <algorithm>
#include <cstddef>
#include <span>
#include <vector>

#include "slim/core/error.hpp"
#include "slim/core/tensor_view.hpp"
#include "slim/nn/context.hpp"
#include "slim/rec/dataset.hpp"

namespace slim::rec::detail {

/// The most recent `max_len` items of histories[r], the window a backbone encodes. Throws slim::error (from
/// `where`) when the history is empty or holds an item outside [1, num_items].
inline std::span<const item_id> recent_items(std::span<const std::vector<item_id>> histories, index_t r,
                                             index_t max_len, index_t num_items, const char* where) {
  const auto& h = histories[static_cast<std::size_t>(r)];
  require(!h.empty(), where, "history ", r, " is empty");
  const std::size_t m = std::min(h.size(), static_cast<std::size_t>(max_len));
  const std::span<const item_id> window(h.data() + (h.size() - m), m);
  for (const item_id it : window)
    require(it >= 1 && it <= num_items, where, "history ", r, " holds item ", it, " outside [1, ", num_items, "]");
  return window;
}

/// `model.encode(be, histories, users, out)` of a backbone with a fusion policy: checks that users and out
/// match histories, then, `chunk` histories at a time, has `last_states(table, r0, rn)` return the backbone's
/// states after the last item of histories[r0, r0 + rn) (rn, dim), with `table` = model.item_table(be), and
/// writes them through the user fusion into rows [r0, r0 + rn) of out.
template <class Model, class LastStates>
void encode_in_chunks(Model& model, const typename Model::backend_type& be,
                      std::span<const std::vector<item_id>> histories, std::span<const index_t> users,
                      matrix_view<typename Model::value_type> out, index_t chunk, const char* where,
                      LastStates&& last_states) {
  const index_t r_total = static_cast<index_t>(histories.size());
  require(static_cast<index_t>(users.size()) == r_total, where, "users has ", users.size(), " entries, histories ",
          r_total);
  require_shape(out, {r_total, model.dim()}, where, "out");
  const auto table = model.item_table(be);
  for (index_t r0 = 0; r0 < r_total; r0 += chunk) {
    const index_t rn = std::min(chunk, r_total - r0);
    const auto states = last_states(table, r0, rn);
    const auto s = model.fusion.users_forward(
        be, nn::step_context{}, states, users.subspan(static_cast<std::size_t>(r0), static_cast<std::size_t>(rn)));
    nn::copy_rows(be, s, nn::row_range(out, r0, rn));
  }
}

}  // namespace slim::rec::detail
