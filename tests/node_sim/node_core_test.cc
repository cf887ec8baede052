// The node core's rules, one event at a time (trainer/node/node_core.h).
#include <catch2/catch.hpp>

#include <cmath>
#include <map>

#include "node_core_test_util.h"
#include "trainer/node/node_core.h"

using namespace noloco::node;
using namespace noloco::node::test_core;


TEST_CASE("node core: partner choice is uniform over the live view", "[node_core]") {
  CoreConfig c = config();
  c.total_steps = 1'000'000;
  NodeCore core = started(c);
  std::map<PeerRef, int> hits;
  const int rounds = 5000;
  for (int r = 0; r < rounds; ++r) {
    const auto live = peers(10, static_cast<uint64_t>(core.outer_step()));  // the swarm keeps pace
    Step s = core.on_phase_done(r, (r + 1) * c.H, {}, live);
    REQUIRE(s.next.kind == Next::Kind::kCall);
    ++hits[s.next.peer];
    ExchangeReply ok;
    ok.answered = true;
    ok.outer_step = static_cast<uint64_t>(core.outer_step());
    s = core.on_exchange_reply(r, ok, live);
    REQUIRE(s.next.kind == Next::Kind::kVerify);
    s = core.on_verified(r, true, "");
    REQUIRE(s.next.kind == Next::Kind::kApplyOuter);
    s = core.on_outer_applied(r, peers(10, static_cast<uint64_t>(core.outer_step() + 1)));
  }
  REQUIRE(hits.size() == 10);
  // Chi-square with 9 degrees of freedom; 27.9 is the 0.999 quantile.
  double chi2 = 0;
  const double expect = rounds / 10.0;
  for (auto& [peer, n] : hits) chi2 += (n - expect) * (n - expect) / expect;
  CHECK(chi2 < 27.9);
}

TEST_CASE("node core: callers' payloads come first and a usable caller replaces the call", "[node_core]") {
  NodeCore core = started(config());
  const std::vector<InboxItem> inbox{{3, 0}, {5, 0}};
  Step s = core.on_phase_done(1, 10, inbox, peers(6));
  REQUIRE(s.next.kind == Next::Kind::kVerify);
  CHECK(s.next.slot == 0);
  s = core.on_verified(1, true, "");
  REQUIRE(s.next.kind == Next::Kind::kVerify);
  CHECK(s.next.slot == 1);
  s = core.on_verified(1, true, "");
  REQUIRE(s.next.kind == Next::Kind::kApplyOuter);  // no call: the callers paired with us
  CHECK(s.next.slots == std::vector<int>{0, 1});
  s = core.on_outer_applied(2, peers(6));
  REQUIRE(count(s, Effect::Kind::kOuterDone) == 1);
  for (const auto& e : s.effects)
    if (e.kind == Effect::Kind::kOuterDone) {
      CHECK_FALSE(e.report.called);
      CHECK(e.report.partner == 3);
      CHECK(e.report.group == std::vector<PeerRef>{3, 5});
    }
}

TEST_CASE("node core: always-exchange calls a partner even with callers", "[node_core]") {
  CoreConfig c = config();
  c.always_exchange = true;
  NodeCore core = started(c);
  Step s = core.on_phase_done(1, 10, std::vector<InboxItem>{{3, 0}}, peers(6));
  s = core.on_verified(1, true, "");
  CHECK(s.next.kind == Next::Kind::kCall);
}

TEST_CASE("node core: stale callers are dropped and laggy peers are not called", "[node_core]") {
  CoreConfig c = config();
  c.max_staleness = 2;
  NodeCore core = started(c, 10);  // at outer step 10
  // Lags 3 (stale: judged only), 2 (kept: the bound is inclusive).
  Step s = core.on_phase_done(1, 110, std::vector<InboxItem>{{1, 7}, {2, 8}}, {});
  CHECK(notices(s, Notice::Kind::kStale) == 1);
  CHECK(core.counters().stale == 1);
  REQUIRE(s.next.kind == Next::Kind::kVerify);
  CHECK(s.next.peer == 1);
  CHECK(s.next.judge_only);
  s = core.on_verified(1, true, "");  // within the bounds it is held to: dropped all the same
  REQUIRE(s.next.kind == Next::Kind::kVerify);
  CHECK(s.next.peer == 2);
  CHECK_FALSE(s.next.judge_only);
  s = core.on_verified(1, true, "");
  REQUIRE(s.next.kind == Next::Kind::kApplyOuter);
  CHECK(s.next.slots == std::vector<int>{1});  // only the fresh one is mixed

  NodeCore caller = started(c, 10);
  // Only peer 9 is within the bound: every call goes to it.
  std::vector<LivePeer> live{{1, 7}, {2, 5}, {9, 8}};
  s = caller.on_phase_done(1, 110, {}, live);
  REQUIRE(s.next.kind == Next::Kind::kCall);
  CHECK(s.next.peer == 9);
  // Its answer, though, is older than the bound: a failed try; nobody else to call: solo.
  ExchangeReply old;
  old.answered = true;
  old.outer_step = 7;
  s = caller.on_exchange_reply(2, old, live);
  REQUIRE(s.next.kind == Next::Kind::kApplyOuter);
  CHECK(s.next.slots.empty());
}

TEST_CASE("node core: a stale push is judged for strikes, never mixed, and its refusals ban", "[node_core]") {
  CoreConfig c = config();
  c.max_staleness = 2;
  NodeCore core = started(c, 10);
  for (int round = 0; round < 2; ++round) {
    // A caller 5 outer steps behind pushes a payload that fails a bound staleness does not move.
    const uint64_t theirs = static_cast<uint64_t>(core.outer_step()) - 5;
    Step s = core.on_phase_done(1, (core.outer_step() + 1) * c.H, std::vector<InboxItem>{{4, theirs}}, {});
    REQUIRE(s.next.kind == Next::Kind::kVerify);
    REQUIRE(s.next.judge_only);
    s = core.on_verified(1, false, "update norm is 100x ours (a stale payload, not mixed)", kProofStrike);
    CHECK(notices(s, Notice::Kind::kRefused) == 1);
    CHECK(count(s, Effect::Kind::kBan) == (round == 1 ? 1 : 0));  // two proofs ban
    REQUIRE(s.next.kind == Next::Kind::kApplyOuter);                 // nobody live to call: solo
    CHECK(s.next.slots.empty());
    s = core.on_outer_applied(2, {});
    REQUIRE(s.next.kind == Next::Kind::kTrainPhase);
  }
  CHECK(core.banned(4));
}

TEST_CASE("node core: tries and budget bound the wait, then a solo step", "[node_core]") {
  CoreConfig c = config();
  c.exchange_tries = 3;
  c.exchange_budget_s = 10;
  NodeCore core = started(c);
  const auto live = peers(8);
  Step s = core.on_phase_done(100, 10, {}, live);
  REQUIRE(s.next.kind == Next::Kind::kCall);
  CHECK(s.next.until == Approx(110));
  ExchangeReply fail;
  fail.failure = "refused";
  std::vector<PeerRef> called{s.next.peer};
  s = core.on_exchange_reply(101, fail, live);
  REQUIRE(s.next.kind == Next::Kind::kCall);
  called.push_back(s.next.peer);
  s = core.on_exchange_reply(102, fail, live);
  REQUIRE(s.next.kind == Next::Kind::kCall);
  called.push_back(s.next.peer);
  CHECK(called[0] != called[1]);  // a failed partner is not tried again in the same step
  CHECK(called[1] != called[2]);
  CHECK(called[0] != called[2]);
  s = core.on_exchange_reply(103, fail, live);
  REQUIRE(s.next.kind == Next::Kind::kApplyOuter);  // three tries spent: solo
  s = core.on_outer_applied(103, live);
  CHECK(core.counters().solo_steps == 1);

  // The budget ends the tries early.
  s = core.on_phase_done(200, 20, {}, live);
  REQUIRE(s.next.kind == Next::Kind::kCall);
  s = core.on_exchange_reply(210, fail, live);
  CHECK(s.next.kind == Next::Kind::kApplyOuter);
}

TEST_CASE("node core: resync when the swarm is resync-behind ahead, not before", "[node_core]") {
  CoreConfig c = config();
  c.resync_behind = 8;
  NodeCore core = started(c);
  std::vector<LivePeer> live{{1, 8}, {2, 3}};  // after our step we are at 1: 7 behind
  Step s = core.on_phase_done(1, 10, {}, live);
  ExchangeReply fail;
  fail.failure = "x";
  while (s.next.kind == Next::Kind::kCall) s = core.on_exchange_reply(1, fail, live);
  s = core.on_outer_applied(2, live);
  CHECK(s.next.kind == Next::Kind::kTrainPhase);
  live[0].outer_step = 10;  // after our next step we are at 2: 8 behind
  s = core.on_phase_done(3, 20, {}, live);
  while (s.next.kind == Next::Kind::kCall) s = core.on_exchange_reply(3, fail, live);
  s = core.on_outer_applied(4, live);
  REQUIRE(s.next.kind == Next::Kind::kStateSync);
  CHECK(s.next.peer == 1);
  s = core.on_state_fetched(5, true, "", 9, 90);
  REQUIRE(s.next.kind == Next::Kind::kAdoptState);
  s = core.on_state_adopted(6, true, "");
  CHECK(notices(s, Notice::Kind::kStateSync) == 1);
  CHECK(core.outer_step() == 9);
  CHECK(core.inner_step() == 90);
  CHECK(core.counters().resyncs == 1);
  CHECK(s.next.kind == Next::Kind::kTrainPhase);
}

TEST_CASE("node core: a state not ahead of ours is not adopted", "[node_core]") {
  CoreConfig c = config();
  c.want_peers = 1;
  NodeCore core(c);
  Step s = core.on_start(0, 0, 0, std::vector<LivePeer>{{4, 2}});
  REQUIRE(s.next.kind == Next::Kind::kStateSync);  // fresh node, swarm one step ahead or more
  s = core.on_state_fetched(1, true, "", 0, 0);       // the peer had nothing newer after all
  CHECK(s.next.kind == Next::Kind::kTrainPhase);
  CHECK(count(s, Effect::Kind::kPublish) == 1);
  CHECK(core.counters().resyncs == 0);
}

TEST_CASE("node core: an honest lagging partner is not struck", "[node_core]") {
  // One partner that never steps: every call gets the payload we mixed at the start back. Over
  // far more outer steps than strikes_to_ban it costs it nothing and is never banned.
  NodeCore core = started(config());
  int unchanged = 0, bans = 0;
  for (int r = 0; r < 20; ++r) {
    const uint64_t ours = static_cast<uint64_t>(core.outer_step());
    const std::vector<LivePeer> live = peers(1, ours);
    Step s = core.on_phase_done(r, (r + 1) * 10, {}, live);
    while (s.next.kind == Next::Kind::kCall) {
      ExchangeReply same;
      same.answered = true;
      same.outer_step = ours > 0 ? ours - 1 : 0;  // it has not stepped yet
      s = core.on_exchange_reply(r, same, live);
      if (s.next.kind != Next::Kind::kVerify) break;
      s = core.on_verified(r, false, "unchanged payload", 0.0);
      unchanged += notices(s, Notice::Kind::kUnchanged);
      bans += count(s, Effect::Kind::kBan);
      CHECK(notices(s, Notice::Kind::kRefused) == 0);
      for (const auto& e : s.effects) CHECK_FALSE((e.kind == Effect::Kind::kRecordOutcome && !e.ok));
    }
    if (s.next.kind == Next::Kind::kApplyOuter) s = core.on_outer_applied(r, live);
  }
  CHECK(unchanged >= 5);  // more than a ban's worth of struck refusals would have been
  CHECK(bans == 0);
  CHECK_FALSE(core.banned(1));
  CHECK(core.score(1) == 0);
  CHECK(core.counters().refused == 0);
}

TEST_CASE("node core: proof of misbehaviour weighs more than a suspect refusal", "[node_core]") {
  NodeCore core = started(config());
  // Two proofs (forged records, a replay under a new step, an outvoted state) ban.
  CHECK(core.on_peer_misbehaved(7, "forged gossip").size() > 0);
  CHECK_FALSE(core.banned(7));
  int bans = 0;
  for (const auto& e : core.on_peer_misbehaved(7, "forged gossip")) bans += e.kind == Effect::Kind::kBan;
  CHECK(bans == 1);
  CHECK(core.banned(7));
  // Suspect refusals need five; a refused notice carries the score so far.
  for (int i = 0; i < 4; ++i) {
    const auto fx = core.on_peer_misbehaved(8, "norm ratio", kSuspectStrike);
    for (const auto& e : fx) {
      CHECK(e.kind != Effect::Kind::kBan);
      if (e.kind == Effect::Kind::kNotice && e.notice.kind == Notice::Kind::kRefused)
        CHECK(e.notice.score == Approx((i + 1) * kSuspectStrike));
    }
  }
  CHECK_FALSE(core.banned(8));
  CHECK(core.score(8) == Approx(4 * kSuspectStrike));
  CHECK(core.counters().bans == 1);
}

TEST_CASE("node core: the fifth refusal bans, once", "[node_core]") {
  NodeCore core = started(config());
  int bans = 0;
  for (int r = 0; r < 7; ++r) {
    Step s = core.on_phase_done(r, (r + 1) * 10, std::vector<InboxItem>{{42, static_cast<uint64_t>(r)}}, peers(3));
    REQUIRE(s.next.kind == Next::Kind::kVerify);
    s = core.on_verified(r, false, "non-finite");
    CHECK(notices(s, Notice::Kind::kRefused) == 1);
    bans += count(s, Effect::Kind::kBan);
    if (r == 4) CHECK(count(s, Effect::Kind::kBan) == 1);
    ExchangeReply fail;
    fail.failure = "x";
    while (s.next.kind == Next::Kind::kCall) s = core.on_exchange_reply(r, fail, peers(3));
    s = core.on_outer_applied(r, peers(3));
  }
  CHECK(bans == 1);
  CHECK(core.banned(42));
  // Wire-level refusals reported by the network count too.
  NodeCore other = started(config());
  int wire_bans = 0;
  for (int k = 0; k < 5; ++k)
    for (const auto& e : other.on_peer_misbehaved(9, "truncated", kSuspectStrike)) wire_bans += e.kind == Effect::Kind::kBan;
  CHECK(wire_bans == 1);
}

TEST_CASE("node core: checkpoints every K outer steps, not at the run's end", "[node_core]") {
  CoreConfig c = config();
  c.checkpoint_every = 3;
  c.total_steps = 60;  // 6 outer steps
  NodeCore core = started(c);
  std::vector<int64_t> at;
  Step s;
  for (int r = 1; r <= 6; ++r) {
    s = core.on_phase_done(r, r * 10, {}, {});
    REQUIRE(s.next.kind == Next::Kind::kApplyOuter);  // nobody live: solo at once
    s = core.on_outer_applied(r, {});
    if (count(s, Effect::Kind::kWriteCheckpoint)) at.push_back(core.outer_step());
  }
  CHECK(at == std::vector<int64_t>{3});  // 6 is the end: the final checkpoint is the driver's
  CHECK(s.next.kind == Next::Kind::kFinish);
  CHECK_FALSE(s.next.interrupted);
}

TEST_CASE("node core: stop-after-outer interrupts, a partial last phase takes no outer step", "[node_core]") {
  CoreConfig c = config();
  c.stop_after_outer = 2;
  NodeCore core = started(c);
  Step s = core.on_phase_done(1, 10, {}, {});
  s = core.on_outer_applied(1, {});
  CHECK(s.next.kind == Next::Kind::kTrainPhase);
  s = core.on_phase_done(2, 20, {}, {});
  s = core.on_outer_applied(2, {});
  CHECK(s.next.kind == Next::Kind::kFinish);
  CHECK(s.next.interrupted);

  CoreConfig d = config();
  d.total_steps = 25;
  NodeCore tail = started(d);
  s = tail.on_phase_done(1, 10, {}, {});
  s = tail.on_outer_applied(1, {});
  s = tail.on_phase_done(2, 20, {}, {});
  s = tail.on_outer_applied(2, {});
  s = tail.on_phase_done(3, 25, {}, {});
  CHECK(s.next.kind == Next::Kind::kFinish);
  CHECK_FALSE(s.next.interrupted);
  CHECK(tail.outer_step() == 2);
}

TEST_CASE("node core: a partner that also called us is mixed once", "[node_core]") {
  CoreConfig c = config();
  c.always_exchange = true;
  NodeCore core = started(c);
  const std::vector<LivePeer> live{{3, 0}};  // the caller is the only peer to call
  Step s = core.on_phase_done(1, 10, std::vector<InboxItem>{{3, 0}}, live);
  s = core.on_verified(1, true, "");
  REQUIRE(s.next.kind == Next::Kind::kCall);
  CHECK(s.next.peer == 3);
  ExchangeReply ok;
  ok.answered = true;
  s = core.on_exchange_reply(2, ok, live);
  REQUIRE(s.next.kind == Next::Kind::kApplyOuter);  // no second verification
  CHECK(s.next.slots == std::vector<int>{0});
}

TEST_CASE("node core: a network refusal in the middle of a step leaves the step's effects alone", "[node_core]") {
  NodeCore core = started(config());
  Step s = core.on_phase_done(1, 10, std::vector<InboxItem>{{3, 0}}, peers(4));
  s = core.on_verified(1, true, "");  // its kRecordOutcome belongs to this step
  const auto fx = core.on_peer_misbehaved(7, "malformed gossip");
  REQUIRE(fx.size() == 2);  // outcome and notice, no ban yet
  CHECK(fx[0].kind == Effect::Kind::kRecordOutcome);
  CHECK(fx[0].peer == 7);
  CHECK(fx[1].notice.kind == Notice::Kind::kRefused);
  s = core.on_outer_applied(2, peers(4));
  CHECK(count(s, Effect::Kind::kRecordOutcome) == 0);  // the caller's was delivered with on_verified
  CHECK(count(s, Effect::Kind::kOuterDone) == 1);
}

// ---------------------------------------------------------------- DiLoCo

namespace {

CoreConfig diloco_config() {
  CoreConfig c = config();
  c.method = Method::kDiloco;
  return c;
}

const OuterReport* outer_report(const Step& s) {
  for (const auto& e : s.effects)
    if (e.kind == Effect::Kind::kOuterDone) return &e.report;
  return nullptr;
}

}  // namespace

TEST_CASE("node core: DiLoCo asks for an all-reduce with the live members, never a call", "[node_core][diloco]") {
  CoreConfig c = diloco_config();
  c.exchange_budget_s = 30;
  c.max_staleness = 2;
  NodeCore core = started(c, 5);
  // Callers' payloads are not used; a banned peer and one past our step are left out. A peer
  // advertising an old step stays in (gossip lags; the all-reduce's gathering bounds the wait).
  const std::vector<InboxItem> inbox{{3, 5}};
  std::vector<LivePeer> live{{1, 5}, {2, 4}, {3, 3}, {4, 2}, {6, 6}};
  for (int i = 0; i < 5; ++i) core.on_peer_misbehaved(2, "bad", kSuspectStrike);  // the fifth strike bans 2
  REQUIRE(core.banned(2));
  Step s = core.on_phase_done(100, 60, inbox, live);
  REQUIRE(s.next.kind == Next::Kind::kAllReduce);
  CHECK(s.next.until == Approx(130));
  CHECK(s.next.members == std::vector<PeerRef>{1, 3, 4});  // not 2 (banned) nor 6 (past step 5)
  CHECK(core.counters().calls == 0);
  CHECK(core.counters().allreduces == 1);

  // Success: the step uses the mean (not solo), the report names the others of the ring.
  const std::vector<PeerRef> used{1, 3};
  s = core.on_allreduce_done(104, true, used, "", live);
  REQUIRE(s.next.kind == Next::Kind::kApplyOuter);
  CHECK_FALSE(s.next.solo);
  CHECK(s.next.slots.empty());
  s = core.on_outer_applied(105, live);
  const OuterReport* rep = outer_report(s);
  REQUIRE(rep != nullptr);
  CHECK(rep->allreduce);
  CHECK_FALSE(rep->called);
  CHECK(rep->group == used);
  CHECK(rep->staleness == std::vector<int64_t>{0, 0});
  CHECK(rep->partner_found);
  CHECK(rep->exchange_s == Approx(4));
  CHECK(rep->blocked_s == Approx(5));
  CHECK(rep->outer_step == 6);
  CHECK(core.counters().exchanges == 1);
  CHECK(core.counters().solo_steps == 0);
  CHECK(core.counters().calls == 0);
}

TEST_CASE("node core: DiLoCo takes a solo step when the all-reduce fails or nobody is live", "[node_core][diloco]") {
  NodeCore core = started(diloco_config());
  const auto live = peers(3);
  Step s = core.on_phase_done(10, 10, {}, live);
  REQUIRE(s.next.kind == Next::Kind::kAllReduce);
  CHECK(s.next.members.size() == 3);
  s = core.on_allreduce_done(20, false, {}, "budget spent", live);
  REQUIRE(s.next.kind == Next::Kind::kApplyOuter);
  CHECK(s.next.solo);
  s = core.on_outer_applied(20, live);
  const OuterReport* rep = outer_report(s);
  REQUIRE(rep != nullptr);
  CHECK(rep->group.empty());
  CHECK(rep->failures == std::vector<std::string>{"budget spent"});
  CHECK(core.counters().solo_steps == 1);
  CHECK(core.counters().allreduce_failures == 1);

  // A ring of one (everyone else missed the gather) is a solo step with the mean of one.
  s = core.on_phase_done(30, 20, {}, peers(3, 1));
  REQUIRE(s.next.kind == Next::Kind::kAllReduce);
  s = core.on_allreduce_done(36, true, {}, "", live);
  REQUIRE(s.next.kind == Next::Kind::kApplyOuter);
  s = core.on_outer_applied(36, live);
  CHECK(core.counters().solo_steps == 2);

  // Nobody live: no all-reduce at all, straight to the solo step.
  s = core.on_phase_done(40, 30, {}, {});
  REQUIRE(s.next.kind == Next::Kind::kApplyOuter);
  CHECK(s.next.solo);
  s = core.on_outer_applied(40, {});
  CHECK(core.counters().solo_steps == 3);
  CHECK(core.counters().allreduces == 2);
  CHECK(core.counters().calls == 0);
}

TEST_CASE("node core: DiLoCo keeps the checkpoint, resync and stop rules and publishes no payload", "[node_core][diloco]") {
  CoreConfig c = diloco_config();
  c.checkpoint_every = 2;
  c.resync_behind = 8;
  c.stop_after_outer = 3;
  c.want_peers = 1;
  NodeCore core(c);
  // A resumed node (outer 1) publishes its state but no exchange payload.
  Step s = core.on_start(0, 10, 1, peers(1, 1));
  REQUIRE(s.next.kind == Next::Kind::kTrainPhase);
  REQUIRE(count(s, Effect::Kind::kPublish) == 1);
  for (const auto& e : s.effects)
    if (e.kind == Effect::Kind::kPublish) CHECK_FALSE(e.with_payload);
  std::vector<int64_t> checkpoints;
  for (int r = 1; r <= 3; ++r) {
    const auto live = peers(1, static_cast<uint64_t>(core.outer_step()));
    s = core.on_phase_done(r, (r + 1) * 10, {}, live);
    REQUIRE(s.next.kind == Next::Kind::kAllReduce);
    const std::vector<PeerRef> used{1};
    s = core.on_allreduce_done(r, true, used, "", live);
    REQUIRE(s.next.kind == Next::Kind::kApplyOuter);
    // The swarm is far ahead after the last step: resync, as under NoLoCo.
    s = core.on_outer_applied(r, peers(1, r == 3 ? 20 : static_cast<uint64_t>(core.outer_step() + 1)));
    if (count(s, Effect::Kind::kWriteCheckpoint)) checkpoints.push_back(core.outer_step());
  }
  CHECK(checkpoints == std::vector<int64_t>{2, 4});
  REQUIRE(s.next.kind == Next::Kind::kStateSync);
  s = core.on_state_fetched(4, true, "", 20, 200);
  REQUIRE(s.next.kind == Next::Kind::kAdoptState);
  s = core.on_state_adopted(4, true, "");
  CHECK(core.outer_step() == 20);
  CHECK(s.next.kind == Next::Kind::kFinish);  // three outer steps here: stop-after-outer
  CHECK(s.next.interrupted);
}

TEST_CASE("node core: an unchanged answer is not mixed, not refused, not struck, and the core calls another partner",
          "[node_core]") {
  NodeCore core = started(config());
  for (int r = 0; r < 7; ++r) {
    const auto live = peers(3, static_cast<uint64_t>(core.outer_step()));  // the swarm keeps pace
    Step s = core.on_phase_done(r, (r + 1) * 10, {}, live);
    REQUIRE(s.next.kind == Next::Kind::kCall);
    const PeerRef first = s.next.peer;
    ExchangeReply ok;
    ok.answered = true;
    ok.outer_step = static_cast<uint64_t>(core.outer_step());
    s = core.on_exchange_reply(r, ok, live);
    REQUIRE(s.next.kind == Next::Kind::kVerify);
    CHECK(s.next.slot == kPartnerSlot);
    s = core.on_verified(r, false, "unchanged payload", 0.0);
    CHECK(notices(s, Notice::Kind::kRefused) == 0);
    CHECK(notices(s, Notice::Kind::kUnchanged) == 1);
    CHECK(count(s, Effect::Kind::kBan) == 0);
    CHECK(count(s, Effect::Kind::kRecordOutcome) == 0);  // not scored down
    REQUIRE(s.next.kind == Next::Kind::kCall);            // another try, as after a stale answer
    CHECK(s.next.peer != first);
    ExchangeReply fail;
    fail.failure = "x";
    while (s.next.kind == Next::Kind::kCall) s = core.on_exchange_reply(r, fail, live);
    s = core.on_outer_applied(r, live);
  }
  for (PeerRef p = 1; p <= 3; ++p) CHECK_FALSE(core.banned(p));
  for (PeerRef p = 1; p <= 3; ++p) CHECK(core.score(p) == 0);
  CHECK(core.counters().refused == 0);
  // A caller's replay (struck by the driver's choice) still counts towards a ban.
  NodeCore other = started(config());
  int bans = 0;
  for (int r = 0; r < 5; ++r) {
    Step s = other.on_phase_done(r, (r + 1) * 10, std::vector<InboxItem>{{42, static_cast<uint64_t>(r)}}, peers(3));
    REQUIRE(s.next.kind == Next::Kind::kVerify);
    s = other.on_verified(r, false, "replayed payload", kSuspectStrike);
    bans += count(s, Effect::Kind::kBan);
    ExchangeReply fail;
    fail.failure = "x";
    while (s.next.kind == Next::Kind::kCall) s = other.on_exchange_reply(r, fail, peers(3));
    s = other.on_outer_applied(r, peers(3));
  }
  CHECK(bans == 1);
}
