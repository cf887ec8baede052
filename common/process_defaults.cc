// glibc malloc thresholds for every program that trains (noloco, the train-speed bench, the
// tests), set from the executable's .preinit_array so they hold before any library allocates.
// A setting the user made in the environment (MALLOC_TRIM_THRESHOLD_, MALLOC_MMAP_THRESHOLD_,
// MALLOC_MMAP_MAX_) is kept.
//
// Why: glibc hands the top of the heap back to the kernel whenever more than 128 KiB are free
// there, and serves requests above a (growing) mmap threshold with fresh mappings, so each
// training step frees its activations, returns the pages and faults them in again on the next
// step (kernel time in clear_page and page faults). Measured on 2 cores, `small` preset, 2
// threads (tools/bench/run_train_speed.sh): 153 ms per step with glibc's defaults, 111 ms with a
// 256 MiB trim threshold and a fixed 32 MiB mmap threshold (glibc's largest). The price is up to
// 256 MiB of freed heap kept mapped for reuse.
//
// Larger models have activations above any mmap threshold glibc accepts (32 MiB): at gpt-125m
// each attention score matrix is 48 MiB, so every step mapped, faulted in and unmapped them again
// (a million minor faults a step). mmap is therefore off (M_MMAP_MAX 0; MALLOC_MMAP_MAX_ wins):
// every block comes from the heap and is reused. A replica raises the trim threshold to its own
// step's size (trainer/core/heap_policy.cc) so the freed step is not trimmed either. Threads
// other than main still get an mmap'd block when their arena cannot hold a request.
//
// (The OpenMP wait policy cannot be set here: glibc resets the environment after the
// preinit functions run, before libgomp's constructor reads it; cli/openmp_policy.cc re-executes
// the training verbs instead.)
#include <malloc.h>

#include <cstdlib>

namespace {

void apply_malloc_defaults(int /*argc*/, char** /*argv*/, char** envp) {
  // getenv does not work yet at this point (environ is still unset); read envp directly.
  bool trim_set = false, mmap_set = false, mmap_max_set = false;
  for (char** e = envp; e != nullptr && *e != nullptr; ++e) {
    if (__builtin_strncmp(*e, "MALLOC_TRIM_THRESHOLD_=", 23) == 0) trim_set = true;
    if (__builtin_strncmp(*e, "MALLOC_MMAP_THRESHOLD_=", 23) == 0) mmap_set = true;
    if (__builtin_strncmp(*e, "MALLOC_MMAP_MAX_=", 17) == 0) mmap_max_set = true;
  }
  if (!trim_set) mallopt(M_TRIM_THRESHOLD, 256 << 20);
  if (!mmap_set) mallopt(M_MMAP_THRESHOLD, 32 << 20);
  if (!mmap_max_set) mallopt(M_MMAP_MAX, 0);
}

}  // namespace

// `used` keeps the entry though nothing refers to it; an OBJECT library keeps the object file.
__attribute__((section(".preinit_array"), used)) void (*noloco_malloc_defaults_entry)(int, char**, char**) =
    apply_malloc_defaults;
