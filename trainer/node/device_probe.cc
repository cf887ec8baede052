// probe_device (device_probe.h): best-of-`repeats` timing of torch::mm_out after 3 untimed warm-up
// products; on CUDA each timed product is followed by a synchronize so the clock sees the kernel.
#include "trainer/node/device_probe.h"

#include <torch/cuda.h>
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <limits>

#include "trainer/core/replica.h"

namespace noloco::node {

Result<DeviceProbe> probe_device(const std::string& device, int64_t n, int repeats, int threads) {
  if (n < 16 || n > 8192) return invalid_argument("matmul size must be in [16, 8192]");
  if (repeats < 1 || repeats > 1000) return invalid_argument("matmul repeats must be in [1, 1000]");
  NOLOCO_ASSIGN_OR_RETURN(torch::Device d, trainer::parse_device(device));
  if (threads > 0) torch::set_num_threads(threads);
  try {
    torch::NoGradGuard no_grad;
    const auto opts = torch::TensorOptions().dtype(torch::kFloat32).device(d);
    auto a = torch::randn({n, n}, opts), b = torch::randn({n, n}, opts), c = torch::empty({n, n}, opts);
    const bool cuda = d.is_cuda();
    auto sync = [&] {
      if (cuda) torch::cuda::synchronize(d.index());
    };
    for (int i = 0; i < 3; ++i) torch::mm_out(c, a, b);
    sync();
    double best = std::numeric_limits<double>::infinity();
    for (int i = 0; i < repeats; ++i) {
      const auto t0 = std::chrono::steady_clock::now();
      torch::mm_out(c, a, b);
      sync();
      best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    }
    DeviceProbe p;
    p.device = device;
    p.n = n;
    p.threads = torch::get_num_threads();
    p.gflops = best > 0 ? 2.0 * static_cast<double>(n) * n * n / best / 1e9 : 0;
    return p;
  } catch (const c10::Error& e) {
    return internal_error("matmul on " + device + " failed: " + e.what_without_backtrace());
  }
}

}  // namespace noloco::node
