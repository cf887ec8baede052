// How many torch threads a model gets when the user did not say (--threads 0).
#pragma once

#include <cstdint>

#include "trainer/core/model.h"

namespace noloco::trainer {

// Below this many parameters one thread trains faster, or nearly as fast with half the CPU: the
// operations are too small to share, and handing each one to a second thread costs more kernel time
// (futex wake-ups) than the work it saves. Measured on 2 cores, batch 8 (docs/benchmarks.md):
// tiny (119k) 64.7k tokens/s on 1 thread vs 37.6k on 2, system time 0 % vs 37 % of user time;
// small (838k) 11.9k vs 12.9k, 0.2 % vs 19 %. medium (4.9M) and up gain from every core.
inline constexpr int64_t kOneThreadBelowParams = 2'000'000;

// The thread count for a model of `params` parameters: 1 below kOneThreadBelowParams, else 0
// (keep torch's default, one per core).
int default_threads(int64_t params);

// Sets torch's intra-op threads to default_threads() for `model` when that is not 0 (logged).
void apply_default_threads(const ModelConfig& model);

}  // namespace noloco::trainer
