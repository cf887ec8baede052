// Keeps the memory a training step frees mapped for the next step (glibc malloc only).
#pragma once

#include <cstdint>

namespace noloco::trainer {

// The trim threshold that keeps `step_bytes` of freed heap mapped: 1.25 × step_bytes, at least
// 256 MiB (common/process_defaults.cc's default); -1 (never trim) when that does not fit
// mallopt's int.
int64_t heap_trim_threshold_for(int64_t step_bytes);

// Raises glibc's M_TRIM_THRESHOLD to heap_trim_threshold_for(step_bytes) unless the user set
// MALLOC_TRIM_THRESHOLD_ or a larger value was already applied by this function. Returns the
// threshold in force afterwards as far as this function knows (0 when it left glibc alone).
int64_t keep_freed_heap_for_step(int64_t step_bytes);

}  // namespace noloco::trainer
