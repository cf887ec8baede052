// fp32 matrix-multiply throughput of this machine through libtorch (the same BLAS the trainer's
// Linear layers use). The denominator of model FLOP utilisation (MFU) in the benchmarks.
#pragma once

#include <cstdint>

namespace noloco::bench {

// GFLOP/s of an n×n · n×n fp32 torch::mm (2·n³ flops), best of `repeats` timed runs after 3
// untimed ones, with whatever torch intra-op thread count is set now.
double matmul_gflops(int64_t n, int repeats = 20);

// torch::set_num_threads, kept here so callers need not include torch.
void set_torch_threads(int threads);
int torch_threads();

}  // namespace noloco::bench
