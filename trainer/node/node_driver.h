// The thin adapters between the node core (node_core.h) and the node's real parts
// (node_setup.h): they carry out the core's effects and waits with the torch replica, the
// NodeNetwork and the store, and turn what happened into the core's next event. No decisions
// here; the loop that joins the two is run_node (node_run.cc).
#pragma once

#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <random>
#include <vector>

#include "trainer/node/node_core.h"
#include "trainer/node/node_setup.h"
#include "trainer/node/replay_guard.h"
#include "trainer/node/state_server_memory.h"
#include "trainer/node/trajectory_evidence.h"
#include "trainer/node/update_evidence.h"

namespace noloco::node {

// PeerIds as the core's opaque PeerRefs, and the latest record seen for each (to dial it).
class PeerTable {
 public:
  PeerRef ref(const p2p::PeerId& id);
  const p2p::PeerId& id(PeerRef ref) const { return ids_.at(ref); }
  std::vector<LivePeer> view(const std::vector<NodeNetwork::LiveRecord>& live);
  const p2p::PeerRecord* record(PeerRef ref) const;

 private:
  std::map<p2p::PeerId, PeerRef> refs_;
  std::vector<p2p::PeerId> ids_;
  std::map<PeerRef, p2p::PeerRecord> records_;
  std::map<std::string, uint32_t> origins_;  // address bucket -> LivePeer::origin (from 1)
};

class NodeDriver {
 public:
  NodeDriver(NodeParts& parts, const NodeOptions& options, const NodeSinks& sinks, const std::atomic<bool>* stop);

  double now() const;
  bool stopped() const { return stop_ && stop_->load(); }
  std::vector<LivePeer> live();
  CoreConfig core_config() const;
  void emit_start();
  // Samples NodeProgress into sinks.on_progress (when set).
  void progress(const char* phase);

  // Effects.
  Status apply_effects(const std::vector<Effect>& effects);
  // Waits: each performs one and feeds the core the matching event.
  Step wait_peers(NodeCore& core, double until);
  Step state_sync(NodeCore& core, PeerRef peer);
  Step adopt_state_from(NodeCore& core);
  Result<Step> train_phase(NodeCore& core);
  // `judge_only`: a stale payload, checked against the bounds staleness does not move and dropped.
  Step verify(NodeCore& core, int slot, bool judge_only = false);
  Step judge_stale(NodeCore& core, ReceivedPayload& rp, const ExchangeExpectations& e);
  Step call(NodeCore& core, PeerRef peer, double until);
  // DiLoCo: Δ averaged over ourselves and `members` within the deadline (node_core.h kAllReduce).
  Step allreduce(NodeCore& core, const std::vector<PeerRef>& members, double until);
  // NoLoCo with the payloads in `slots`; DiLoCo with the all-reduced mean, or own Δ when `solo`.
  Result<Step> apply_outer(NodeCore& core, const Next& next);
  // Network events (refused wire messages, peers seen) into the core and the store.
  Status drain_events(NodeCore& core);
  // Final checkpoint, `done` event, linger, shutdown.
  Result<NodeSummary> finish(NodeCore& core, bool interrupted);

 private:
  void emit(const std::string& json);
  void emit_notice(const Notice& n);
  void emit_outer(const OuterReport& r);
  bool diloco() const { return p_.manifest.method == "diloco"; }
  // Our state (when φ may have changed) and our payload (at a phase end) for others.
  Status publish(bool with_payload, bool with_state);

  NodeParts& p_;
  const NodeOptions& o_;
  const NodeSinks& sinks_;
  const std::atomic<bool>* stop_;
  std::chrono::steady_clock::time_point t0_;
  PeerTable peers_;
  size_t live_count_ = 0;  // size of the last live view (progress() must not ask the network thread)
  // State sync's witness ranges: unpredictable to the server (trainer/node/state_check.h).
  std::mt19937_64 sync_rng_{std::random_device{}()};
  // State servers that failed a download lately (not tried again for a while), and the check of
  // a claim nobody backs before a download (state_server_memory.h).
  StateServerMemory<PeerRef> servers_;
  void screen_state_servers(std::vector<p2p::PeerRecord>& candidates, uint64_t ours);
  // A payload too old to mix is dropped by the core unverified; content we mixed under another
  // outer step coming back in one is still a replay (replay_guard.h), struck here.
  void strike_stale_replay(NodeCore& core, const ReceivedPayload& rp, bool as_answer);

  std::shared_ptr<const WirePayload> mine_;   // our payload of this outer step
  std::vector<ReceivedPayload> inbox_;        // callers' payloads of this outer step
  std::optional<ReceivedPayload> answer_;     // the partner's answer
  std::map<int, PeerContribution> accepted_;  // verified, by slot
  ReplayGuard replays_;                       // what we mixed from whom (replayed payloads)
  NoiseEvidence noise_;                       // recent cosines per peer (updates that are noise)
  DirectionEvidence direction_;               // and with our movement (sign-flipped updates)
  TrajectoryEvidence trajectory_;             // and with its own slow weights' movement
  std::shared_ptr<const StateSnapshot> own_state_;  // what we last published (a state sync's reference)
  // Our weights now as a state blob, when nothing is published yet (state_fetch.h, StateFetchPlan::own).
  std::shared_ptr<const StateSnapshot> reference_state() const;
  std::optional<StateFetched> fetched_;
  std::vector<float> mean_delta_;             // DiLoCo: the all-reduced mean Δ of this outer step
  std::optional<AllReduceOutcome> reduced_;   // DiLoCo: how it was taken (for the `outer` event)
  TrafficTotals traffic_before_;
  double last_loss_ = 0, tokens_per_s_ = 0, last_val_ = 0, sync_val_before_ = 0;
  std::chrono::steady_clock::time_point sync_started_;
};

}  // namespace noloco::node
