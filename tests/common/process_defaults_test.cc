// The malloc thresholds common/process_defaults.cc sets before main (this test executable links
// it, like noloco and the train-speed bench do).
#include <malloc.h>

#include <cstdlib>
#include <cstring>

#include <catch2/catch.hpp>

// Under AddressSanitizer malloc is ASan's own and glibc's thresholds do not apply.
#if !defined(__SANITIZE_ADDRESS__)
TEST_CASE("process defaults: a freed 4 MiB block stays in the heap instead of going back to the kernel") {
  if (std::getenv("MALLOC_MMAP_THRESHOLD_") != nullptr || std::getenv("MALLOC_TRIM_THRESHOLD_") != nullptr) {
    SUCCEED("the environment sets malloc thresholds itself; nothing of ours to check");
    return;
  }
  // With glibc's defaults a 4 MiB request is served by mmap and unmapped on free (and a freed
  // heap top over 128 KiB is trimmed), so the releasable top of the heap stays small.
  void* p = std::malloc(4 << 20);
  REQUIRE(p != nullptr);
  std::memset(p, 1, 4 << 20);
  std::free(p);
  const struct mallinfo2 info = mallinfo2();
  CHECK(info.keepcost >= (4u << 20));
}
#endif

#if !defined(__SANITIZE_ADDRESS__)
TEST_CASE("process defaults: a 64 MiB block comes from the heap, not from mmap, and stays mapped when freed") {
  if (std::getenv("MALLOC_MMAP_MAX_") != nullptr || std::getenv("MALLOC_TRIM_THRESHOLD_") != nullptr) {
    SUCCEED("the environment sets malloc's mmap use itself; nothing of ours to check");
    return;
  }
  // Above glibc's largest mmap threshold (32 MiB), as gpt-125m's attention matrices are: with
  // mmap allowed this would be a fresh mapping, faulted in on every use and unmapped on free.
  const size_t mmapped_before = mallinfo2().hblkhd;
  void* p = std::malloc(64u << 20);
  REQUIRE(p != nullptr);
  std::memset(p, 1, 64u << 20);
  CHECK(mallinfo2().hblkhd == mmapped_before);
  std::free(p);
  CHECK(mallinfo2().keepcost >= (64u << 20));
}
#endif

#if defined(__x86_64__) || defined(__i386__)
#include <limits>
#include <thread>
#include <xmmintrin.h>

// common/float_defaults.cc: denormals flush to zero on the main thread and on threads it starts.
TEST_CASE("denormal floats flush to zero in a training process, on new threads too") {
  auto check_here = [] {
    CHECK((_mm_getcsr() & 0x8040u) == 0x8040u);
    volatile float smallest_normal = std::numeric_limits<float>::min();
    volatile float half = 0.5f;
    const float r = smallest_normal * half;  // a denormal without FTZ
    CHECK(r == 0.0f);
  };
  check_here();
  std::thread t(check_here);
  t.join();
}
#endif
