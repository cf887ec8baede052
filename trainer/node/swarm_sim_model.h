// The swarm simulator's stand-in for training (swarm_sim.h): weights are small vectors, an inner
// phase moves θ part of the way toward the node's own optimum (plus noise), and the outer step is
// NoLoCo's, exactly as apply_outer_step (node_payload.h) applies it to tensors in `delta_phi`
// form: δ ← α·δ + β·mean Δ − γ·(φ − mean φ), φ ← φ + δ, θ ← φ.
#pragma once

#include <cmath>
#include <span>
#include <vector>

#include "trainer/node/core_rng.h"

namespace noloco::node::sim {

using Vec = std::vector<double>;

struct Weights {
  Vec theta, phi, delta;
};

// A standard normal draw (Box-Muller on CoreRng, so platform-independent).
inline double normal(CoreRng& rng) {
  const double u1 = 1.0 - rng.unit(), u2 = rng.unit();
  return std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2);
}

inline void inner_phase(Weights& w, const Vec& optimum, double rate, double noise, CoreRng& rng) {
  for (size_t k = 0; k < w.phi.size(); ++k)
    w.theta[k] = w.phi[k] + rate * (optimum[k] - w.phi[k]) + noise * normal(rng);
}

// One payload's contribution: Δ = θ − φ and φ of its sender at its phase end.
struct Contribution {
  const Vec* delta;
  const Vec* phi;
};

inline void outer_step(Weights& w, std::span<const Contribution> peers, double alpha, double beta, double gamma) {
  const double n = static_cast<double>(peers.size() + 1);
  for (size_t k = 0; k < w.phi.size(); ++k) {
    double mean_delta = w.theta[k] - w.phi[k], mean_phi = w.phi[k];
    for (const auto& c : peers) {
      mean_delta += (*c.delta)[k];
      mean_phi += (*c.phi)[k];
    }
    mean_delta /= n;
    mean_phi /= n;
    w.delta[k] = alpha * w.delta[k] + beta * mean_delta - gamma * (w.phi[k] - mean_phi);
    w.phi[k] += w.delta[k];
    w.theta[k] = w.phi[k];
  }
}

// Mean Euclidean distance of the vectors from their mean.
inline double spread(std::span<const Vec* const> vs) {
  if (vs.empty()) return 0;
  Vec mean(vs[0]->size(), 0.0);
  for (const Vec* v : vs)
    for (size_t k = 0; k < v->size(); ++k) mean[k] += (*v)[k] / static_cast<double>(vs.size());
  double total = 0;
  for (const Vec* v : vs) {
    double d = 0;
    for (size_t k = 0; k < v->size(); ++k) d += ((*v)[k] - mean[k]) * ((*v)[k] - mean[k]);
    total += std::sqrt(d);
  }
  return total / static_cast<double>(vs.size());
}

}  // namespace noloco::node::sim
