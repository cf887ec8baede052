// The swarm simulator's engine (swarm_sim.h): event queue, virtual network, and the driver that
// carries out each virtual node's core decisions, as node_driver.cc does for a real node.
#include "trainer/node/swarm_sim.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <memory>
#include <queue>
#include <set>

#include "trainer/node/exchange_wire.h"  // the refusal texts only
#include "trainer/node/node_core.h"
#include "trainer/node/swarm_sim_model.h"
#include "trainer/node/swarm_sim_trace.h"

namespace noloco::node {
namespace {

using sim::Vec;
using sim::Weights;

struct SimPayload {
  int sender = 0;
  uint64_t outer_step = 0;
  Vec delta, phi;
  bool bad = false;  // from a hostile node: fails verification
};
struct SimState {
  int from = 0;
  uint64_t outer_step = 0, inner_step = 0;
  Vec phi;
  bool bad = false;
};
using PayloadPtr = std::shared_ptr<const SimPayload>;
using StatePtr = std::shared_ptr<const SimState>;

struct Checkpoint {
  int64_t inner = 0, outer = 0;
  Weights w;
};

struct NodeSim {
  bool started = false, up = false, done = false, hostile = false;
  double speed = 1.0, join_at = 0, down_at = -1e300;
  uint64_t token = 0;  // a crash invalidates the events of the wait in progress
  int restarts = 0, crashes = 0;
  int64_t outer_at_start = 0;  // the outer step this process started at (its first claim)
  std::unique_ptr<NodeCore> core;
  CoreCounters before_restart;
  CoreRng rng{0};
  Vec optimum;
  Weights w;
  PayloadPtr published;
  StatePtr state;
  std::map<int, PayloadPtr> inbox;
  std::vector<PayloadPtr> phase_inbox;
  PayloadPtr answer;
  StatePtr fetched;
  std::vector<int> accepted;
  std::optional<Checkpoint> ckpt;
  std::set<PeerRef> store_bans;  // persisted bans: kept across restarts
  std::vector<double> blocked;
  std::set<PeerRef> partners;
  std::vector<int64_t> staleness_hist;
  int64_t mixed_callers = 0, over_bound = 0;
};

enum class EvKind { kStart, kCrash, kRestart, kPartition, kHeal, kResume, kDeliver };
// What a node's kResume event ends: the wait its core asked for.
enum class Wake { kPhase, kPoll, kCall, kFetch };

struct Ev {
  double t = 0;
  uint64_t seq = 0;
  EvKind kind = EvKind::kResume;
  int node = 0, peer = 0;
  uint64_t token = 0, caller_token = 0;
  double deadline = 0;
  Wake wake = Wake::kPhase;
  // kResume results
  bool ok = false;
  std::string why;
  ExchangeReply reply;
  PayloadPtr payload;
  StatePtr state;
};
struct Later {
  bool operator()(const std::shared_ptr<Ev>& a, const std::shared_ptr<Ev>& b) const {
    return a->t != b->t ? a->t > b->t : a->seq > b->seq;
  }
};

class Swarm {
 public:
  Swarm(const SimConfig& c, const std::function<void(const std::string&)>& sink)
      : c_(c), rng_(c.seed ^ 0x73776172'6d73696dULL), trace_(sink), nodes_(static_cast<size_t>(c.nodes)) {}

  SimResult run();

 private:
  // Events.
  void schedule(std::shared_ptr<Ev> e) {
    e->seq = seq_++;
    q_.push(std::move(e));
  }
  std::shared_ptr<Ev> at(double t, EvKind kind, int node, Wake wake = Wake::kPhase) {
    auto e = std::make_shared<Ev>();
    e->t = t;
    e->kind = kind;
    e->wake = wake;
    e->node = node;
    e->token = nodes_[static_cast<size_t>(node)].token;
    return e;
  }
  void setup();
  void dispatch(const Ev& e);

  // Nodes.
  CoreConfig core_config(int i) const;
  void start_node(int i);
  void crash(int i);
  void drive(int i, Step s);
  void effects(int i, const std::vector<Effect>& fx);
  void on_outer_done(int i, const OuterReport& r);
  void resume(const Ev& e);
  Step phase_done(int i);
  Step verify(int i, int slot);
  Step apply(int i, const std::vector<int>& slots);
  Step adopt(int i);
  void publish_state(int i, int64_t outer_step);
  void publish_payload(int i);

  // Network.
  std::vector<LivePeer> view(int i) const;
  bool visible(int i, int j) const;
  bool partitioned(int i, int j) const { return partition_on_ && (i < split_) != (j < split_); }
  double delay(int i, int j) const;
  double transfer(int i, int j, uint64_t bytes) const { return delay(i, j) + static_cast<double>(bytes) / c_.bandwidth_Bps; }
  void start_call(int i, int j, double deadline);
  void deliver(const Ev& e);
  void reply_at(int i, int j, double t, double deadline, std::string why);
  void start_fetch(int i, int j);

  NodeSim& n(int i) { return nodes_[static_cast<size_t>(i)]; }
  const NodeSim& n(int i) const { return nodes_[static_cast<size_t>(i)]; }

  const SimConfig& c_;
  CoreRng rng_;
  SimTrace trace_;
  std::vector<NodeSim> nodes_;
  Vec phi0_;  // every replica's initial weights (the run's seed)
  std::priority_queue<std::shared_ptr<Ev>, std::vector<std::shared_ptr<Ev>>, Later> q_;
  uint64_t seq_ = 0, events_ = 0;
  double now_ = 0;
  bool partition_on_ = false;
  int split_ = 0;
  double partition_from_ = -1e300, healed_at_ = -1e300;
  int cross_split_ = -1;  // the split of the first partition, for cross-mix counts
  std::vector<int64_t> cross_mixes_;
};

// ---------------------------------------------------------------- setup and the queue

void Swarm::setup() {
  CoreRng init(c_.seed);
  phi0_.resize(static_cast<size_t>(c_.dim));
  for (auto& x : phi0_) x = 3.0 + sim::normal(init);
  const Vec& phi0 = phi0_;
  for (int i = 0; i < c_.nodes; ++i) {
    NodeSim& s = n(i);
    s.rng = CoreRng(c_.seed * 0x9e3779b97f4a7c15ULL + static_cast<uint64_t>(i) + 1);
    s.speed = 1.0 + c_.speed_spread * s.rng.unit();
    s.optimum.resize(phi0.size());
    for (auto& x : s.optimum) x = c_.optimum_spread * sim::normal(s.rng);
    s.w = Weights{phi0, phi0, Vec(phi0.size(), 0.0)};
    s.staleness_hist.assign(static_cast<size_t>(c_.max_staleness + 1), 0);
  }
  for (const SimFault& f : c_.faults) {
    switch (f.kind) {
      case SimFault::Kind::kJoin: n(f.node).join_at = f.at; break;
      case SimFault::Kind::kHostile: n(f.node).hostile = true; break;
      case SimFault::Kind::kSlow: n(f.node).speed *= f.factor; break;
      case SimFault::Kind::kCrash: {
        schedule(at(f.at, EvKind::kCrash, f.node));
        if (f.duration > 0) schedule(at(f.at + f.duration, EvKind::kRestart, f.node));
        break;
      }
      case SimFault::Kind::kPartition: {
        auto e = at(f.at, EvKind::kPartition, 0);
        e->peer = f.split;
        schedule(e);
        schedule(at(f.at + f.duration, EvKind::kHeal, 0));
        if (cross_split_ < 0) cross_split_ = f.split;
        break;
      }
    }
  }
  for (int i = 0; i < c_.nodes; ++i) schedule(at(n(i).join_at, EvKind::kStart, i));
}

SimResult Swarm::run() {
  setup();
  while (!q_.empty()) {
    auto e = q_.top();
    q_.pop();
    now_ = e->t;
    ++events_;
    dispatch(*e);
  }
  SimResult r;
  r.events = events_;
  r.end_time = now_;
  r.trace_hash = trace_.hash();
  std::vector<const Vec*> phis, optima;
  for (int i = 0; i < c_.nodes; ++i) {
    const NodeSim& s = n(i);
    if (!s.hostile && s.started) phis.push_back(&s.w.phi), optima.push_back(&s.optimum);
    r.nodes.push_back(sim_stats(s.core ? s.core->counters() : CoreCounters{}, s.before_restart, s.blocked,
                                s.staleness_hist, s.partners.size(), s.crashes, s.mixed_callers,
                                s.core ? s.core->outer_step() : 0, s.done));
    r.nodes.back().mixed_over_bound = s.over_bound;
  }
  r.weight_spread = sim::spread(phis);
  r.initial_spread = sim::spread(optima);
  r.cross_mixes = cross_mixes_;
  r.window_s = static_cast<double>(c_.H) * c_.step_s;
  return r;
}

void Swarm::dispatch(const Ev& e) {
  switch (e.kind) {
    case EvKind::kStart:
    case EvKind::kRestart:
      if (!n(e.node).up && !n(e.node).done) start_node(e.node);
      return;
    case EvKind::kCrash:
      if (n(e.node).up) crash(e.node);
      return;
    case EvKind::kPartition:
      partition_on_ = true;
      split_ = e.peer;
      partition_from_ = now_;
      trace_.line(now_, -1, "partition", "\"split\":" + std::to_string(split_));
      return;
    case EvKind::kHeal:
      partition_on_ = false;
      healed_at_ = now_;
      trace_.line(now_, -1, "heal", "");
      return;
    case EvKind::kResume:
      if (n(e.node).up && e.token == n(e.node).token) resume(e);
      return;
    case EvKind::kDeliver:
      deliver(e);
      return;
  }
}

// ---------------------------------------------------------------- nodes

CoreConfig Swarm::core_config(int i) const {
  const NodeSim& s = n(i);
  CoreConfig k;
  k.total_steps = c_.outer_steps * c_.H;
  k.H = c_.H;
  k.max_staleness = c_.max_staleness;
  k.resync_behind = c_.resync_behind;
  k.always_exchange = c_.always_exchange;
  k.exchange_tries = c_.exchange_tries;
  k.exchange_budget_s = c_.exchange_budget_s;
  k.checkpoint_every = c_.checkpoint_every;
  k.strikes_to_ban = c_.strikes_to_ban;
  // As `noloco demo`: node 0 starts the run, everyone else was given --join (or has a peer book).
  k.want_peers = (i == 0 && s.restarts == 0) ? 0 : 1;
  k.join_wait_s = c_.join_wait_s;
  k.seed = c_.seed ^ (static_cast<uint64_t>(i) << 20) ^ static_cast<uint64_t>(s.restarts);
  return k;
}

void Swarm::start_node(int i) {
  NodeSim& s = n(i);
  s.up = true;
  s.started = true;
  ++s.token;
  if (s.core) {
    const CoreCounters& k = s.core->counters();
    CoreCounters& b = s.before_restart;
    b.outer_steps += k.outer_steps, b.exchanges += k.exchanges, b.solo_steps += k.solo_steps;
    b.resyncs += k.resyncs, b.bans += k.bans, b.refused += k.refused, b.stale += k.stale;
    b.calls += k.calls, b.call_failures += k.call_failures, b.checkpoints += k.checkpoints;
    ++s.restarts;
  }
  int64_t inner = 0, outer = 0;
  if (s.ckpt) {
    inner = s.ckpt->inner, outer = s.ckpt->outer;
    s.w = s.ckpt->w;
  } else {
    s.w = Weights{phi0_, phi0_, Vec(phi0_.size(), 0.0)};  // nothing saved: from scratch
  }
  s.outer_at_start = outer;
  s.core = std::make_unique<NodeCore>(core_config(i));
  trace_.line(now_, i, s.restarts ? "restart" : "start",
              "\"inner\":" + std::to_string(inner) + ",\"outer\":" + std::to_string(outer));
  drive(i, s.core->on_start(now_, inner, outer, view(i)));
}

void Swarm::crash(int i) {
  NodeSim& s = n(i);
  s.up = false;
  ++s.token;
  ++s.crashes;
  s.down_at = now_;
  s.inbox.clear();
  s.published.reset();
  s.state.reset();
  trace_.line(now_, i, "crash", "");
}

void Swarm::drive(int i, Step st) {
  NodeSim& s = n(i);
  while (true) {
    effects(i, st.effects);
    const Next next = std::move(st.next);
    switch (next.kind) {
      case Next::Kind::kVerify: st = verify(i, next.slot); continue;
      case Next::Kind::kApplyOuter: st = apply(i, next.slots); continue;
      case Next::Kind::kAdoptState: st = adopt(i); continue;
      case Next::Kind::kWaitPeers:
        schedule(at(std::min(now_ + c_.join_poll_s, std::max(next.until, now_)), EvKind::kResume, i, Wake::kPoll));
        return;
      case Next::Kind::kTrainPhase: {
        const int64_t steps = std::min(c_.H, c_.outer_steps * c_.H - s.core->inner_step());
        const double jitter = 1.0 + c_.phase_jitter * (2.0 * s.rng.unit() - 1.0);
        schedule(at(now_ + static_cast<double>(steps) * c_.step_s * s.speed * jitter, EvKind::kResume, i));
        return;
      }
      case Next::Kind::kStateSync: start_fetch(i, static_cast<int>(next.peer)); return;
      case Next::Kind::kCall: start_call(i, static_cast<int>(next.peer), next.until); return;
      case Next::Kind::kAllReduce:
        // Not reached: the simulator models NoLoCo only (its cores never get Method::kDiloco).
        // Were it asked, a failed all-reduce is a solo step, which keeps the run well-defined.
        st = s.core->on_allreduce_done(now_, false, {}, "the swarm simulator has no all-reduce", view(i));
        continue;
      case Next::Kind::kFinish:
        s.done = true;
        s.up = false;  // a finished node stops answering (no --linger)
        s.down_at = now_;
        trace_.line(now_, i, "finish", "\"outer\":" + std::to_string(s.core->outer_step()));
        return;
    }
  }
}

void Swarm::resume(const Ev& e) {
  NodeSim& s = n(e.node);
  Step st;
  switch (e.wake) {
    case Wake::kFetch:
      s.fetched = e.state;
      st = e.ok ? s.core->on_state_fetched(now_, true, "", e.state->outer_step, e.state->inner_step)
                : s.core->on_state_fetched(now_, false, e.why, 0, 0);
      break;
    case Wake::kCall:
      s.answer = e.payload;
      st = s.core->on_exchange_reply(now_, e.reply, view(e.node));
      break;
    case Wake::kPoll:
      st = s.core->on_live_view(now_, view(e.node));
      break;
    case Wake::kPhase:
      st = phase_done(e.node);
      break;
  }
  drive(e.node, std::move(st));
}

Step Swarm::phase_done(int i) {
  NodeSim& s = n(i);
  sim::inner_phase(s.w, s.optimum, c_.inner_rate, c_.inner_noise, s.rng);
  const int64_t inner = std::min(s.core->inner_step() + c_.H, c_.outer_steps * c_.H);
  if (inner % c_.H == 0) publish_payload(i);  // before we look at the inbox, as the real node does
  s.phase_inbox.clear();
  std::vector<InboxItem> items;
  for (auto& [from, payload] : s.inbox) {
    s.phase_inbox.push_back(payload);
    items.push_back({static_cast<PeerRef>(from), payload->outer_step});
  }
  s.inbox.clear();
  s.accepted.clear();
  s.answer.reset();
  return s.core->on_phase_done(now_, inner, items, view(i));
}

Step Swarm::verify(int i, int slot) {
  NodeSim& s = n(i);
  const PayloadPtr& p = slot == kPartnerSlot ? s.answer : s.phase_inbox.at(static_cast<size_t>(slot));
  if (p->bad) return s.core->on_verified(now_, false, "non-finite values");
  return s.core->on_verified(now_, true, "");
}

Step Swarm::apply(int i, const std::vector<int>& slots) {
  NodeSim& s = n(i);
  std::vector<sim::Contribution> group;
  for (int slot : slots) {
    const PayloadPtr& p = slot == kPartnerSlot ? s.answer : s.phase_inbox.at(static_cast<size_t>(slot));
    group.push_back({&p->delta, &p->phi});
    if (slot != kPartnerSlot) ++s.mixed_callers;
  }
  sim::outer_step(s.w, group, c_.alpha, c_.beta, c_.gamma);
  publish_state(i, s.core->outer_step() + 1);  // the core counts the step in on_outer_applied
  return s.core->on_outer_applied(now_, view(i));
}

Step Swarm::adopt(int i) {
  NodeSim& s = n(i);
  if (s.fetched->bad) return s.core->on_state_adopted(now_, false, "state does not decode");
  s.w.phi = s.w.theta = s.fetched->phi;
  std::fill(s.w.delta.begin(), s.w.delta.end(), 0.0);
  return s.core->on_state_adopted(now_, true, "");
}

void Swarm::publish_state(int i, int64_t outer_step) {
  NodeSim& s = n(i);
  auto st = std::make_shared<SimState>();
  st->from = i;
  st->phi = s.w.phi;
  st->outer_step = static_cast<uint64_t>(outer_step);
  st->inner_step = static_cast<uint64_t>(s.core->inner_step());
  st->bad = s.hostile;
  s.state = std::move(st);
}

void Swarm::publish_payload(int i) {
  NodeSim& s = n(i);
  auto p = std::make_shared<SimPayload>();
  p->sender = i;
  p->outer_step = static_cast<uint64_t>(s.core->outer_step());
  p->phi = s.w.phi;
  p->delta.resize(s.w.phi.size());
  for (size_t k = 0; k < p->delta.size(); ++k) p->delta[k] = s.w.theta[k] - s.w.phi[k];
  p->bad = s.hostile;
  s.published = std::move(p);
}

void Swarm::effects(int i, const std::vector<Effect>& fx) {
  NodeSim& s = n(i);
  for (const Effect& e : fx) {
    switch (e.kind) {
      case Effect::Kind::kRecordOutcome: break;  // the peer book is not modelled
      case Effect::Kind::kBan:
        s.store_bans.insert(e.peer);
        break;
      case Effect::Kind::kNotice:
        trace_.notice(now_, i, e.notice);
        break;
      case Effect::Kind::kWriteCheckpoint:
        s.ckpt = Checkpoint{s.core->inner_step(), s.core->outer_step(), s.w};
        break;
      case Effect::Kind::kPublish:
        publish_state(i, s.core->outer_step());
        if (e.with_payload) publish_payload(i);
        break;
      case Effect::Kind::kOuterDone:
        on_outer_done(i, e.report);
        break;
    }
  }
}

void Swarm::on_outer_done(int i, const OuterReport& r) {
  NodeSim& s = n(i);
  s.blocked.push_back(r.blocked_s);
  for (size_t k = 0; k < r.group.size(); ++k) {
    s.partners.insert(r.group[k]);
    const auto lag = static_cast<size_t>(std::max<int64_t>(0, r.staleness[k]));
    if (lag < s.staleness_hist.size()) ++s.staleness_hist[lag];
    else ++s.over_bound;
    if (cross_split_ >= 0 && (i < cross_split_) != (static_cast<int>(r.group[k]) < cross_split_)) {
      const auto w = static_cast<size_t>(now_ / (static_cast<double>(c_.H) * c_.step_s));
      if (cross_mixes_.size() <= w) cross_mixes_.resize(w + 1, 0);
      ++cross_mixes_[w];
    }
  }
  trace_.outer(now_, i, r);
}

// ---------------------------------------------------------------- network

double Swarm::delay(int i, int j) const {
  // A fixed factor per link, from the seed and the (unordered) pair.
  const uint64_t a = static_cast<uint64_t>(std::min(i, j)), b = static_cast<uint64_t>(std::max(i, j));
  CoreRng link(c_.seed ^ (a * 0x100000001b3ULL + b * 0x9e3779b97f4a7c15ULL));
  return c_.delay_s * (1.0 + c_.delay_spread * link.unit());
}

bool Swarm::visible(int i, int j) const {
  const NodeSim& p = n(j);
  if (i == j || !p.started) return false;
  if (n(i).store_bans.count(static_cast<PeerRef>(j)) || (n(i).core && n(i).core->banned(static_cast<PeerRef>(j))))
    return false;
  // A peer that stopped stays in the view until its record expires.
  if (!p.up && now_ >= p.down_at + c_.membership_timeout_s) return false;
  const bool across = cross_split_ >= 0 && (i < split_) != (j < split_);
  if (partition_on_ && across && now_ >= partition_from_ + c_.membership_timeout_s) return false;
  // After a heal the halves find each other again through gossip (bootstrap addresses).
  if (!partition_on_ && across && healed_at_ > partition_from_ &&
      partition_from_ + c_.membership_timeout_s <= healed_at_ && now_ < healed_at_ + c_.heal_gossip_s)
    return false;
  return true;
}

std::vector<LivePeer> Swarm::view(int i) const {
  std::vector<LivePeer> out;
  out.reserve(nodes_.size());
  for (int j = 0; j < c_.nodes; ++j) {
    if (!visible(i, j)) continue;
    const NodeSim& p = n(j);
    out.push_back({static_cast<PeerRef>(j), static_cast<uint64_t>(p.core ? p.core->outer_step() : 0)});
  }
  return out;
}

// The caller's try ends at `t` with `why`, or at the deadline with a timeout.
void Swarm::reply_at(int i, int j, double t, double deadline, std::string why) {
  auto e = at(std::min(t, deadline), EvKind::kResume, i, Wake::kCall);
  e->reply.failure = std::to_string(j) + ": " + (t > deadline ? "timed out" : why);
  schedule(std::move(e));
}

void Swarm::start_call(int i, int j, double deadline) {
  if (!n(j).up) return reply_at(i, j, now_ + 2 * delay(i, j), deadline, "connection refused");
  // A request lost (or across a partition) leaves the try waiting until its deadline.
  if (partitioned(i, j) || rng_.unit() < c_.loss) return reply_at(i, j, deadline, deadline, "timed out");
  const double arrives = now_ + transfer(i, j, c_.payload_bytes);
  if (arrives >= deadline) return reply_at(i, j, deadline, deadline, "timed out");
  auto e = at(arrives, EvKind::kDeliver, j);
  e->peer = i;
  e->deadline = deadline;
  e->caller_token = n(i).token;  // answers to a caller that crashed meanwhile are dropped
  e->payload = n(i).published;
  schedule(std::move(e));
}

void Swarm::deliver(const Ev& e) {
  const int callee = e.node, caller = e.peer;
  NodeSim& s = n(callee);
  if (!n(caller).up || n(caller).token != e.caller_token) return;  // the caller is gone
  auto answer_to = [&](ExchangeReply r, PayloadPtr p, double t) {
    auto ev = at(t, EvKind::kResume, caller, Wake::kCall);
    if (t > e.deadline) {
      ev->t = e.deadline;
      r = ExchangeReply{};
      r.failure = std::to_string(callee) + ": timed out";
      p.reset();
    }
    ev->reply = std::move(r);
    ev->payload = std::move(p);
    schedule(std::move(ev));
  };
  ExchangeReply r;
  if (!s.up || s.token != e.token) {
    r.failure = std::to_string(callee) + ": connection reset";
    return answer_to(r, nullptr, now_ + delay(callee, caller));
  }
  if (s.store_bans.count(static_cast<PeerRef>(caller)) || (s.core && s.core->banned(static_cast<PeerRef>(caller)))) {
    r.failure = std::to_string(callee) + ": stream reset";
    return answer_to(r, nullptr, now_ + delay(callee, caller));
  }
  // The callee keeps the caller's payload (newest per peer; when full, the stalest goes).
  if (e.payload) {
    auto it = s.inbox.find(caller);
    if (it == s.inbox.end() || it->second->outer_step <= e.payload->outer_step) {
      if (it == s.inbox.end() && s.inbox.size() >= c_.max_inbox) {
        auto oldest = std::min_element(s.inbox.begin(), s.inbox.end(), [](auto& a, auto& b) {
          return a.second->outer_step < b.second->outer_step;
        });
        s.inbox.erase(oldest);
      }
      s.inbox[caller] = e.payload;
    }
  }
  if (!s.published) {
    // As NodeNetworkImpl: "no snapshot yet" only while the process is fresh (nothing published
    // since it started, its claim not moved); the process is the epoch (claim_watch.h).
    const int64_t claim = s.core ? s.core->outer_step() : 0;
    r.no_payload_yet = claim == s.outer_at_start;
    r.claimed_epoch = static_cast<uint64_t>(s.restarts);
    r.claimed_outer = static_cast<uint64_t>(claim);
    r.failure = std::to_string(callee) + ": refused: " +
                std::string(r.no_payload_yet ? kRefusalNoPayloadYet : kRefusalPayloadBusy);
    return answer_to(r, nullptr, now_ + transfer(callee, caller, 64));
  }
  if (partitioned(callee, caller) || rng_.unit() < c_.loss) {
    r.failure = std::to_string(callee) + ": timed out";
    return answer_to(r, nullptr, e.deadline);
  }
  r.answered = true;
  r.outer_step = s.published->outer_step;
  answer_to(r, s.published, now_ + transfer(callee, caller, c_.payload_bytes));
}

void Swarm::start_fetch(int i, int j) {
  auto e = at(now_, EvKind::kResume, i, Wake::kFetch);
  if (!n(j).up || partitioned(i, j) || !n(j).state) {
    e->t = now_ + (n(j).up && !partitioned(i, j) ? 2 * delay(i, j) : 30.0);
    e->why = std::to_string(j) + ": state download failed";
  } else {
    e->ok = true;
    e->state = n(j).state;
    e->t = now_ + delay(i, j) + transfer(j, i, c_.state_bytes);
  }
  schedule(std::move(e));
}

}  // namespace

Result<SimResult> run_swarm_sim(const SimConfig& config, const std::function<void(const std::string&)>& trace) {
  NOLOCO_RETURN_IF_ERROR(config.validate());
  Swarm swarm(config, trace);
  return swarm.run();
}

}  // namespace noloco::node
