#include "matmul_throughput.h"

#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <limits>

namespace noloco::bench {

double matmul_gflops(int64_t n, int repeats) {
  torch::NoGradGuard no_grad;
  auto a = torch::randn({n, n});
  auto b = torch::randn({n, n});
  auto c = torch::empty({n, n});
  for (int i = 0; i < 3; ++i) torch::mm_out(c, a, b);
  double best = std::numeric_limits<double>::infinity();
  for (int i = 0; i < repeats; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    torch::mm_out(c, a, b);
    const std::chrono::duration<double> dt = std::chrono::steady_clock::now() - t0;
    best = std::min(best, dt.count());
  }
  return 2.0 * static_cast<double>(n) * n * n / best / 1e9;
}

void set_torch_threads(int threads) { torch::set_num_threads(threads); }
int torch_threads() { return torch::get_num_threads(); }

}  // namespace noloco::bench
