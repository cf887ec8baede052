// DiLoCo's outer step on a node's replica (diloco_step.h). Every step works a chunk at a time:
// the only model-sized buffer is the all-reduce's own vector (docs/memory.md, "One exchange").
#include "trainer/node/diloco_step.h"

#include <torch/torch.h>

#include <algorithm>
#include <string>

#include "trainer/core/codec_stream.h"
#include "trainer/core/outer.h"

namespace noloco::node {
namespace {

constexpr int64_t kChunk = static_cast<int64_t>(codec::kChunkValues);

torch::Tensor host_chunk(const float* p, int64_t k) {
  return torch::from_blob(const_cast<float*>(p), {k}, torch::kFloat32);
}

}  // namespace

std::vector<float> pseudo_gradient_vector(const trainer::Replica& r) {
  torch::NoGradGuard ng;
  const torch::Tensor theta = r.theta().detach(), phi = r.phi();
  const int64_t n = phi.numel();
  std::vector<float> out(static_cast<size_t>(n));
  for (int64_t b = 0; b < n; b += kChunk) {
    const int64_t k = std::min(kChunk, n - b);
    host_chunk(out.data() + b, k).copy_(theta.narrow(0, b, k) - phi.narrow(0, b, k));
  }
  return out;
}

Status apply_diloco_step(trainer::Replica& r, std::span<const float> mean_delta, double alpha, double beta) {
  const int64_t n = r.phi().numel();
  if (static_cast<int64_t>(mean_delta.size()) != n)
    return invalid_argument("DiLoCo step: mean pseudo-gradient has " + std::to_string(mean_delta.size()) +
                            " values, the model " + std::to_string(n));
  torch::NoGradGuard ng;
  const torch::Tensor theta = r.theta().detach();
  for (int64_t b = 0; b < n; b += kChunk) {
    const int64_t k = std::min(kChunk, n - b);
    trainer::OuterView view{theta.narrow(0, b, k), r.phi().narrow(0, b, k), r.delta().narrow(0, b, k)};
    // On the replica's device and dtype; on a CPU fp32 replica the caller's buffer is read in place.
    const torch::Tensor mean = host_chunk(mean_delta.data() + b, k).to(r.phi().device(), r.phi().scalar_type());
    trainer::heavy_ball_apply(view, mean, alpha, beta);
  }
  r.count_outer_step();
  return Status::Ok();
}

void apply_diloco_solo_step(trainer::Replica& r, double alpha, double beta) {
  torch::NoGradGuard ng;
  const torch::Tensor theta = r.theta().detach();
  const int64_t n = r.phi().numel();
  for (int64_t b = 0; b < n; b += kChunk) {
    const int64_t k = std::min(kChunk, n - b);
    trainer::OuterView view{theta.narrow(0, b, k), r.phi().narrow(0, b, k), r.delta().narrow(0, b, k)};
    const torch::Tensor own = trainer::pseudo_gradient(view);
    trainer::heavy_ball_apply(view, own, alpha, beta);
  }
  r.count_outer_step();
}

}  // namespace noloco::node
