// The node core's rules (node_core.h). Each rule is the one `noloco run` followed before the core
// existed (docs/node.md): callers' payloads first, a called partner only when no caller paired
// with us (or --always-exchange), staleness bound on both, tries and budget per outer step, solo
// step when nobody answers, resync when far behind, checkpoints every K outer steps, a ban after
// enough strikes. DiLoCo (Method::kDiloco) replaces the pairing by one all-reduce among the live
// view at every outer step; everything else (sync, checkpoints, stop rules) is shared.
#include "trainer/node/node_core.h"

#include <algorithm>
#include <set>

namespace noloco::node {

NodeCore::NodeCore(CoreConfig config) : cfg_(std::move(config)), rng_(cfg_.seed), strikes_(cfg_.strikes_to_ban) {}

// ---------------------------------------------------------------- start, join wait, state sync

Step NodeCore::on_start(double now, int64_t inner_step, int64_t outer_step, std::span<const LivePeer> live) {
  inner_ = inner_step;
  outer_ = outer_step;
  if (cfg_.want_peers == 0) {
    phase_ = Phase::kJoinSync;
    return step(done_sync());
  }
  // A node told where the swarm is waits for it before its first step.
  phase_ = Phase::kJoining;
  join_until_ = now + cfg_.join_wait_s;
  return on_live_view(now, live);
}

Step NodeCore::on_live_view(double now, std::span<const LivePeer> live) {
  live_.assign(live.begin(), live.end());
  if (phase_ == Phase::kCallWait) {  // partners that were joining: call again (wait_or_give_up)
    if (now < call_wait_until_) return step(Next{Next::Kind::kWaitPeers, call_wait_until_});
    phase_ = Phase::kCalling;
    tried_.clear();
    tries_left_ = cfg_.exchange_tries;
    return step(next_call(now));
  }
  if (phase_ != Phase::kJoining) return step(Next{Next::Kind::kWaitPeers, join_until_});
  if (vantage_points(live) < cfg_.want_peers && now < join_until_) return step(Next{Next::Kind::kWaitPeers, join_until_});
  // A fresh node starts from the swarm's weights as soon as the swarm is one outer step ahead;
  // a resumed one only when it is as far behind as the resync rule says.
  return step(sync_or(now, inner_ == 0 ? 1 : cfg_.resync_behind, Phase::kJoinSync));
}

// What the join wait counts: peers that spoke for themselves, those from one address bucket once.
// Hearsay costs an eclipse flood nothing and identities cost a Sybil nothing: before this, either
// ended a bootstrap node's wait for its swarm and it trained alone (docs/defences.md, "Join wait").
size_t NodeCore::vantage_points(std::span<const LivePeer> live) {
  size_t n = 0;
  std::set<uint32_t> origins;
  for (const LivePeer& p : live) {
    if (!p.verified) continue;
    if (p.origin == 0) ++n;
    else origins.insert(p.origin);
  }
  return n + origins.size();
}

Next NodeCore::sync_or(double now, int64_t min_ahead, Phase then) {
  phase_ = then;
  auto best = most_advanced(live_);
  if (!best || static_cast<int64_t>(best->outer_step) - outer_ < min_ahead) return done_sync();
  sync_peer_ = best->peer;
  Next n{Next::Kind::kStateSync};
  n.peer = best->peer;
  return n;
}

Step NodeCore::on_state_fetched(double now, bool ok, const std::string& why, uint64_t outer_step,
                                uint64_t inner_step, std::optional<PeerRef> served_by) {
  if (ok && served_by) sync_peer_ = *served_by;
  if (!ok) {
    Effect e{Effect::Kind::kNotice};
    e.notice = Notice{Notice::Kind::kStateSyncFailed, sync_peer_, why};
    effect(std::move(e));
    return step(done_sync());
  }
  // Nothing to gain from a state past the run's end or not ahead of ours.
  if (inner_step > static_cast<uint64_t>(cfg_.total_steps) || outer_step <= static_cast<uint64_t>(outer_))
    return step(done_sync());
  sync_outer_ = outer_step;
  sync_inner_ = inner_step;
  Next n{Next::Kind::kAdoptState};
  n.peer = sync_peer_;
  return step(n);
}

Step NodeCore::on_state_adopted(double now, bool ok, const std::string& why) {
  if (!ok) {
    strike(sync_peer_, why, kSuspectStrike);
    return step(done_sync());
  }
  outer_ = static_cast<int64_t>(sync_outer_);
  inner_ = static_cast<int64_t>(sync_inner_);
  ++counters_.resyncs;
  Effect e{Effect::Kind::kNotice};
  e.notice = Notice{Notice::Kind::kStateSync, sync_peer_};
  e.notice.outer_step = sync_outer_;
  e.notice.inner_step = sync_inner_;
  effect(std::move(e));
  return step(done_sync());
}

Next NodeCore::done_sync() {
  if (phase_ == Phase::kJoinSync) {
    // What others get from us before our first outer step here: our state, and our payload
    // when we have trained before (a resumed or synced node).
    Effect e{Effect::Kind::kPublish};
    e.with_payload = cfg_.method == Method::kNoloco && (outer_ > 0 || inner_ > 0);
    effect(std::move(e));
  }
  return continue_training();
}

Next NodeCore::continue_training() {
  if (inner_ >= cfg_.total_steps) return finish(false);
  if (cfg_.stop_after_outer > 0 && outer_here_ >= cfg_.stop_after_outer) return finish(true);
  phase_ = Phase::kTraining;
  return Next{Next::Kind::kTrainPhase};
}

Next NodeCore::finish(bool interrupted) {
  phase_ = Phase::kDone;
  Next n{Next::Kind::kFinish};
  n.interrupted = interrupted;
  return n;
}

Step NodeCore::on_stopped() { return step(finish(true)); }

// ---------------------------------------------------------------- one outer step

Step NodeCore::on_phase_done(double now, int64_t inner_step, std::span<const InboxItem> inbox,
                             std::span<const LivePeer> live) {
  inner_ = inner_step;
  live_.assign(live.begin(), live.end());
  // The run's end fell inside this phase: no outer step for a partial phase.
  if (cfg_.H > 0 && inner_ % cfg_.H != 0) return step(finish(false));
  phase_done_at_ = now;
  inbox_.assign(inbox.begin(), inbox.end());
  inbox_next_ = 0;
  slots_.clear();
  tried_.clear();
  report_ = OuterReport{};
  if (cfg_.method == Method::kDiloco) return step(allreduce_or_solo(now));  // callers are not used
  phase_ = Phase::kInbox;
  // Peers that called us since our last outer step already paired with us (they mixed our
  // snapshot; we mix their payload): their payloads come first.
  return step(next_inbox_item(now));
}

Next NodeCore::next_inbox_item(double now) {
  for (; inbox_next_ < inbox_.size(); ++inbox_next_) {
    const InboxItem& item = inbox_[inbox_next_];
    const int64_t lag = outer_ - static_cast<int64_t>(item.outer_step);
    const bool stale = lag > cfg_.max_staleness;
    if (stale) {
      ++counters_.stale;
      Effect e{Effect::Kind::kNotice};
      e.notice = Notice{Notice::Kind::kStale, item.peer, "", lag, "caller"};
      effect(std::move(e));
    }
    verifying_slot_ = static_cast<int>(inbox_next_);
    Next n{Next::Kind::kVerify};
    n.peer = item.peer;
    n.slot = verifying_slot_;
    n.judge_only = stale;
    return n;
  }
  return call_or_apply(now);
}

Step NodeCore::on_verified(double now, bool ok, const std::string& why, double weight) {
  const bool partner = verifying_slot_ == kPartnerSlot;
  const PeerRef peer = partner ? calling_ : inbox_[static_cast<size_t>(verifying_slot_)].peer;
  const uint64_t their_outer = partner ? partner_outer_ : inbox_[static_cast<size_t>(verifying_slot_)].outer_step;
  // A stale push (next_inbox_item's judge_only) is judged only: a refusal counts, an acceptance
  // changes nothing. (Answers to our calls are never stale here: on_exchange_reply refused them.)
  if (!partner && outer_ - static_cast<int64_t>(their_outer) > cfg_.max_staleness) {
    if (!ok && weight > 0) refuse(peer, why, weight, /*fades=*/true);
    ++inbox_next_;
    return step(next_inbox_item(now));
  }
  if (!ok && weight <= 0) {
    Effect e{Effect::Kind::kNotice};
    e.notice = Notice{Notice::Kind::kUnchanged, peer, why};
    effect(std::move(e));
    if (partner) {
      ++counters_.call_failures;
      report_.partner_found = false;
      report_.failures.push_back(why);
      report_.failed_peers.push_back(peer);
      return step(next_call(now));
    }
  } else if (!ok) {
    refuse(peer, why, weight, /*fades=*/true);
  } else {
    slots_.push_back(verifying_slot_);
    report_.group.push_back(peer);
    report_.staleness.push_back(outer_ - static_cast<int64_t>(their_outer));
    Effect e{Effect::Kind::kRecordOutcome};
    e.peer = peer;
    e.ok = true;
    e.score = 1.0;
    effect(std::move(e));
  }
  if (partner) return step(apply());
  ++inbox_next_;
  return step(next_inbox_item(now));
}

Next NodeCore::call_or_apply(double now) {
  if (!report_.group.empty() && !cfg_.always_exchange) {
    // A usable caller is this step's pairing, as in the paper's groups of two.
    report_.partner = report_.group.front();
    report_.partner_found = true;
    return apply();
  }
  report_.called = true;
  only_joining_ = true;
  tries_left_ = cfg_.exchange_tries;
  call_started_ = now;
  call_deadline_ = now + cfg_.exchange_budget_s;
  phase_ = Phase::kCalling;
  return next_call(now);
}

Next NodeCore::next_call(double now) {
  if (now >= call_deadline_) return give_up(now);
  if (tries_left_ <= 0) return wait_or_give_up(now);
  std::vector<PeerRef> exclude = tried_;
  exclude.insert(exclude.end(), strikes_.banned_set().begin(), strikes_.banned_set().end());
  std::optional<LivePeer> partner;
  if (tried_.empty()) partner = recheck_candidate(exclude);  // one recheck per outer step at most
  if (!partner) partner = choose_partner(live_, exclude, static_cast<uint64_t>(outer_), cfg_.max_staleness, rng_);
  if (!partner) return wait_or_give_up(now);
  tried_.push_back(partner->peer);
  --tries_left_;
  calling_ = partner->peer;
  ++counters_.calls;
  Next n{Next::Kind::kCall, call_deadline_};
  n.peer = partner->peer;
  return n;
}

Next NodeCore::give_up(double now) {
  report_.exchange_s = now - call_started_;
  return apply();  // nobody answered in time: a solo step unless callers were mixed
}

// Every partner tried said "no snapshot yet": they are joining (a swarm that starts together, a
// restart) and will have a payload within their first outer step. A solo step now would take us
// ahead of them for nothing, and at a small model's pace a node raced through a whole run alone
// while its peers ended their join wait (the attack matrix of 2026-12-05). So call again after
// kJoiningRetryS, within the same budget; any other failure gives up as before. A Sybil that says
// "no snapshot yet" costs at most the budget and is proven when its claim moves (claim_watch.h).
Next NodeCore::wait_or_give_up(double now) {
  if (!only_joining_ || tried_.empty()) return give_up(now);
  phase_ = Phase::kCallWait;
  call_wait_until_ = std::min(call_deadline_, now + kJoiningRetryS);
  return Next{Next::Kind::kWaitPeers, call_wait_until_};
}

std::optional<LivePeer> NodeCore::recheck_candidate(std::span<const PeerRef> exclude) const {
  for (const LivePeer& p : live_) {
    if (std::find(exclude.begin(), exclude.end(), p.peer) != exclude.end()) continue;
    if (static_cast<int64_t>(p.outer_step) + cfg_.max_staleness < outer_) continue;  // we would not call it
    if (claims_.recheck_due(p.peer, p.outer_step)) return p;
  }
  return std::nullopt;
}

Step NodeCore::on_exchange_reply(double now, const ExchangeReply& reply, std::span<const LivePeer> live) {
  live_.assign(live.begin(), live.end());
  std::string failure = reply.failure;
  if (reply.answered) {
    const int64_t lag = outer_ - static_cast<int64_t>(reply.outer_step);
    if (lag > cfg_.max_staleness) failure = "answer is " + std::to_string(lag) + " outer steps old";
  }
  if (!reply.answered || !failure.empty()) {
    ++counters_.call_failures;
    report_.failures.push_back(failure);
    report_.failed_peers.push_back(calling_);
    bool joining = reply.no_payload_yet;
    if (reply.no_payload_yet) {
      if (auto why = claims_.refused_without_payload(calling_, reply.claimed_epoch, reply.claimed_outer)) {
        refuse(calling_, *why, kProofStrike);
        joining = false;
      }
    }
    if (!joining) only_joining_ = false;
    return step(next_call(now));
  }
  claims_.served(calling_);
  report_.exchange_s = now - call_started_;
  report_.partner = calling_;
  report_.partner_found = true;
  // A partner that also called us this step is already in the group.
  if (std::find(report_.group.begin(), report_.group.end(), calling_) != report_.group.end()) return step(apply());
  partner_outer_ = reply.outer_step;
  verifying_slot_ = kPartnerSlot;
  Next n{Next::Kind::kVerify};
  n.peer = calling_;
  n.slot = kPartnerSlot;
  return step(n);
}

Next NodeCore::apply() {
  phase_ = Phase::kApplying;
  Next n{Next::Kind::kApplyOuter};
  n.slots = slots_;
  return n;
}

// ---------------------------------------------------------------- DiLoCo: one all-reduce

Next NodeCore::allreduce_or_solo(double now) {
  // Everyone in the live view that is not banned and not past this outer step (they took it
  // already). No staleness bound: advertised steps come by gossip and lag the truth by up to a
  // gossip round, which in a fast run is several outer steps; waiting for a real laggard is the
  // barrier's job, bounded by the all-reduce's READY gathering.
  std::vector<PeerRef> members;
  for (const LivePeer& p : live_)
    if (!strikes_.banned(p.peer) && static_cast<int64_t>(p.outer_step) <= outer_) members.push_back(p.peer);
  if (members.empty()) {  // nobody to average with: the group of one
    Next n = apply();
    n.solo = true;
    return n;
  }
  report_.allreduce = true;
  ++counters_.allreduces;
  call_started_ = now;
  phase_ = Phase::kAllReducing;
  Next n{Next::Kind::kAllReduce, now + cfg_.exchange_budget_s};
  n.members = std::move(members);
  return n;
}

Step NodeCore::on_allreduce_done(double now, bool ok, std::span<const PeerRef> members_used,
                                 const std::string& failure, std::span<const LivePeer> live) {
  live_.assign(live.begin(), live.end());
  report_.exchange_s = now - call_started_;
  Next n = apply();
  if (!ok) {
    ++counters_.allreduce_failures;
    report_.failures.push_back(failure);
    n.solo = true;  // the budget is spent: a local step, averaged again at the next outer step
    return step(n);
  }
  report_.group.assign(members_used.begin(), members_used.end());
  report_.staleness.assign(report_.group.size(), 0);  // a ring only forms among one outer step
  report_.partner_found = !report_.group.empty();
  if (report_.partner_found) report_.partner = report_.group.front();
  return step(n);
}

Step NodeCore::on_outer_applied(double now, std::span<const LivePeer> live) {
  live_.assign(live.begin(), live.end());
  ++outer_;
  ++outer_here_;
  strikes_.outer_step_passed();
  ++counters_.outer_steps;
  if (report_.group.empty()) ++counters_.solo_steps;
  else ++counters_.exchanges;
  report_.outer_step = static_cast<uint64_t>(outer_);
  report_.blocked_s = now - phase_done_at_;
  Effect done{Effect::Kind::kOuterDone};
  done.report = report_;
  effect(std::move(done));
  if (cfg_.checkpoint_every > 0 && outer_ % cfg_.checkpoint_every == 0 && inner_ < cfg_.total_steps) {
    ++counters_.checkpoints;
    effect(Effect{Effect::Kind::kWriteCheckpoint});
  }
  return step(sync_or(now, cfg_.resync_behind, Phase::kResync));
}

// ---------------------------------------------------------------- strikes and bans

void NodeCore::strike(PeerRef peer, const std::string& why, double weight, bool fades) {
  if (!strikes_.strike(peer, weight, fades)) return;
  ++counters_.bans;
  // The ban goes out before the refusal is reported, so that whoever reads the report can rely
  // on the peer being refused from then on.
  Effect ban{Effect::Kind::kBan};
  ban.peer = peer;
  ban.why = why;
  effect(std::move(ban));
  Effect e{Effect::Kind::kNotice};
  e.notice = Notice{Notice::Kind::kBanned, peer, why};
  effect(std::move(e));
}

void NodeCore::refuse(PeerRef peer, const std::string& why, double weight, bool fades) {
  ++counters_.refused;
  Effect rec{Effect::Kind::kRecordOutcome};
  rec.peer = peer;
  rec.ok = false;
  rec.score = -5.0;
  effect(std::move(rec));
  strike(peer, why, weight, fades);
  Effect e{Effect::Kind::kNotice};
  e.notice = Notice{Notice::Kind::kRefused, peer, why};
  e.notice.score = strikes_.score(peer);
  effect(std::move(e));
}

std::vector<Effect> NodeCore::on_peer_misbehaved(PeerRef peer, const std::string& why, double weight) {
  std::vector<Effect> saved = std::exchange(pending_, {});
  refuse(peer, why, weight);
  return std::exchange(pending_, std::move(saved));
}

}  // namespace noloco::node
