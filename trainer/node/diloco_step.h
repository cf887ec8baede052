// The trainer side of the DiLoCo baseline (docs/node.md, "DiLoCo"): our pseudo-gradient as the
// flat fp32 vector the all-reduce averages, and the heavy-ball outer step with the mean it
// returns. Includes torch: only trainer/node .cc files and tests include this header.
#pragma once

#include <span>
#include <vector>

#include "common/status.h"
#include "trainer/core/replica.h"

namespace noloco::node {

// Δ = θ − φ as a host fp32 vector (one element per model parameter).
std::vector<float> pseudo_gradient_vector(const trainer::Replica& replica);

// δ ← α·δ + β·mean_Δ; φ ← φ + δ; θ ← φ (trainer::heavy_ball_apply); counts the outer step.
// kInvalidArgument, the replica untouched, when mean_delta is not one value per parameter.
Status apply_diloco_step(trainer::Replica& replica, std::span<const float> mean_delta, double alpha, double beta);

// The same with our own Δ as the mean: the step of a group of one.
void apply_diloco_solo_step(trainer::Replica& replica, double alpha, double beta);

}  // namespace noloco::node
