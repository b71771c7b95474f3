// slim — learning-rate schedules as multipliers of the base rate (train::adam::set_lr_scale): linear warmup then
// cosine decay to a floor, as transformers' get_cosine_schedule_with_warmup with a minimum ratio.
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <numbers>

#include "slim/core/error.hpp"

namespace slim::train {

/// The multiplier for 0-based update `step`: step/warmup during warmup (0 at step 0, as transformers' LambdaLR
/// gives), then min_ratio + (1 − min_ratio)·½(1 + cos(π·p)) with p = (step − warmup)/(total − warmup) clamped
/// to [0, 1], so it reaches min_ratio at `total_steps` and stays there.
struct warmup_cosine {
  std::int64_t warmup_steps = 0;
  std::int64_t total_steps = 1;
  double min_ratio = 0.0;

  void validate() const {
    constexpr const char* where = "slim::train::warmup_cosine";
    require(warmup_steps >= 0, where, "warmup_steps must not be negative, got ", warmup_steps);
    require(total_steps >= warmup_steps && total_steps > 0, where, "total_steps ", total_steps,
            " must be positive and at least warmup_steps ", warmup_steps);
    require(min_ratio >= 0 && min_ratio <= 1, where, "min_ratio ", min_ratio, " must lie in [0, 1]");
  }

  double operator()(std::int64_t step) const {
    validate();
    if (step < warmup_steps) return static_cast<double>(step) / static_cast<double>(warmup_steps);
    const double span = static_cast<double>(std::max<std::int64_t>(1, total_steps - warmup_steps));
    const double p = std::clamp(static_cast<double>(step - warmup_steps) / span, 0.0, 1.0);
    return min_ratio + (1.0 - min_ratio) * 0.5 * (1.0 + std::cos(std::numbers::pi * p));
  }
};

}  // namespace slim::train
