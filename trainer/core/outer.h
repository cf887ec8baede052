// Outer optimizers (docs/algorithm.md §2–3) as plain functions on flat parameter tensors.
// Each replica is an OuterView: handles to its fast weights θ (the model's flat buffer), slow
// weights φ and outer momentum δ. All functions update in place under NoGradGuard and leave the
// inner optimizer state alone; afterwards θ == φ.
#pragma once

#include <torch/torch.h>

#include <span>
#include <string>

#include "common/status.h"

namespace noloco::trainer {

struct OuterView {
  torch::Tensor theta, phi, delta;  // same shape; handles (no copies)
};

struct NolocoParams {
  double alpha = 0.5;  // momentum
  double beta = 0.7;   // step on the group-mean pseudo-gradient
  double gamma = 0.7;  // pull of φ_i toward the group-mean φ
};

// Empty when α < γ < sqrt(2 + α²) (the bounded-variance range for groups of two); otherwise a
// sentence to print as a warning.
std::string noloco_param_warning(const NolocoParams& p);

// Δ = θ − φ (a new tensor).
torch::Tensor pseudo_gradient(const OuterView& r);

// δ ← α·δ + β·mean_Δ − γ·(φ − mean_φ); φ ← φ + δ; θ ← φ.
// mean_Δ and mean_φ are over the replica's group, including itself, taken before anyone moved.
void noloco_apply(OuterView& r, const torch::Tensor& mean_delta, const torch::Tensor& mean_phi,
                  const NolocoParams& p);
// The θ-only wire form, exact when γ = β: δ ← α·δ + β·(mean_θ − φ); φ ← φ + δ; θ ← φ.
void noloco_apply_theta(OuterView& r, const torch::Tensor& mean_theta, double alpha, double beta);
// One NoLoCo outer step for a whole group with exact values (no wire): means first, then each
// member moves.
void noloco_group_step(std::span<OuterView* const> group, const NolocoParams& p);

// Heavy-ball DiLoCo: δ ← α·δ + β·mean_Δ; φ ← φ + δ; θ ← φ (mean over all replicas).
void heavy_ball_apply(OuterView& r, const torch::Tensor& mean_delta, double alpha, double beta);
void diloco_heavy_ball_step(std::span<OuterView* const> all, double alpha, double beta);

// Nesterov DiLoCo: g = φ − mean_θ; δ ← μ·δ + g; φ ← φ − lr·(g + μ·δ); θ ← φ (δ is the momentum
// buffer, as torch.optim.SGD(nesterov=True)).
void nesterov_apply(OuterView& r, const torch::Tensor& mean_theta, double momentum, double lr);
void diloco_nesterov_step(std::span<OuterView* const> all, double momentum, double lr);

// Element-wise mean of the given tensors (a new tensor).
torch::Tensor mean_of(std::span<const torch::Tensor> ts);

}  // namespace noloco::trainer
