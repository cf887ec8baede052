// The node's adapters (node_driver.h): torch replica, NodeNetwork, Store and CheckpointWriter.
#include "trainer/node/node_driver.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <thread>

#include "common/log.h"
#include "trainer/node/checkpointing.h"
#include "trainer/node/diloco_step.h"
#include "trainer/node/state_fetch.h"
#include "trainer/node/state_server_memory.h"

namespace noloco::node {
namespace {

using json = nlohmann::json;
using Clk = std::chrono::steady_clock;
constexpr int64_t kBanSeconds = 24 * 3600;  // a banned peer is kept out a day (also after a restart)

int64_t now_unix_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

Duration seconds(double s) { return std::chrono::duration_cast<Duration>(std::chrono::duration<double>(s)); }

}  // namespace

// ---------------------------------------------------------------- peers

PeerRef PeerTable::ref(const p2p::PeerId& id) {
  auto [it, fresh] = refs_.try_emplace(id, ids_.size());
  if (fresh) ids_.push_back(id);
  return it->second;
}

std::vector<LivePeer> PeerTable::view(const std::vector<NodeNetwork::LiveRecord>& live) {
  std::vector<LivePeer> out;
  out.reserve(live.size());
  for (const auto& l : live) {
    const PeerRef r = ref(l.record.peer);
    records_[r] = l.record;
    uint32_t origin = 0;
    if (!l.origin.empty()) origin = origins_.try_emplace(l.origin, static_cast<uint32_t>(origins_.size() + 1)).first->second;
    out.push_back({r, l.record.outer_step, l.verified, origin});
  }
  return out;
}

const p2p::PeerRecord* PeerTable::record(PeerRef ref) const {
  auto it = records_.find(ref);
  return it == records_.end() ? nullptr : &it->second;
}

// ---------------------------------------------------------------- setup

NodeDriver::NodeDriver(NodeParts& parts, const NodeOptions& options, const NodeSinks& sinks,
                       const std::atomic<bool>* stop)
    : p_(parts), o_(options), sinks_(sinks), stop_(stop), t0_(Clk::now()) {}

double NodeDriver::now() const { return std::chrono::duration<double>(Clk::now() - t0_).count(); }

std::vector<LivePeer> NodeDriver::live() {
  auto view = peers_.view(p_.net->live_peers_verified());
  live_count_ = view.size();
  return view;
}

void NodeDriver::progress(const char* phase) {
  if (!sinks_.on_progress) return;
  const auto& r = *p_.replica;
  const TrafficTotals t = p_.net->traffic();
  NodeProgress np;
  np.phase = phase;
  np.inner_step = r.inner_step();
  np.outer_step = r.outer_step();
  np.loss = last_loss_;
  np.lr = r.last_lr();
  np.live_peers = live_count_;
  np.connections = t.connections;
  np.exchange_out = t.exchange_out;
  np.exchange_in = t.exchange_in;
  np.state_out = t.state_out;
  np.state_in = t.state_in;
  np.nat = p_.net->nat_view();
  sinks_.on_progress(np);
}

CoreConfig NodeDriver::core_config() const {
  CoreConfig c;
  c.method = diloco() ? Method::kDiloco : Method::kNoloco;
  c.total_steps = p_.manifest.steps;
  c.H = p_.manifest.H;
  c.max_staleness = o_.max_staleness;
  c.resync_behind = o_.resync_behind;
  c.always_exchange = o_.always_exchange;
  c.exchange_tries = o_.exchange_tries;
  c.exchange_budget_s = exchange_budget_for(
      o_, p_.manifest.method,
      outer_step_wire_bytes(p_.manifest.method, p_.manifest.codec, p_.manifest.wire_form, p_.numel));
  c.checkpoint_every = o_.checkpoint_every;
  c.stop_after_outer = o_.stop_after_outer;
  c.want_peers = o_.min_peers > 0 ? static_cast<size_t>(o_.min_peers) : (p_.can_look ? 1 : 0);
  c.join_wait_s = o_.join_wait_s;
  c.seed = p_.seed;
  return c;
}

void NodeDriver::emit(const std::string& text) {
  if (sinks_.on_event) sinks_.on_event(text);
}

void NodeDriver::emit_start() {
  p_.summary.first_val_loss = last_val_ = p_.eval();
  const auto& r = *p_.replica;
  traffic_before_ = p_.net->traffic();
  emit(json{{"event", "start"}, {"peer", p_.summary.peer_id}, {"addr", p_.net->listen_addr().to_string()},
            {"run_id", p_.run_id}, {"bound", p_.net->bound_addr().to_string()}, {"resumed", p_.summary.resumed},
            {"inner_step", r.inner_step()}, {"outer_step", r.outer_step()}, {"val_loss", p_.summary.first_val_loss},
            {"params", p_.numel}}
           .dump());
}

// ---------------------------------------------------------------- effects

Status NodeDriver::publish(bool with_payload, bool with_state) {
  const auto& r = *p_.replica;
  // Each old buffer is let go before its successor is built, so that two never exist at once (a
  // peer still being served one keeps it until then).
  if (with_state) {
    p_.net->publish_state(nullptr);
    own_state_.reset();
    auto blob = build_state_blob(r);
    auto outer = static_cast<uint64_t>(r.outer_step()), inner = static_cast<uint64_t>(r.inner_step());
    if (blob.ok() && sinks_.tamper.state) {
      if (Status st = sinks_.tamper.state(*blob, outer, inner); !st.ok()) blob = st;
    }
    if (blob.ok()) {
      auto snap = std::make_shared<StateSnapshot>();
      const auto digest = sha256(*blob);
      snap->sha256.assign(digest.begin(), digest.end());
      snap->blob = std::move(*blob);
      snap->outer_step = outer;
      snap->inner_step = inner;
      own_state_ = snap;
      p_.net->publish_state(std::move(snap));
    }
  }
  if (!with_payload) return Status::Ok();
  mine_.reset();
  p_.net->publish_exchange_payload(nullptr);
  std::string spool_error;
  NOLOCO_ASSIGN_OR_RETURN(WirePayload payload, build_payload_or_in_memory(r, p_.payload, &spool_error));
  if (!spool_error.empty())
    NLOG_WARN("our payload is held in memory this outer step: spooling it to {} failed ({})", p_.payload.spool_dir,
              spool_error);
  if (sinks_.tamper.payload) {
    NOLOCO_ASSIGN_OR_RETURN(payload, sinks_.tamper.payload(std::move(payload)));
  }
  mine_ = std::make_shared<const WirePayload>(std::move(payload));
  p_.net->publish_exchange_payload(mine_);
  return Status::Ok();
}

void NodeDriver::emit_notice(const Notice& n) {
  const std::string peer = peers_.id(n.peer).to_string();
  switch (n.kind) {
    case Notice::Kind::kStale:
      return emit(json{{"event", "stale"}, {"peer", peer}, {"lag", n.lag}, {"via", n.via}}.dump());
    case Notice::Kind::kRefused:
      return emit(json{{"event", "refused"}, {"peer", peer}, {"why", n.why}, {"score", n.score}}.dump());
    case Notice::Kind::kUnchanged:
      return emit(json{{"event", "unchanged"}, {"peer", peer}, {"why", n.why}}.dump());
    case Notice::Kind::kBanned:
      return emit(json{{"event", "banned"}, {"peer", peer}, {"why", n.why}}.dump());
    case Notice::Kind::kStateSyncFailed:
      return emit(json{{"event", "state_sync_failed"}, {"peer", peer}, {"why", n.why}}.dump());
    case Notice::Kind::kStateSync: {
      const double after = p_.eval();
      emit(json{{"event", "state_sync"}, {"peer", peer}, {"outer_step", n.outer_step}, {"inner_step", n.inner_step},
                {"bytes", fetched_ ? fetched_->blob.size() : 0},
                {"seconds", std::chrono::duration<double>(Clk::now() - sync_started_).count()},
                {"val_loss_before", sync_val_before_}, {"val_loss_after", after}}
               .dump());
      return;
    }
  }
}

void NodeDriver::emit_outer(const OuterReport& rep) {
  auto& s = p_.summary;
  ++s.outer_steps;
  if (rep.group.empty()) ++s.solo_steps;
  else ++s.exchanges;
  const auto& r = *p_.replica;
  const TrafficTotals after = p_.net->traffic();
  const std::string partner = rep.partner_found ? peers_.id(rep.partner).to_string() : "";
  std::vector<std::string> group, relayed;
  std::vector<p2p::PeerId> group_ids;
  for (PeerRef g : rep.group) {
    group.push_back(peers_.id(g).to_string());
    group_ids.push_back(peers_.id(g));
  }
  for (const auto& id : p_.net->relayed(group_ids)) relayed.push_back(id.to_string());
  // DiLoCo's traffic is the all-reduce's ring messages; NoLoCo's the exchange payloads.
  const uint64_t bytes_out = diloco() ? (reduced_ ? reduced_->bytes_sent : 0)
                                      : after.exchange_out - traffic_before_.exchange_out;
  const uint64_t bytes_in = diloco() ? (reduced_ ? reduced_->bytes_received : 0)
                                     : after.exchange_in - traffic_before_.exchange_in;
  // The next step counts from here: a caller served during the next inner phase is part of it.
  traffic_before_ = after;
  json ev = {{"event", "outer"}, {"method", p_.manifest.method}, {"outer_step", r.outer_step()},
             {"inner_step", r.inner_step()}, {"loss", last_loss_}, {"tokens_per_s", tokens_per_s_},
             {"partner", partner}, {"group", group}, {"relayed", relayed}, {"staleness", rep.staleness}, {"exchange_s", rep.exchange_s},
             {"failures", rep.failures.size()}, {"bytes_out", bytes_out}, {"bytes_in", bytes_in},
             {"payload_bytes", mine_ ? mine_->size() : 0},
             {"raw_bytes", p_.numel * 4 * (!diloco() && p_.form == WireForm::kDeltaPhi ? 2 : 1)},
             {"live_peers", p_.net->live_peers().size()}, {"lr", r.last_lr()}};
  if (diloco()) {
    // members: the ring the mean was taken over, ourselves included (1: a solo step).
    ev["members"] = reduced_ ? reduced_->members.size() : 1;
    ev["attempts"] = reduced_ ? reduced_->attempts : 0;
    ev["allreduce_s"] = reduced_ ? reduced_->seconds : rep.exchange_s;
    ev["gather_s"] = reduced_ ? reduced_->gather_seconds : 0.0;
    // bytes_out is the ring's encoded bytes; this is what fp32 values would have cost.
    ev["raw_bytes_out"] = reduced_ ? reduced_->fp32_bytes_sent : 0;
  }
  if (r.outer_step() % o_.eval_every == 0 || r.inner_step() >= p_.manifest.steps) {
    last_val_ = p_.eval();
    ev["val_loss"] = last_val_;
  }
  emit(ev.dump());

  storage::MetricsRecord mr;
  mr.outer_step = static_cast<uint64_t>(r.outer_step());
  mr.unix_ms = now_unix_ms();
  mr.loss = last_loss_;
  mr.tokens_per_s = tokens_per_s_;
  mr.bytes_in = bytes_in;
  mr.bytes_out = bytes_out;
  mr.partner = partner;
  mr.exchange_ms = rep.exchange_s * 1000.0;
  mr.fields["inner_step"] = static_cast<double>(r.inner_step());
  mr.fields["group"] = static_cast<double>(rep.group.size() + 1);
  if (!rep.staleness.empty())
    mr.fields["staleness_max"] = static_cast<double>(*std::max_element(rep.staleness.begin(), rep.staleness.end()));
  mr.fields["val_loss"] = last_val_;
  if (Status st = p_.store->put_metrics(mr); !st.ok()) NLOG_WARN("metrics: {}", st.to_string());
}

Status NodeDriver::apply_effects(const std::vector<Effect>& effects) {
  for (const Effect& e : effects) {
    switch (e.kind) {
      case Effect::Kind::kRecordOutcome:
        (void)p_.store->record_outcome(peers_.id(e.peer).to_string(), e.ok, e.score);
        break;
      case Effect::Kind::kBan:
        NLOG_WARN("peer {} banned (last refusal: {})", peers_.id(e.peer).to_string(), e.why);
        p_.net->ban(peers_.id(e.peer));
        (void)p_.store->ban(peers_.id(e.peer).to_string(), e.why, kBanSeconds);
        break;
      case Effect::Kind::kNotice:
        emit_notice(e.notice);
        break;
      case Effect::Kind::kWriteCheckpoint: {
        NOLOCO_ASSIGN_OR_RETURN(storage::Checkpoint cp, make_checkpoint(*p_.replica, p_.run_id, p_.run_config, {}, &p_.writer->snapshots()));
        NOLOCO_RETURN_IF_ERROR(p_.writer->submit(std::move(cp)));
        break;
      }
      case Effect::Kind::kPublish:
        NOLOCO_RETURN_IF_ERROR(publish(e.with_payload, true));
        break;
      case Effect::Kind::kOuterDone:
        emit_outer(e.report);
        break;
    }
  }
  return Status::Ok();
}

Status NodeDriver::drain_events(NodeCore& core) {
  for (auto& e : p_.net->take_events()) {
    if (e.kind == NetworkEvent::Kind::kPeerSeen) {
      (void)p_.store->record_seen(e.peer.to_string(), e.addrs);
      continue;
    }
    if (e.kind == NetworkEvent::Kind::kReachability) {
      emit(json{{"event", "reachability"}, {"reachability", e.detail}, {"basis", e.basis}, {"why", e.why}}.dump());
      continue;
    }
    if (e.kind == NetworkEvent::Kind::kRelay) {
      emit(json{{"event", "relay"}, {"relay", e.peer.to_string()}, {"status", e.detail},
                {"circuit_addrs", e.addrs}}.dump());
      continue;
    }
    if (e.kind == NetworkEvent::Kind::kPath) {
      emit(json{{"event", "peer_path"}, {"peer", e.peer.to_string()}, {"path", e.detail}}.dump());
      continue;
    }
    NOLOCO_RETURN_IF_ERROR(apply_effects(core.on_peer_misbehaved(peers_.ref(e.peer), e.detail, e.weight)));
  }
  return Status::Ok();
}

// ---------------------------------------------------------------- waits

Step NodeDriver::wait_peers(NodeCore& core, double until) {
  if (!stopped()) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  const auto view = live();
  const bool joining = core.joining();
  Step s = core.on_live_view(stopped() ? std::max(until, now()) : now(), view);
  if (joining && !core.joining()) {
    const auto verified = std::count_if(view.begin(), view.end(), [](const LivePeer& p) { return p.verified; });
    NLOG_INFO("join wait over after {:.1f} s: {} vantage points (wanted {}), {} verified of {} live peers", now(),
              NodeCore::vantage_points(view), core_config().want_peers, verified, view.size());
  }
  return s;
}

Step NodeDriver::state_sync(NodeCore& core, PeerRef peer) {
  sync_started_ = Clk::now();
  fetched_.reset();
  // The core's choice first, then the other live peers, most advanced first: each may serve when
  // the ones before it fail, stall or are outvoted, and each may witness (state_fetch.h).
  std::vector<p2p::PeerRecord> candidates;
  if (const p2p::PeerRecord* rec = peers_.record(peer)) candidates.push_back(*rec);
  // Verified peers before hearsay (a flood's fake records claim the newest step), then most
  // advanced first.
  auto others = p_.net->live_peers_verified();
  std::stable_sort(others.begin(), others.end(), [](const auto& a, const auto& b) {
    if (a.verified != b.verified) return a.verified;
    return a.record.outer_step > b.record.outer_step;
  });
  for (auto& l : others)
    if (candidates.empty() || l.record.peer != candidates[0].peer) candidates.push_back(std::move(l.record));
  const uint64_t ours = static_cast<uint64_t>(std::max<int64_t>(core.outer_step(), 0));
  screen_state_servers(candidates, ours);
  StateFetchPlan plan;
  // Only a server as far ahead as the core's rule asks for is worth a download (a fallback just
  // ahead of us would replace our weights with a peer's for nothing); the rest only witness.
  plan.min_server_outer = ours + static_cast<uint64_t>(core.inner_step() == 0 ? 1 : std::max<int64_t>(o_.resync_behind, 1));
  plan.own = own_state_ ? own_state_ : reference_state();
  std::vector<p2p::PeerId> bad, unresponsive;
  auto got = fetch_checked_state(*p_.net, candidates, p_.numel * 4 + 4096, plan, sync_rng_, &bad, &unresponsive);
  for (const auto& peer : unresponsive) servers_.failed(peers_.ref(peer), now());
  if (got.ok()) servers_.served(peers_.ref(got->fetched.peer));
  // A snapshot its witnesses all refuse is proof against its server (docs/defences.md, "State sync").
  for (const auto& peer : bad) {
    NLOG_WARN("state from {} outvoted by every witness: struck", peer.to_string());
    if (Status st = apply_effects(core.on_peer_misbehaved(peers_.ref(peer), "state snapshot outvoted by every witness"));
        !st.ok())
      NLOG_WARN("state sync: {}", st.to_string());
  }
  if (!got.ok()) {
    NLOG_WARN("state sync failed: {}", got.status().to_string());
    return core.on_state_fetched(now(), false, got.status().to_string(), 0, 0);
  }
  for (const auto& f : got->failures) NLOG_WARN("state sync: gave up on {}", f);
  NLOG_INFO("state from {} (outer step {}) passed its witnesses: {} agree, {} disagree", got->fetched.peer.to_string(),
            got->fetched.outer_step, got->agree, got->disagree);
  fetched_ = std::move(got->fetched);
  sync_val_before_ = p_.eval();  // our weights are unchanged until adopt_state_from
  return core.on_state_fetched(now(), true, "", fetched_->outer_step, fetched_->inner_step,
                               peers_.ref(fetched_->peer));
}

std::shared_ptr<const StateSnapshot> NodeDriver::reference_state() const {
  // Before our first published snapshot (a joiner at its first sync): the weights we hold now,
  // the run's initial ones, which every honest snapshot still relates to (state_fetch.h).
  auto blob = build_state_blob(*p_.replica);
  if (!blob.ok()) {
    NLOG_WARN("state sync: no reference snapshot of our own ({}): no server can be proven wrong", blob.status().to_string());
    return nullptr;
  }
  auto snap = std::make_shared<StateSnapshot>();
  snap->blob = std::move(*blob);
  return snap;
}

void NodeDriver::screen_state_servers(std::vector<p2p::PeerRecord>& candidates, uint64_t ours) {
  std::erase_if(candidates, [&](const p2p::PeerRecord& r) { return servers_.avoid(peers_.ref(r.peer), now()); });
  if (candidates.empty()) return;
  std::vector<uint64_t> others;
  for (size_t i = 1; i < candidates.size(); ++i) others.push_back(candidates[i].outer_step);
  const auto gap = static_cast<uint64_t>(std::max<int64_t>(o_.resync_behind, 1));
  if (!lone_claim(candidates[0].outer_step, others, ours, gap)) return;
  // Nobody backs this claim: a short probe before we spend a download on it.
  if (Status st = check_lone_claim(*p_.net, candidates[0], ours, StateFetchPlan{}.witness_budget); !st.ok()) {
    NLOG_WARN("state sync: {} claims outer step {} alone and did not show it ({}): skipped",
              candidates[0].peer.to_string(), candidates[0].outer_step, st.to_string());
    servers_.failed(peers_.ref(candidates[0].peer), now());
    candidates.erase(candidates.begin());
  }
}

Step NodeDriver::adopt_state_from(NodeCore& core) {
  Status st = adopt_state(*p_.replica, fetched_->blob, fetched_->outer_step, fetched_->inner_step);
  if (!st.ok()) {
    NLOG_WARN("state from {} refused: {}", fetched_->peer.to_string(), st.to_string());
    return core.on_state_adopted(now(), false, st.to_string());
  }
  return core.on_state_adopted(now(), true, "");
}

Result<Step> NodeDriver::train_phase(NodeCore& core) {
  auto& r = *p_.replica;
  const auto phase_start = Clk::now();
  const int64_t tokens_per_step = p_.manifest.batch * p_.model.context;
  int64_t phase_tokens = 0;
  do {
    if (stopped()) return core.on_stopped();
    const auto t0 = Clk::now();
    last_loss_ = r.train_step();
    phase_tokens += tokens_per_step;
    progress("train");
    if (o_.slowdown > 1.0) std::this_thread::sleep_for((Clk::now() - t0) * (o_.slowdown - 1.0));
  } while (r.inner_step() % p_.manifest.H != 0 && r.inner_step() < p_.manifest.steps);
  const double phase_s = std::chrono::duration<double>(Clk::now() - phase_start).count();
  tokens_per_s_ = phase_s > 0 ? static_cast<double>(phase_tokens) / phase_s : 0.0;
  // DiLoCo exchanges no payloads: nothing to build for callers.
  if (r.inner_step() % p_.manifest.H == 0 && !diloco())
    NOLOCO_RETURN_IF_ERROR(publish(true, false).context("our payload"));  // φ is unchanged since the last state
  reduced_.reset();
  inbox_ = p_.net->take_inbox();
  for (const auto& rp : inbox_) strike_stale_replay(core, rp, false);
  accepted_.clear();
  answer_.reset();
  std::vector<InboxItem> items;
  for (const auto& rp : inbox_) items.push_back({peers_.ref(rp.peer), rp.payload.header.outer_step});
  return core.on_phase_done(now(), r.inner_step(), items, live());
}

Step NodeDriver::verify(NodeCore& core, int slot, bool judge_only) {
  ReceivedPayload& rp = slot == kPartnerSlot ? *answer_ : inbox_.at(static_cast<size_t>(slot));
  ExchangeExpectations e = p_.expect;
  e.sender = rp.peer.to_string();
  const std::string content = ReplayGuard::content_of(rp.payload.header);
  const auto seen = replays_.check(e.sender, rp.payload.header.outer_step, content);
  // A stale payload's replay was ruled on when the inbox was taken (strike_stale_replay).
  if (!judge_only && seen != ReplayGuard::Verdict::kNew) {
    const ReplayRuling r = rule_on_replay(seen, slot == kPartnerSlot, rp.payload.header.outer_step);
    if (r.weight > 0) NLOG_WARN("refused payload from {}: {}", e.sender, r.why);
    else NLOG_INFO("not mixing payload from {}: {}", e.sender, r.why);
    return core.on_verified(now(), false, r.why, r.weight);
  }
  // A payload for another run or with a header that does not match ours is proof, not a
  // borderline statistic (the wire reader checked it; this catches what reached us anyway).
  if (Status h = check_header(rp.payload.header, e); !h.ok()) {
    NLOG_WARN("refused payload from {}: {}", e.sender, h.to_string());
    std::vector<Bytes>().swap(rp.payload.tensors);
    return core.on_verified(now(), false, h.to_string(), kProofStrike);
  }
  // The checked codec messages move into the contribution (the header stays for the log below).
  if (judge_only) return judge_stale(core, rp, e);
  const WireForm form = rp.payload.header.form;
  std::optional<PayloadStats> stats;
  UpdateSketch sketch;
  auto c = verify_payload(std::move(rp.payload), *p_.replica, e, VerifyLimits{}, &stats, &sketch);
  // A peer's run of payloads can be evidence where each alone is not (update_evidence.h,
  // trajectory_evidence.h).
  EvidenceRuling evidence;
  std::string trajectory = "no trajectory cosine";
  if (stats && form == WireForm::kDeltaPhi) {
    evidence = noise_.observe(e.sender, stats->cosine, static_cast<uint64_t>(p_.replica->phi().numel()));
    EvidenceRuling against = direction_.observe(e.sender, stats->cosine, stats->momentum_cosine);
    if (against.weight > evidence.weight) evidence = std::move(against);
    TrajectoryObservation t = trajectory_.observe(e.sender, std::move(sketch));
    if (t.cosine) trajectory = fmt::format("trajectory cosine {:.4f} over {} outer steps", *t.cosine, t.gap);
    if (t.ruling.weight > evidence.weight) evidence = std::move(t.ruling);
    if (t.payload.weight > evidence.weight) evidence = std::move(t.payload);
  }
  if (!c.ok()) {
    std::string why = c.status().to_string();
    if (evidence.weight > 0) why += "; " + evidence.why;
    NLOG_WARN("refused payload from {}: {} (momentum cosine {:.4f}, {})", rp.peer.to_string(), why,
              stats ? stats->momentum_cosine : 0.0, trajectory);
    std::vector<Bytes>().swap(rp.payload.tensors);  // refused: let its bytes go now
    const double w = stats ? refusal_weight(*stats, VerifyLimits{}, form) : kSuspectStrike;
    return core.on_verified(now(), false, why, std::max(w, evidence.weight));
  }
  if (evidence.weight > 0) {
    NLOG_WARN("refused payload from {}: {} [cosine {:.4f}, norm ratio {:.4f}, momentum cosine {:.4f}, {}]",
              rp.peer.to_string(), evidence.why, c->stats.cosine, c->stats.norm_ratio, c->stats.momentum_cosine,
              trajectory);
    return core.on_verified(now(), false, evidence.why, evidence.weight);
  }
  if (form == WireForm::kDeltaPhi) {
    if (std::string held = direction_.holds_back(e.sender, c->stats.cosine, c->stats.momentum_cosine); !held.empty()) {
      NLOG_INFO("not mixing payload from {} (its outer step {}, ours {}): {} [norm ratio {:.4f}, {}]", e.sender,
                c->outer_step, p_.replica->outer_step(), held, c->stats.norm_ratio, trajectory);
      return core.on_verified(now(), false, held, 0);
    }
  }
  NLOG_INFO("accepted payload from {} (its outer step {}, ours {}): cosine {:.4f}, norm ratio {:.4f}, phi spread {:.4f}, "
            "momentum cosine {:.4f}, {}",
            rp.peer.to_string(), c->outer_step, p_.replica->outer_step(), c->stats.cosine, c->stats.norm_ratio,
            c->stats.phi_spread, c->stats.momentum_cosine, trajectory);
  replays_.accepted(e.sender, c->outer_step, content, slot == kPartnerSlot);
  accepted_.emplace(slot, std::move(*c));
  return core.on_verified(now(), true, "");
}

// A stale payload, judged and never mixed (the core drops it whatever the verdict): the norm bound
// of stale_payload_limits, and the noise rule, the one test over a run of payloads that an honest
// laggard passes as a current partner does. Its update shares the swarm's gradient signal: d · cos² with
// our update had a median of 174 over 119 honest stale payloads, against 265 over current ones,
// in the clean 4-minute matrix run of 2026-12-05 (noise: about 1).
Step NodeDriver::judge_stale(NodeCore& core, ReceivedPayload& rp, const ExchangeExpectations& e) {
  const WireForm form = rp.payload.header.form;
  const VerifyLimits lim = stale_payload_limits();
  std::optional<PayloadStats> stats;
  auto c = verify_payload(std::move(rp.payload), *p_.replica, e, lim, &stats, nullptr);
  std::vector<Bytes>().swap(rp.payload.tensors);
  EvidenceRuling evidence;
  if (stats && form == WireForm::kDeltaPhi)
    evidence = noise_.observe(e.sender, stats->cosine, static_cast<uint64_t>(p_.replica->phi().numel()));
  if (!c.ok() || evidence.weight > 0) {
    std::string why = c.ok() ? evidence.why : c.status().to_string();
    if (!c.ok() && evidence.weight > 0) why += "; " + evidence.why;
    why += " (a stale payload, not mixed)";
    NLOG_WARN("refused payload from {}: {}", e.sender, why);
    const double w = c.ok() ? 0 : stats ? refusal_weight(*stats, lim, form) : kSuspectStrike;
    return core.on_verified(now(), false, why, std::max(w, evidence.weight));
  }
  NLOG_INFO("judged stale payload from {} (its outer step {}, ours {}): cosine {:.5f}, norm ratio {:.4f}, "
            "momentum cosine {:.4f}",
            e.sender, c->outer_step, p_.replica->outer_step(), c->stats.cosine, c->stats.norm_ratio,
            c->stats.momentum_cosine);
  return core.on_verified(now(), true, "");
}

void NodeDriver::strike_stale_replay(NodeCore& core, const ReceivedPayload& rp, bool as_answer) {
  const uint64_t step = rp.payload.header.outer_step;
  const std::string sender = rp.peer.to_string();
  const auto r = rule_on_stale(replays_, sender, step, ReplayGuard::content_of(rp.payload.header),
                               core.outer_step() - static_cast<int64_t>(step), o_.max_staleness, as_answer);
  if (!r) return;
  NLOG_WARN("refused stale payload from {}: {}", sender, r->why);
  if (Status st = apply_effects(core.on_peer_misbehaved(peers_.ref(rp.peer), r->why, r->weight)); !st.ok())
    NLOG_WARN("stale replay: {}", st.to_string());
}

Step NodeDriver::call(NodeCore& core, PeerRef peer, double until) {
  ExchangeReply reply;
  const p2p::PeerRecord* rec = peers_.record(peer);
  if (!rec) {
    reply.failure = peers_.id(peer).to_string() + ": left the view";
    return core.on_exchange_reply(now(), reply, live());
  }
  // The claim we called it on: what a "no snapshot yet" is weighed against (claim_watch.h).
  reply.claimed_epoch = rec->epoch;
  reply.claimed_outer = rec->outer_step;
  ExchangeOutcome ex = p_.net->exchange_with(*rec, mine_, seconds(std::max(0.0, until - now())));
  for (const auto& f : ex.failures) NLOG_INFO("exchange try failed: {}", f);
  if (ex.partner) {
    strike_stale_replay(core, *ex.partner, true);
    reply.answered = true;
    reply.outer_step = ex.partner->payload.header.outer_step;
    answer_ = std::move(ex.partner);
  } else {
    reply.failure = ex.failures.empty() ? peers_.id(peer).to_string() + ": no answer" : ex.failures.front();
    reply.no_payload_yet = ex.no_payload_yet;
  }
  return core.on_exchange_reply(now(), reply, live());
}

Step NodeDriver::allreduce(NodeCore& core, const std::vector<PeerRef>& members, double until) {
  std::vector<AllReduceMember> ring{{p_.net->peer_id(), p_.net->listen_addr()}};
  for (PeerRef m : members) {
    const p2p::PeerRecord* rec = peers_.record(m);
    if (!rec) continue;
    for (const auto& text : rec->addrs) {
      if (auto a = p2p::Multiaddr::parse(text); a.ok()) {
        ring.push_back({rec->peer, *a});
        break;
      }
    }
  }
  mean_delta_ = pseudo_gradient_vector(*p_.replica);
  const auto step = static_cast<uint64_t>(p_.replica->outer_step());
  NLOG_DEBUG("all-reduce of outer step {}: {} of {} expected members dialable", step, ring.size() - 1, members.size());
  auto out = p_.net->allreduce().allreduce(mean_delta_, step, std::move(ring), seconds(std::max(0.0, until - now())));
  if (!out.ok()) {
    NLOG_WARN("all-reduce of outer step {} failed, solo step: {}", step, out.status().to_string());
    return core.on_allreduce_done(now(), false, {}, out.status().to_string(), live());
  }
  std::vector<PeerRef> used;
  for (const auto& id : out->members)
    if (id != p_.net->peer_id()) used.push_back(peers_.ref(id));
  reduced_ = std::move(*out);
  return core.on_allreduce_done(now(), true, used, "", live());
}

Result<Step> NodeDriver::apply_outer(NodeCore& core, const Next& next) {
  if (!diloco()) {
    std::vector<PeerContribution> group;
    for (int slot : next.slots) group.push_back(std::move(accepted_.at(slot)));
    NOLOCO_RETURN_IF_ERROR(apply_outer_step(*p_.replica, group, p_.params, p_.form).context("outer step"));
  } else if (next.solo) {
    apply_diloco_solo_step(*p_.replica, p_.params.alpha, p_.params.beta);
  } else {
    NOLOCO_RETURN_IF_ERROR(apply_diloco_step(*p_.replica, mean_delta_, p_.params.alpha, p_.params.beta));
  }
  const auto outer = static_cast<uint64_t>(p_.replica->outer_step());
  p_.net->set_progress(sinks_.tamper.advertised_outer_step ? sinks_.tamper.advertised_outer_step(outer) : outer,
                       tokens_per_s_);
  NOLOCO_RETURN_IF_ERROR(publish(false, true));
  NOLOCO_RETURN_IF_ERROR(drain_events(core));
  return core.on_outer_applied(now(), live());
}

Result<NodeSummary> NodeDriver::finish(NodeCore& core, bool interrupted) {
  auto& s = p_.summary;
  auto& r = *p_.replica;
  s.interrupted = interrupted;
  // Final (or shutdown) checkpoint, synchronously, before anything else.
  NOLOCO_ASSIGN_OR_RETURN(storage::Checkpoint last, make_checkpoint(r, p_.run_id, p_.run_config, {}, &p_.writer->snapshots()));
  NOLOCO_RETURN_IF_ERROR(p_.writer->write_now(last).status());
  NOLOCO_RETURN_IF_ERROR(p_.writer->close());
  p_.writer->snapshots().release();  // no checkpoint follows: the kept buffer would only hold memory while lingering
  NOLOCO_RETURN_IF_ERROR(drain_events(core));
  s.end_inner = r.inner_step();
  s.last_val_loss = p_.eval();
  const TrafficTotals t = p_.net->traffic();
  emit(json{{"event", "done"}, {"interrupted", s.interrupted}, {"inner_step", r.inner_step()},
            {"outer_step", r.outer_step()}, {"val_loss", s.last_val_loss}, {"first_val_loss", s.first_val_loss},
            {"exchanges", s.exchanges}, {"solo_steps", s.solo_steps}, {"exchange_bytes_out", t.exchange_out},
            {"exchange_bytes_in", t.exchange_in}, {"state_bytes_in", t.state_in}, {"state_bytes_out", t.state_out},
            {"served", t.exchanges_served}}
           .dump());
  // Keep answering late partners with our final weights for a while.
  const auto linger_until = Clk::now() + seconds(s.interrupted ? 0.0 : o_.linger_s);
  while (Clk::now() < linger_until && !stopped()) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  p_.net->stop();
  NOLOCO_RETURN_IF_ERROR(p_.store->flush());
  return s;
}

}  // namespace noloco::node
