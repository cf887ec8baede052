// Outer optimizer steps, in place on flat tensors (see outer.h and docs/algorithm.md §2–3).
#include "trainer/core/outer.h"

#include <cmath>
#include <sstream>
#include <vector>

namespace noloco::trainer {

std::string noloco_param_warning(const NolocoParams& p) {
  const double upper = std::sqrt(2.0 + p.alpha * p.alpha);
  if (p.alpha < p.gamma && p.gamma < upper) return {};
  std::ostringstream s;
  s << "NoLoCo parameters outside the bounded-variance range alpha < gamma < sqrt(2 + alpha^2) "
    << "(alpha=" << p.alpha << ", gamma=" << p.gamma << ", upper bound " << upper
    << "): replica weights may drift apart";
  return s.str();
}

torch::Tensor pseudo_gradient(const OuterView& r) { return r.theta - r.phi; }

torch::Tensor mean_of(std::span<const torch::Tensor> ts) {
  torch::NoGradGuard no_grad;
  torch::Tensor sum = ts[0].clone();
  for (size_t i = 1; i < ts.size(); ++i) sum.add_(ts[i]);
  return sum.div_(static_cast<double>(ts.size()));
}

void noloco_apply(OuterView& r, const torch::Tensor& mean_delta, const torch::Tensor& mean_phi,
                  const NolocoParams& p) {
  torch::NoGradGuard no_grad;
  r.delta.mul_(p.alpha).add_(mean_delta, p.beta);
  if (p.gamma != 0.0) r.delta.add_(r.phi - mean_phi, -p.gamma);
  r.phi.add_(r.delta);
  r.theta.copy_(r.phi);
}

void noloco_apply_theta(OuterView& r, const torch::Tensor& mean_theta, double alpha, double beta) {
  torch::NoGradGuard no_grad;
  r.delta.mul_(alpha).add_(mean_theta - r.phi, beta);
  r.phi.add_(r.delta);
  r.theta.copy_(r.phi);
}

void noloco_group_step(std::span<OuterView* const> group, const NolocoParams& p) {
  torch::NoGradGuard no_grad;
  if (group.empty()) return;
  // Both means from values before anyone in the group moves.
  torch::Tensor mean_delta = group[0]->theta - group[0]->phi;
  torch::Tensor mean_phi = group[0]->phi.clone();
  for (size_t i = 1; i < group.size(); ++i) {
    mean_delta.add_(group[i]->theta).sub_(group[i]->phi);
    mean_phi.add_(group[i]->phi);
  }
  const double inv = 1.0 / static_cast<double>(group.size());
  mean_delta.mul_(inv);
  mean_phi.mul_(inv);
  for (OuterView* r : group) noloco_apply(*r, mean_delta, mean_phi, p);
}

void heavy_ball_apply(OuterView& r, const torch::Tensor& mean_delta, double alpha, double beta) {
  torch::NoGradGuard no_grad;
  r.delta.mul_(alpha).add_(mean_delta, beta);
  r.phi.add_(r.delta);
  r.theta.copy_(r.phi);
}

void diloco_heavy_ball_step(std::span<OuterView* const> all, double alpha, double beta) {
  torch::NoGradGuard no_grad;
  if (all.empty()) return;
  torch::Tensor mean_delta = all[0]->theta - all[0]->phi;
  for (size_t i = 1; i < all.size(); ++i) mean_delta.add_(all[i]->theta).sub_(all[i]->phi);
  mean_delta.div_(static_cast<double>(all.size()));
  for (OuterView* r : all) heavy_ball_apply(*r, mean_delta, alpha, beta);
}

void nesterov_apply(OuterView& r, const torch::Tensor& mean_theta, double momentum, double lr) {
  torch::NoGradGuard no_grad;
  torch::Tensor g = r.phi - mean_theta;
  r.delta.mul_(momentum).add_(g);
  r.phi.sub_(g.add_(r.delta, momentum), lr);
  r.theta.copy_(r.phi);
}

void diloco_nesterov_step(std::span<OuterView* const> all, double momentum, double lr) {
  torch::NoGradGuard no_grad;
  if (all.empty()) return;
  torch::Tensor mean_theta = all[0]->theta.clone();
  for (size_t i = 1; i < all.size(); ++i) mean_theta.add_(all[i]->theta);
  mean_theta.div_(static_cast<double>(all.size()));
  for (OuterView* r : all) nesterov_apply(*r, mean_theta, momentum, lr);
}

}  // namespace noloco::trainer
