// `noloco doctor`'s look at the compute device (docs/doctor.md): is the torch device usable, and
// how fast is an fp32 matrix product on it (the same BLAS or CUDA kernels the model's Linear
// layers use). Torch-free header for the CLI; the measurement follows tools/bench/matmul_throughput.
#pragma once

#include <cstdint>
#include <string>

#include "common/status.h"

namespace noloco::node {

struct DeviceProbe {
  std::string device;  // as given: cpu, cuda, cuda:N
  int64_t n = 0;       // the n of the n×n · n×n products timed
  int threads = 0;     // torch intra-op threads in force (CPU)
  double gflops = 0;   // best of the timed runs: 2·n³ flops / seconds
};

// kUnsupported / kInvalidArgument (as trainer::parse_device) when the device cannot be used; n
// must be in [16, 8192] and repeats in [1, 1000]. `threads` > 0 sets torch's intra-op threads.
Result<DeviceProbe> probe_device(const std::string& device, int64_t n, int repeats, int threads);

}  // namespace noloco::node
