// What the crash test's child writes for a given step, so the parent can recompute a complete
// checkpoint from its step alone. Sizes vary with the step; every fourth checkpoint is large so
// that kills land in the middle of writing it.
#pragma once

#include "storage_test_util.h"

namespace noloco::storage::test {

inline Checkpoint crash_checkpoint(uint64_t step) {
  size_t big = (step % 4 == 0) ? (8u << 20) + (step % 7) * 100000 : 3000 + step * 17;
  return make_checkpoint(step, {{"phi", big}, {"theta", big / 2 + 1}, {"delta", 64}, {"rng", step % 5}});
}

inline MetricsRecord crash_metrics(uint64_t step) {
  return MetricsRecord{step, static_cast<int64_t>(step), 1.0 / (step + 1), 10.0 * step, step, step * 3,
                       "partner-" + std::to_string(step % 3), 0.25 * step, {{"k", double(step)}}};
}

inline StoreOptions crash_store_options(const std::string& path) {
  StoreOptions o;
  o.path = path;
  o.write_piece_bytes = 1 << 20;
  o.retention.keep_last = 3;
  return o;
}

}  // namespace noloco::storage::test
