// The trainer side of an exchange (docs/protocols/exchange.md): building our payload from the
// replica, checking a peer's payload numerically before it may touch the model, and the NoLoCo
// outer step over ourselves plus the peers we mixed with. Also the state-sync blob.
//
// Includes torch: only trainer/node .cc files and tests include this header.
#pragma once

#include <torch/torch.h>

#include <span>
#include <string>

#include "common/status.h"
#include "trainer/core/codec.h"
#include "trainer/core/outer.h"
#include "trainer/core/replica.h"
#include "trainer/node/exchange_wire.h"

namespace noloco::node {

struct PayloadSettings {
  codec::EncodeOptions codec;
  WireForm form = WireForm::kDeltaPhi;
  std::string run_id;
  std::string sender;  // our peer id text
};

// Our payload at an outer-step boundary: Δ = θ − φ and φ (kDeltaPhi) or θ (kTheta).
Result<Payload> build_payload(const trainer::Replica& replica, const PayloadSettings& settings);

// A peer's contribution after every check passed (fp32 tensors on the replica's device).
struct PeerContribution {
  std::string sender;
  uint64_t outer_step = 0;
  torch::Tensor delta, phi;  // kDeltaPhi
  torch::Tensor theta;       // kTheta
};

// How far a peer's tensors may be from ours before we refuse them (docs/protocols/exchange.md,
// "What is verified"). Replicas of one run stay close; a payload far outside these bounds is
// either broken or hostile.
struct VerifyLimits {
  // Loose on purpose: honest replicas at different points of the run (a slow node, one just
  // back from a state sync) differ a lot; these catch broken or hostile tensors, which are off
  // by orders of magnitude.
  double max_delta_ratio = 50.0;    // ‖Δ_peer‖ <= ratio · max(‖Δ_own‖, floor · ‖φ_own‖)
  double delta_floor = 1e-2;
  double max_phi_distance = 2.0;    // ‖φ_peer − φ_own‖ <= this · ‖φ_own‖ (θ_peer likewise)
};

// Decodes every tensor (codec checks: header, sizes, checksum) and checks element count,
// finiteness and the norm bounds against our replica. Nothing is modified.
Result<PeerContribution> verify_payload(const Payload& payload, const trainer::Replica& self,
                                        const ExchangeExpectations& expect, const VerifyLimits& limits);

// One outer step of `self` with the group {self} ∪ peers (a group of one is the solo step):
// kDeltaPhi: δ ← α·δ + β·mean Δ − γ·(φ − mean φ); kTheta: δ ← α·δ + β·(mean θ − φ); then φ ← φ + δ,
// θ ← φ. Counts the outer step.
void apply_outer_step(trainer::Replica& self, std::span<const PeerContribution> peers,
                      const trainer::NolocoParams& params, WireForm form);

// State sync: the blob is one fp32 codec message of φ (exact).
Result<Bytes> build_state_blob(const trainer::Replica& replica);
// Takes a peer's slow weights: θ = φ = blob, δ = 0, inner/outer counters from the peer (the
// learning-rate schedule continues where the swarm is); Adam moments and data cursor stay ours.
Status adopt_state(trainer::Replica& replica, ByteView blob, uint64_t outer_step, uint64_t inner_step);

}  // namespace noloco::node
