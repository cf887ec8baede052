// Inner learning-rate schedule: linear warm-up, then cosine decay to final_ratio × peak.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>

namespace noloco::trainer {

struct LrSchedule {
  double peak = 3e-3;
  int64_t warmup = 50;       // steps of linear warm-up (step s uses peak·(s+1)/warmup)
  int64_t total = 1000;      // steps after which the rate stays at final_ratio·peak
  double final_ratio = 0.1;  // "decay to a tenth of the peak"

  // Learning rate for inner step `step` (0-based: the first step taken is step 0).
  double at(int64_t step) const {
    if (warmup > 0 && step < warmup)
      return peak * static_cast<double>(step + 1) / static_cast<double>(warmup);
    const double span = static_cast<double>(std::max<int64_t>(1, total - warmup));
    const double progress = std::clamp(static_cast<double>(step - warmup) / span, 0.0, 1.0);
    const double low = peak * final_ratio;
    return low + (peak - low) * 0.5 * (1.0 + std::cos(M_PI * progress));
  }
};

}  // namespace noloco::trainer
