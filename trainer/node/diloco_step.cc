// DiLoCo's outer step on a node's replica (diloco_step.h).
#include "trainer/node/diloco_step.h"

#include <torch/torch.h>

#include <cstring>
#include <string>

#include "trainer/core/outer.h"

namespace noloco::node {

std::vector<float> pseudo_gradient_vector(const trainer::Replica& r) {
  torch::NoGradGuard ng;
  const torch::Tensor d = trainer::pseudo_gradient({r.theta(), r.phi(), r.delta()})
                              .to(torch::kCPU, torch::kFloat32)
                              .contiguous();
  std::vector<float> out(static_cast<size_t>(d.numel()));
  if (!out.empty()) std::memcpy(out.data(), d.data_ptr<float>(), out.size() * sizeof(float));
  return out;
}

Status apply_diloco_step(trainer::Replica& r, std::span<const float> mean_delta, double alpha, double beta) {
  if (static_cast<int64_t>(mean_delta.size()) != r.phi().numel())
    return invalid_argument("DiLoCo step: mean pseudo-gradient has " + std::to_string(mean_delta.size()) +
                            " values, the model " + std::to_string(r.phi().numel()));
  torch::NoGradGuard ng;
  // from_blob borrows the caller's buffer; the copy to the replica's device and dtype owns its data.
  const torch::Tensor mean =
      torch::from_blob(const_cast<float*>(mean_delta.data()), {static_cast<int64_t>(mean_delta.size())},
                       torch::kFloat32)
          .to(r.phi().device(), r.phi().scalar_type(), /*non_blocking=*/false, /*copy=*/true);
  trainer::OuterView view{r.theta(), r.phi(), r.delta()};
  trainer::heavy_ball_apply(view, mean, alpha, beta);
  r.count_outer_step();
  return Status::Ok();
}

void apply_diloco_solo_step(trainer::Replica& r, double alpha, double beta) {
  torch::NoGradGuard ng;
  trainer::OuterView view{r.theta(), r.phi(), r.delta()};
  const torch::Tensor own = trainer::pseudo_gradient(view);
  trainer::heavy_ball_apply(view, own, alpha, beta);
  r.count_outer_step();
}

}  // namespace noloco::node
