// slim — scalar reference kernels: cross_entropy (forward beside backward). See docs/kernels.md.
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "slim/backend/common.hpp"
#include "slim/backend/tags.hpp"
#include "slim/core/tensor_view.hpp"

namespace slim::backend::detail {

struct scalar_cross_entropy {};

}  // namespace slim::backend::detail
