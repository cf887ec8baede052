// glibc hands the top of the heap back to the kernel once more than M_TRIM_THRESHOLD bytes are
// free there. A training step frees all its activations at the end, at the top of the heap, and
// allocates them again at the start of the next step, so a threshold below the step's size
// unmaps and faults in the whole step every time: at gpt-125m (batch 1, about 1.4 GB a step)
// this was a million minor page faults and as much kernel time as half the user time per step
// (docs/benchmarks.md). common/process_defaults.cc sets 256 MiB for every process, enough up to
// the medium preset; a replica raises it to its own step here. The price is the freed step kept
// resident between steps, which the next step uses again.
#include "trainer/core/heap_policy.h"

#include <algorithm>
#include <climits>
#include <cstdlib>
#include <mutex>

#if defined(__GLIBC__)
#include <malloc.h>
#endif

namespace noloco::trainer {

int64_t heap_trim_threshold_for(int64_t step_bytes) {
  const int64_t want = std::max<int64_t>(step_bytes + step_bytes / 4, int64_t{256} << 20);
  return want > INT_MAX ? -1 : want;
}

int64_t keep_freed_heap_for_step(int64_t step_bytes) {
#if defined(__GLIBC__)
  static std::mutex mu;
  static int64_t applied = 0;  // 0: not yet; -1: trimming off
  if (std::getenv("MALLOC_TRIM_THRESHOLD_") != nullptr) return 0;  // the user's choice wins
  std::lock_guard<std::mutex> lock(mu);
  const int64_t want = heap_trim_threshold_for(step_bytes);
  if (applied == -1 || (want != -1 && want <= applied)) return applied;
  if (mallopt(M_TRIM_THRESHOLD, static_cast<int>(want)) == 1) applied = want;
  return applied;
#else
  (void)step_bytes;
  return 0;
#endif
}

}  // namespace noloco::trainer
