// slim — scalar reference kernels: dropout (forward beside backward). See docs/kernels.md.
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "slim/backend/common.hpp"
#include "slim/backend/tags.hpp"
#include "slim/core/tensor_view.hpp"

namespace slim::backend::detail {

struct scalar_dropout {};

}  // namespace slim::backend::detail
