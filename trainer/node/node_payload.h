// The trainer side of an exchange (docs/protocols/exchange.md): building our payload from the
// replica, checking a peer's payload numerically before it may touch the model, and the NoLoCo
// outer step over ourselves plus the peers we mixed with. Also the state-sync blob.
//
// Includes torch: only trainer/node .cc files and tests include this header.
#pragma once

#include <torch/torch.h>

#include <optional>
#include <span>
#include <string>

#include "common/status.h"
#include "trainer/core/codec.h"
#include "trainer/core/outer.h"
#include "trainer/core/replica.h"
#include "trainer/node/exchange_wire.h"
#include "trainer/node/trajectory_evidence.h"

namespace noloco::node {

struct PayloadSettings {
  codec::EncodeOptions codec;
  WireForm form = WireForm::kDeltaPhi;
  std::string run_id;
  std::string sender;  // our peer id text
  // Non-empty: the payload is framed into an unlinked file in this folder, a tensor at a time
  // (payload_spool.h), so that neither it nor more than one tensor's codec message is ever in
  // the heap. Empty: the frames stay in memory.
  std::string spool_dir;
};

// Our payload at an outer-step boundary, framed for the wire: Δ = θ − φ and φ (kDeltaPhi) or θ
// (kTheta), encoded a chunk at a time, so that nothing model-sized exists besides the encoded
// payload itself (spooled: one tensor's encoded message at most).
Result<WirePayload> build_payload(const trainer::Replica& replica, const PayloadSettings& settings);
// build_payload, and when spooling fails (a full disk, a folder gone) the same payload in memory:
// a node must keep training and exchanging when its store's disk fills (docs/checkpoints.md, "Disk
// faults"). `*spool_error` is set to why the spool failed, empty when it did not.
Result<WirePayload> build_payload_or_in_memory(const trainer::Replica& replica, const PayloadSettings& settings,
                                               std::string* spool_error);

// How a peer's update compares with ours, on the vectors the outer step mixes: u_own = θ_own − φ_own
// and u_peer = Δ_peer (delta_phi) or θ_peer − φ_own (theta). Logged for every payload and used by
// the acceptance rule (docs/protocols/exchange.md, "Robust acceptance").
struct PayloadStats {
  double cosine = 0;      // cos(u_peer, u_own); 1 when either is zero
  double norm_ratio = 0;  // ‖u_peer‖ / max(‖u_own‖, floor · ‖φ_own‖)
  double phi_spread = 0;  // ‖φ_peer − φ_own‖ / max(‖u_own‖, floor · ‖φ_own‖) (delta_phi; theta: 0)
  // cos(u_peer, δ_own), δ_own being our slow weights' last movement (after mixing, the swarm's
  // recent direction); 0 before we ever moved. Logged, for measuring a reference direction.
  double momentum_cosine = 0;
};

// A peer's contribution after every check passed: its codec messages, kept encoded (a quarter to
// a half of the decoded size) and decoded again a chunk at a time when the step is applied.
struct PeerContribution {
  std::string sender;
  uint64_t outer_step = 0;
  WireForm form = WireForm::kDeltaPhi;
  std::vector<Bytes> tensors;  // in the form's order: delta, phi (kDeltaPhi) or theta (kTheta)
  PayloadStats stats;
};

// How far a peer's tensors may be from ours before we refuse them (docs/protocols/exchange.md,
// "Robust acceptance", where the honest distributions these follow from are measured).
struct VerifyLimits {
  double delta_floor = 1e-2;        // updates smaller than this · ‖φ_own‖ count as this large
  // Norm bound relative to our own update (Sun et al. 2019, "Can you really backdoor federated
  // learning?", arXiv 1911.07963, with our update as the bound's scale). Honest maxima measured:
  // 2.7 (delta_phi), 12.3 (theta, where θ_peer − φ_own also carries the spread of a peer up to
  // max-staleness outer steps behind us).
  double max_norm_ratio_delta_phi = 10.0;
  double max_norm_ratio_theta = 30.0;
  // Trusted-reference direction test (after FLTrust, Cao et al., NDSS 2021, with our update as
  // the trusted reference): refuse when cos(u_peer, u_own) is below this. FLTrust cuts at 0;
  // honest delta_phi partners were measured down to −0.08, so the cut is lower. The theta form
  // has none (−1 refuses nothing finite): θ_peer − φ_own carries the pull toward a peer behind us,
  // which points against our update, and honest cosines were measured down to −0.71.
  double min_cosine_delta_phi = -0.2;
  double min_cosine_theta = -1.0;
  // The same norm bound on what the γ term pulls toward (delta_phi): ‖φ_peer − φ_own‖ over our
  // update's norm; honest ≤ 8.3 measured. Catches slow weights replaced (zeros, noise, another
  // model) that are still within max_phi_distance.
  double max_phi_spread = 20.0;
  double max_phi_distance = 2.0;    // ‖φ_peer − φ_own‖ <= this · ‖φ_own‖ (θ_peer likewise)
};

// The bounds a stale payload is held to (judged, never mixed: NodeDriver::judge_stale): only the
// norm of its own update (delta_phi). Its slow weights and direction are those of a replica many
// outer steps behind ours, so the φ spread, distance and direction bounds would strike honest
// laggards; θ − φ_own (theta form) carries the same spread, so nothing bounds a stale theta payload.
VerifyLimits stale_payload_limits();

// The acceptance rule on a payload's stats: OK, or why the payload is refused.
Status judge_update(const PayloadStats& s, const VerifyLimits& lim, WireForm form);
// The strike weight of judge_update's refusal of these stats: for the norm ratio, how far past
// its bound it is (update_evidence.h, norm_refusal_weight); a spread or direction refusal is a
// suspect strike.
double refusal_weight(const PayloadStats& s, const VerifyLimits& lim, WireForm form);

// The numbers of PayloadStats for our update `own`, the peer's `peer` and φ_peer − φ_own
// (`phi_diff`, undefined for the theta form). `floor` · ‖φ_own‖ is the smallest update norm we
// compare with (VerifyLimits::delta_floor).
PayloadStats compare_updates(const torch::Tensor& own, const torch::Tensor& peer, const torch::Tensor& phi_diff,
                             double phi_norm, double floor);
// The same from the norms and the dot product (phi_diff_norm < 0: none, the theta form).
PayloadStats stats_from_norms(double own_norm, double peer_norm, double dot, double phi_diff_norm, double phi_norm,
                              double floor);

// Decodes every tensor a chunk at a time (codec checks: header, sizes, checksum, finite values)
// and checks element count and the norm bounds against our replica; the statistics are sums over
// the chunks, so no decoded tensor is ever whole. Nothing is modified; on success the payload's
// codec messages move into the contribution. `seen`, when given, receives the statistics whenever
// they were computed, a refusal by judge_update included (the strike weighs them: update_evidence.h);
// `sketch`, when given, the payload's Δ and φ at the sketched indices (delta_phi form only,
// trajectory_evidence.h).
Result<PeerContribution> verify_payload(Payload&& payload, const trainer::Replica& self,
                                        const ExchangeExpectations& expect, const VerifyLimits& limits,
                                        std::optional<PayloadStats>* seen = nullptr, UpdateSketch* sketch = nullptr);

// One outer step of `self` with the group {self} ∪ peers (a group of one is the solo step):
// kDeltaPhi: δ ← α·δ + β·mean Δ − γ·(φ − mean φ); kTheta: δ ← α·δ + β·(mean θ − φ); then φ ← φ + δ,
// θ ← φ, a chunk at a time (every temporary is chunk-sized). Counts the outer step. Fails only on an
// internal error (the messages passed verify_payload, which runs the same checks on the same bytes);
// the replica may then be partly updated.
Status apply_outer_step(trainer::Replica& self, std::span<const PeerContribution> peers,
                        const trainer::NolocoParams& params, WireForm form);

// State sync: the blob is one fp32 codec message of φ (exact).
Result<Bytes> build_state_blob(const trainer::Replica& replica);
// Takes a peer's slow weights: θ = φ = blob, δ = 0, inner/outer counters from the peer (the
// learning-rate schedule continues where the swarm is); Adam moments and data cursor stay ours.
// The blob is checked whole before it is decoded straight into φ (no model-sized temporary).
Status adopt_state(trainer::Replica& replica, ByteView blob, uint64_t outer_step, uint64_t inner_step);

}  // namespace noloco::node
