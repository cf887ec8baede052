// Prints this machine's fp32 matmul throughput through libtorch for a few square sizes.
//   noloco_bench_matmul [--threads T] [--repeats R] [sizes...]
// Output: one JSON line per size, e.g. {"bench":"matmul","n":1024,"threads":2,"gflops":131.2}
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "matmul_throughput.h"

int main(int argc, char** argv) {
  int threads = 2, repeats = 20;
  std::vector<long> sizes;
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--threads") && i + 1 < argc) {
      threads = std::atoi(argv[++i]);
    } else if (!std::strcmp(argv[i], "--repeats") && i + 1 < argc) {
      repeats = std::atoi(argv[++i]);
    } else if (argv[i][0] != '-' && std::atol(argv[i]) > 0) {
      sizes.push_back(std::atol(argv[i]));
    } else {
      std::fprintf(stderr, "usage: %s [--threads T] [--repeats R] [sizes...]\n", argv[0]);
      return 2;
    }
  }
  if (threads < 1 || repeats < 1) {
    std::fprintf(stderr, "threads and repeats must be positive\n");
    return 2;
  }
  if (sizes.empty()) sizes = {128, 256, 512, 1024, 2048};
  noloco::bench::set_torch_threads(threads);
  for (long n : sizes) {
    const double g = noloco::bench::matmul_gflops(n, repeats);
    std::printf("{\"bench\":\"matmul\",\"n\":%ld,\"threads\":%d,\"gflops\":%.2f}\n", n,
                noloco::bench::torch_threads(), g);
    std::fflush(stdout);
  }
  return 0;
}
