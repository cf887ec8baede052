// The training node's decisions as a sans-IO state machine (docs/node.md, "The node core"):
// whom to call, when to go solo, which callers' payloads are too stale, when to resync, when to
// checkpoint, whom to ban. No torch, no Asio, no clock: every event carries the time `now` in
// seconds on whatever clock the driver uses (steady clock in `noloco run`, virtual time in the
// swarm simulator), and every choice comes from a seeded CoreRng.
//
// Protocol: each event returns a Step = effects (fire and forget, in order) plus the one thing
// the core now waits for (`next`). The driver carries out the effects, performs `next`, and
// feeds the matching event back:
//   next kWaitPeers    -> on_live_view (poll until enough peers or `until`; also between calls
//                         to partners that said "no snapshot yet")
//   next kStateSync    -> on_state_fetched (download `peer`'s slow weights)
//   next kAdoptState   -> on_state_adopted
//   next kTrainPhase   -> on_phase_done (inner phase to the next multiple of H), or on_stopped
//   next kVerify       -> on_verified (check payload `slot` numerically)
//   next kCall         -> on_exchange_reply (one exchange with `peer`, give up at `deadline`)
//   next kApplyOuter   -> on_outer_applied (NoLoCo step with the payloads in `slots`; DiLoCo:
//                         heavy-ball step with the all-reduced mean Δ, or own Δ when `solo`)
//   next kAllReduce    -> on_allreduce_done (DiLoCo: mean Δ over `members` plus ourselves)
//   next kFinish       -> nothing more; final checkpoint and shutdown are the driver's.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "trainer/node/claim_watch.h"
#include "trainer/node/core_rng.h"
#include "trainer/node/partner_choice.h"
#include "trainer/node/strike_book.h"

namespace noloco::node {

// How a node combines its work at an outer step (the run manifest's `method`).
enum class Method {
  kNoloco,  // random pairs, no barrier (callers first, else one called partner)
  kDiloco,  // all-reduce of Δ among the live view, heavy-ball outer step (the baseline)
};

struct CoreConfig {
  Method method = Method::kNoloco;
  int64_t total_steps = 0;         // the run's inner steps
  int64_t H = 1;                   // inner steps per outer step
  int64_t max_staleness = 4;       // older payloads are not mixed, laggier peers not called
  int64_t resync_behind = 8;       // this far behind the most advanced live peer: state sync
  bool always_exchange = false;    // call a partner even when a caller already paired with us
  int exchange_tries = 3;          // partners tried per outer step
  double exchange_budget_s = 10.0; // for all tries of one outer step together (DiLoCo: the all-reduce)
  int64_t checkpoint_every = 5;    // outer steps between checkpoints (0: never)
  int64_t stop_after_outer = 0;    // stop (interrupted) after this many outer steps (0: never)
  int strikes_to_ban = 5;
  size_t want_peers = 0;           // a starting node waits for this many vantage points (vantage_points) ...
  double join_wait_s = 10.0;       // ... at most this long
  uint64_t seed = 0;               // partner choice
};

// A caller's payload waiting in the inbox at an outer-step boundary.
struct InboxItem {
  PeerRef peer = 0;
  uint64_t outer_step = 0;  // the outer step its payload was built at
};

// One exchange try as the driver saw it: the partner's answer, or why there is none.
struct ExchangeReply {
  bool answered = false;    // a well-formed payload came back (wire checks passed)
  uint64_t outer_step = 0;  // of that payload
  std::string failure;      // when not answered
  // Refused with kRefusalNoPayloadYet, and the partner's record (epoch, advertised outer step) in
  // our view when we called it: the evidence claim_watch.h weighs.
  bool no_payload_yet = false;
  uint64_t claimed_epoch = 0, claimed_outer = 0;
};

// Slot of a payload the core asks about: an index into the inbox of this outer step, or the
// partner's answer.
constexpr int kPartnerSlot = -1;

struct Notice {
  // kUnchanged: a payload that brings nothing new (the one already mixed, or an older one), as a
  // lagging or restarted honest peer sends: not mixed, not a refusal, not struck.
  enum class Kind { kStale, kRefused, kBanned, kStateSync, kStateSyncFailed, kUnchanged };
  explicit Notice(Kind k, PeerRef p = 0, std::string w = "", int64_t l = 0, std::string v = "")
      : kind(k), peer(p), why(std::move(w)), lag(l), via(std::move(v)) {}
  Kind kind;
  PeerRef peer = 0;
  std::string why;
  int64_t lag = 0;           // kStale
  double score = 0;          // kRefused: the peer's strike score after this refusal
  std::string via;           // kStale: "caller" or "partner"
  uint64_t outer_step = 0, inner_step = 0;  // kStateSync
};

// What one outer step decided, for the `outer` event and the metrics record.
struct OuterReport {
  bool called = false;                  // we called a partner (not only callers)
  bool partner_found = false;
  PeerRef partner = 0;                  // the partner called, or the first caller mixed
  std::vector<PeerRef> group;           // peers mixed (callers first)
  std::vector<int64_t> staleness;       // per group member
  std::vector<std::string> failures;    // "<why>" per failed try
  std::vector<PeerRef> failed_peers;    // per failed try
  double exchange_s = 0;                // time spent calling
  double blocked_s = 0;                 // phase done -> outer step applied
  bool allreduce = false;               // DiLoCo: an all-reduce was asked for (group: who was in it)
  uint64_t outer_step = 0;              // after the step
};

struct Effect {
  enum class Kind {
    kRecordOutcome,   // peer-book outcome: ok/score
    kBan,             // stop answering and choosing `peer`; persist the ban
    kNotice,          // an event worth reporting
    kWriteCheckpoint, // asynchronous checkpoint of the current state
    kPublish,         // publish state (and our payload when `with_payload`) for others
    kOuterDone,       // an outer step was taken: `report`
  };
  explicit Effect(Kind k) : kind(k) {}
  Kind kind;
  PeerRef peer = 0;
  bool ok = false;
  double score = 0;
  std::string why;
  bool with_payload = false;
  Notice notice{Notice::Kind::kStale};
  OuterReport report;
};

struct Next {
  enum class Kind {
    kWaitPeers, kStateSync, kAdoptState, kTrainPhase, kVerify, kCall, kAllReduce, kApplyOuter, kFinish
  };
  explicit Next(Kind k = Kind::kFinish, double u = 0) : kind(k), until(u) {}
  Kind kind;
  double until = 0;              // kWaitPeers: stop waiting then; kCall, kAllReduce: the deadline
  PeerRef peer = 0;              // kStateSync, kAdoptState, kVerify, kCall
  int slot = 0;                  // kVerify
  // kVerify of a payload too stale to mix (a caller more than max_staleness outer steps behind):
  // judged for strikes only, by the bounds staleness does not move (the norm of its own update),
  // and dropped whatever the verdict. Without it a peer that stays far enough behind is never
  // struck, whatever it sends.
  bool judge_only = false;
  std::vector<int> slots;        // kApplyOuter: inbox indices and/or kPartnerSlot
  std::vector<PeerRef> members;  // kAllReduce: the others expected in it (the driver adds itself)
  bool solo = false;             // kApplyOuter under DiLoCo: own Δ only (no mean to use)
  bool interrupted = false;      // kFinish
};

struct Step {
  std::vector<Effect> effects;
  Next next{Next::Kind::kFinish};
};

struct CoreCounters {
  int64_t outer_steps = 0, exchanges = 0, solo_steps = 0, resyncs = 0, bans = 0, refused = 0, stale = 0;
  int64_t calls = 0, call_failures = 0, checkpoints = 0;
  int64_t allreduces = 0, allreduce_failures = 0;  // DiLoCo
};

class NodeCore {
 public:
  static constexpr double kJoiningRetryS = 1.0;  // partners that were all joining: call again after this

  explicit NodeCore(CoreConfig config);

  // The node's progress when it starts (fresh or resumed) and its first look at the swarm.
  Step on_start(double now, int64_t inner_step, int64_t outer_step, std::span<const LivePeer> live);
  Step on_live_view(double now, std::span<const LivePeer> live);
  // served_by: the peer that actually served the state, when the driver fell back from `peer`.
  Step on_state_fetched(double now, bool ok, const std::string& why, uint64_t outer_step, uint64_t inner_step,
                        std::optional<PeerRef> served_by = std::nullopt);
  Step on_state_adopted(double now, bool ok, const std::string& why);
  Step on_phase_done(double now, int64_t inner_step, std::span<const InboxItem> inbox,
                     std::span<const LivePeer> live);
  Step on_stopped();
  // A refusal adds `weight` to the peer's score (strike_book.h). Weight 0 is a payload that brings
  // nothing new (kUnchanged: an honest lagging partner's unchanged answer, a restarted peer's
  // older step): not mixed, not scored, not a refusal; for the called partner the core then tries
  // another one, as for a stale answer.
  Step on_verified(double now, bool ok, const std::string& why, double weight = kSuspectStrike);
  Step on_exchange_reply(double now, const ExchangeReply& reply, std::span<const LivePeer> live);
  Step on_outer_applied(double now, std::span<const LivePeer> live);
  // DiLoCo: the all-reduce ended; `members_used` are the others the mean was taken over (empty:
  // a ring of one). Not ok: `failure` says why, and the step is taken with our own Δ.
  Step on_allreduce_done(double now, bool ok, std::span<const PeerRef> members_used, const std::string& failure,
                         std::span<const LivePeer> live);
  // A peer refused outside an exchange step (a malformed wire message, a forged record, a state
  // snapshot its witnesses outvoted); may be called any time.
  std::vector<Effect> on_peer_misbehaved(PeerRef peer, const std::string& why, double weight = kProofStrike);

  int64_t inner_step() const { return inner_; }
  int64_t outer_step() const { return outer_; }
  const CoreCounters& counters() const { return counters_; }
  bool banned(PeerRef peer) const { return strikes_.banned(peer); }
  double score(PeerRef peer) const { return strikes_.score(peer); }
  bool joining() const { return phase_ == Phase::kJoining; }
  // What the join wait counts: verified peers, those from one address bucket once.
  static size_t vantage_points(std::span<const LivePeer> live);

 private:
  enum class Phase { kIdle, kJoining, kJoinSync, kResync, kTraining, kInbox, kCalling, kCallWait, kAllReducing, kApplying, kDone };

  Next sync_or(double now, int64_t min_ahead, Phase then);
  Next done_sync();
  Next continue_training();
  Next next_inbox_item(double now);
  Next call_or_apply(double now);
  Next next_call(double now);
  Next give_up(double now);
  Next wait_or_give_up(double now);
  // A live peer to call first: it said "no snapshot yet" and has moved its claim since (claim_watch.h).
  std::optional<LivePeer> recheck_candidate(std::span<const PeerRef> exclude) const;
  Next apply();
  Next allreduce_or_solo(double now);
  Next finish(bool interrupted);
  // fades: a refusal of a payload (on_verified), forgiven over time below a proof (strike_book.h).
  void strike(PeerRef peer, const std::string& why, double weight, bool fades = false);
  void refuse(PeerRef peer, const std::string& why, double weight, bool fades = false);
  void effect(Effect e) { pending_.push_back(std::move(e)); }
  Step step(Next next) { return Step{std::exchange(pending_, {}), std::move(next)}; }

  CoreConfig cfg_;
  CoreRng rng_;
  StrikeBook strikes_;
  ClaimWatch claims_;
  CoreCounters counters_;
  Phase phase_ = Phase::kIdle;
  int64_t inner_ = 0, outer_ = 0, outer_here_ = 0;

  // Join wait and state sync.
  double join_until_ = 0;
  PeerRef sync_peer_ = 0;
  uint64_t sync_outer_ = 0, sync_inner_ = 0;

  // The outer step in progress.
  std::vector<InboxItem> inbox_;
  size_t inbox_next_ = 0;
  int verifying_slot_ = 0;
  std::vector<int> slots_;
  OuterReport report_;
  std::vector<PeerRef> tried_;
  int tries_left_ = 0;
  bool only_joining_ = true;  // every failed call of this outer step so far said "no snapshot yet"
  double phase_done_at_ = 0, call_started_ = 0, call_deadline_ = 0, call_wait_until_ = 0;
  PeerRef calling_ = 0;
  uint64_t partner_outer_ = 0;
  std::vector<LivePeer> live_;   // the latest live view an event brought
  std::vector<Effect> pending_;  // effects of the event being handled
};

}  // namespace noloco::node
