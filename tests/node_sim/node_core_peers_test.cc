// The node core's rules about which peers count and whom it calls (trainer/node/node_core.h):
// the join wait, claims without a payload, partners that are still joining, verified peers
// before hearsay.
#include <catch2/catch.hpp>

#include "node_core_test_util.h"

using namespace noloco::node;
using namespace noloco::node::test_core;

TEST_CASE("node core: join wait ends with enough peers or at the deadline", "[node_core]") {
  CoreConfig c = config();
  c.want_peers = 2;
  c.join_wait_s = 10;
  NodeCore core(c);
  Step s = core.on_start(0, 0, 0, peers(1));
  REQUIRE(s.next.kind == Next::Kind::kWaitPeers);
  CHECK(s.next.until == Approx(10));
  s = core.on_live_view(5, peers(1));
  CHECK(s.next.kind == Next::Kind::kWaitPeers);
  s = core.on_live_view(6, peers(2));
  CHECK(s.next.kind == Next::Kind::kTrainPhase);  // both at outer 0: nothing to sync

  NodeCore alone(c);
  s = alone.on_start(0, 0, 0, {});
  s = alone.on_live_view(10, {});
  CHECK(s.next.kind == Next::Kind::kTrainPhase);
  CHECK(count(s, Effect::Kind::kPublish) == 1);
}

TEST_CASE("node core: hearsay and Sybil identities do not end the join wait", "[node_core][eclipse]") {
  // A bootstrap node waiting for its 7 peers met one flooder whose fake records filled its view,
  // or two Sybil hosts of 16 identities each: the wait ended and it trained alone
  // (docs/attacks.md). Only peers that spoke for themselves count, one per address bucket.
  CoreConfig c = config();
  c.want_peers = 3;
  c.join_wait_s = 10;
  NodeCore core(c);
  std::vector<LivePeer> live = peers(1);  // the flooder itself, verified
  for (PeerRef fake = 100; fake < 228; ++fake) live.push_back({fake, 0, false});
  Step s = core.on_start(0, 0, 0, live);
  CHECK(s.next.kind == Next::Kind::kWaitPeers);
  s = core.on_live_view(5, live);
  CHECK(s.next.kind == Next::Kind::kWaitPeers);
  live.push_back({2, 0, true});
  live.push_back({3, 0, true});
  s = core.on_live_view(6, live);
  CHECK(s.next.kind == Next::Kind::kTrainPhase);  // three verified peers

  // Sixteen identities from one address bucket (a Sybil's) are one vantage point; peers whose
  // bucket is not known (origin 0: exempt loopback) count one each.
  NodeCore sybil(c);
  std::vector<LivePeer> sybils;
  for (PeerRef id = 300; id < 316; ++id) sybils.push_back({id, 0, true, 7});
  s = sybil.on_start(0, 0, 0, sybils);
  CHECK(s.next.kind == Next::Kind::kWaitPeers);
  sybils.push_back({2, 0, true, 8});
  s = sybil.on_live_view(5, sybils);
  CHECK(s.next.kind == Next::Kind::kWaitPeers);  // two buckets
  sybils.push_back({3, 0, true, 0});
  s = sybil.on_live_view(6, sybils);
  CHECK(s.next.kind == Next::Kind::kTrainPhase);  // and one unknown

  NodeCore flooded(c);
  s = flooded.on_start(0, 0, 0, std::vector<LivePeer>(live.begin(), live.begin() + 129));
  s = flooded.on_live_view(10, std::vector<LivePeer>(live.begin(), live.begin() + 129));
  CHECK(s.next.kind == Next::Kind::kTrainPhase);  // the deadline still ends it
}

TEST_CASE("node core: a partner with no payload at two claimed steps of one process is struck as proof, a fresh "
          "or restarted one never",
          "[node_core][claims]") {
  NodeCore core = started(config());
  auto call_refused = [&](double t, int64_t inner, uint64_t claim, uint64_t epoch, bool no_payload_yet) {
    const std::vector<LivePeer> live{{5, claim}};
    Step s = core.on_phase_done(t, inner, {}, live);
    REQUIRE(s.next.kind == Next::Kind::kCall);
    REQUIRE(s.next.peer == 5);
    ExchangeReply r;
    r.failure = no_payload_yet ? "5: refused: no snapshot yet" : "5: refused: no payload now";
    r.no_payload_yet = no_payload_yet;
    r.claimed_epoch = epoch;
    r.claimed_outer = claim;
    Step out = core.on_exchange_reply(t, r, live);
    // "No snapshot yet" unproven: it is joining, called again within the budget; every step's
    // effects are kept for the checks below.
    double now = t;
    for (int round = 0; round < 1000 && (out.next.kind == Next::Kind::kWaitPeers || out.next.kind == Next::Kind::kCall);
         ++round) {
      if (out.next.kind == Next::Kind::kWaitPeers) now = out.next.until;
      const Step more = out.next.kind == Next::Kind::kWaitPeers ? core.on_live_view(now, live)
                                                                 : core.on_exchange_reply(now, r, live);
      out.effects.insert(out.effects.end(), more.effects.begin(), more.effects.end());
      out.next = more.next;
    }
    REQUIRE(out.next.kind == Next::Kind::kApplyOuter);  // the only peer: a solo step
    core.on_outer_applied(t, live);
    return out;
  };
  // Honest: a fresh process refuses at its one claim; a restart is a new epoch; a refusal between
  // two payloads ("no payload now") is never weighed, whatever the claims.
  Step s = call_refused(1, 10, 0, 100, true);
  s = call_refused(2, 20, 0, 100, true);
  s = call_refused(3, 30, 4, 100, false);
  s = call_refused(4, 40, 6, 100, false);
  s = call_refused(5, 50, 6, 200, true);
  CHECK(notices(s, Notice::Kind::kRefused) == 0);
  CHECK(core.score(5) == 0);
  // The Sybil: it claims the swarm's step and never has a payload.
  s = call_refused(6, 60, 7, 200, true);
  CHECK(notices(s, Notice::Kind::kRefused) == 1);
  CHECK(core.score(5) == Approx(kProofStrike));
  CHECK_FALSE(core.banned(5));
  s = call_refused(7, 70, 8, 200, true);
  CHECK(count(s, Effect::Kind::kBan) == 1);
  CHECK(core.banned(5));
}

TEST_CASE("node core: partners that are all joining are called again within the budget, not raced past",
          "[node_core][claims]") {
  CoreConfig c = config();
  c.exchange_budget_s = 10;
  NodeCore core = started(c);
  const std::vector<LivePeer> live = peers(2);
  Step s = core.on_phase_done(1, 10, {}, live);
  ExchangeReply joining;
  joining.failure = "refused: no snapshot yet";
  joining.no_payload_yet = true;
  joining.claimed_epoch = 100;
  // Both say "no snapshot yet" (tries 3, but two peers): wait, not a solo step.
  int calls = 0;
  while (s.next.kind == Next::Kind::kCall) {
    ++calls;
    s = core.on_exchange_reply(1, joining, live);
  }
  CHECK(calls == 2);
  REQUIRE(s.next.kind == Next::Kind::kWaitPeers);
  CHECK(s.next.until == Approx(1 + NodeCore::kJoiningRetryS));
  // Polled before then (the driver polls every 100 ms): still waiting.
  s = core.on_live_view(1.1, live);
  REQUIRE(s.next.kind == Next::Kind::kWaitPeers);
  CHECK(s.next.until == Approx(1 + NodeCore::kJoiningRetryS));
  // A second later one of them has its first payload: it is the partner.
  s = core.on_live_view(2, live);
  REQUIRE(s.next.kind == Next::Kind::kCall);
  ExchangeReply answer;
  answer.answered = true;
  answer.outer_step = 0;
  s = core.on_exchange_reply(2, answer, live);
  CHECK(s.next.kind == Next::Kind::kVerify);

  // Any other failure gives up as before: a solo step at once.
  NodeCore other = started(c);
  s = other.on_phase_done(1, 10, {}, peers(1));
  REQUIRE(s.next.kind == Next::Kind::kCall);
  ExchangeReply down;
  down.failure = "connection refused";
  s = other.on_exchange_reply(1, down, peers(1));
  CHECK(s.next.kind == Next::Kind::kApplyOuter);

  // And the wait ends with the budget: a solo step at the deadline, however many were joining.
  NodeCore patient = started(c);
  s = patient.on_phase_done(1, 10, {}, peers(1));
  double t = 1;
  int rounds = 0;
  while (s.next.kind != Next::Kind::kApplyOuter && rounds < 100) {
    ++rounds;
    if (s.next.kind == Next::Kind::kCall) s = patient.on_exchange_reply(t, joining, peers(1));
    else if (s.next.kind == Next::Kind::kWaitPeers) s = patient.on_live_view(t = s.next.until, peers(1));
    else FAIL("unexpected next step");
  }
  CHECK(s.next.kind == Next::Kind::kApplyOuter);
  CHECK(t == Approx(11));  // 1 + the 10 s budget
}

namespace {

// A call refused with "no snapshot yet" by a peer whose record (epoch 100, `claim`) we called on.
ExchangeReply no_snapshot_yet(PeerRef peer, uint64_t claim) {
  ExchangeReply r;
  r.failure = std::to_string(peer) + ": refused: no snapshot yet";
  r.no_payload_yet = true;
  r.claimed_epoch = 100;
  r.claimed_outer = claim;
  return r;
}

// A call answered with a payload of `outer`, which the core then verifies as good.
Step answer_and_mix(NodeCore& core, double t, uint64_t outer, const std::vector<LivePeer>& live) {
  ExchangeReply r;
  r.answered = true;
  r.outer_step = outer;
  Step s = core.on_exchange_reply(t, r, live);
  REQUIRE(s.next.kind == Next::Kind::kVerify);
  return core.on_verified(t, true, "");
}

}  // namespace

TEST_CASE("node core: a peer that said no snapshot yet is called first once its claim moves",
          "[node_core][claims]") {
  // Seven honest peers and one that claims the swarm's step without a payload (a Sybil identity).
  // Called once by chance it would be called again only by chance; the recheck calls it first as
  // soon as its claim moves, so two rechecks prove it twice and ban it.
  NodeCore core = started(config());
  auto live_at = [](uint64_t claim) {
    std::vector<LivePeer> v = peers(7, claim);
    v.push_back({9, claim});
    return v;
  };
  // Outer step 0: only peer 9 in the view; it refuses with "no snapshot yet" at claim 0.
  std::vector<LivePeer> live{{9, 0}};
  Step s = core.on_phase_done(1, 10, {}, live);
  REQUIRE(s.next.kind == Next::Kind::kCall);
  REQUIRE(s.next.peer == 9);
  s = core.on_exchange_reply(1, no_snapshot_yet(9, 0), live);
  CHECK(core.score(9) == 0);  // once is what a fresh node says
  core.on_outer_applied(1, live);
  // Outer step 1: its claim has not moved, so no recheck: the call goes to an honest peer at random.
  live = live_at(0);
  s = core.on_phase_done(2, 20, {}, live);
  REQUIRE(s.next.kind == Next::Kind::kCall);
  if (s.next.peer == 9) s = core.on_exchange_reply(2, no_snapshot_yet(9, 0), live);
  REQUIRE(s.next.kind == Next::Kind::kCall);
  CHECK(s.next.peer != 9);
  answer_and_mix(core, 2, 1, live);
  core.on_outer_applied(2, live);
  // Outer steps 2 and 3: its claim moved each time, so it is called first, proven, then banned.
  for (uint64_t claim : {2u, 3u}) {
    live = live_at(claim);
    s = core.on_phase_done(3 + claim, 10 * (static_cast<int64_t>(claim) + 1), {}, live);
    REQUIRE(s.next.kind == Next::Kind::kCall);
    CHECK(s.next.peer == 9);
    s = core.on_exchange_reply(3 + claim, no_snapshot_yet(9, claim), live);
    CHECK(notices(s, Notice::Kind::kRefused) == 1);
    REQUIRE(s.next.kind == Next::Kind::kCall);  // the step goes on with an honest partner
    CHECK(s.next.peer != 9);
    answer_and_mix(core, 3 + claim, claim, live);
    core.on_outer_applied(3 + claim, live);
  }
  CHECK(core.banned(9));
  // Banned: never called again, first or otherwise.
  for (int k = 0; k < 20; ++k) {
    live = live_at(4 + k);
    s = core.on_phase_done(10 + k, 50 + 10 * k, {}, live);
    REQUIRE(s.next.kind == Next::Kind::kCall);
    CHECK(s.next.peer != 9);
    answer_and_mix(core, 10 + k, 4 + k, live);
    core.on_outer_applied(10 + k, live);
  }
}

TEST_CASE("node core: a fresh peer rechecked after its claim moved serves a payload and is not struck",
          "[node_core][claims]") {
  NodeCore core = started(config());
  std::vector<LivePeer> live{{4, 0}};
  Step s = core.on_phase_done(1, 10, {}, live);
  REQUIRE(s.next.peer == 4);
  s = core.on_exchange_reply(1, no_snapshot_yet(4, 0), live);
  core.on_outer_applied(1, live);
  // It published its first payload and moved its claim: called first, it answers with a payload.
  live = peers(7, 1);
  live.push_back({4, 1});
  s = core.on_phase_done(2, 20, {}, live);
  REQUIRE(s.next.kind == Next::Kind::kCall);
  CHECK(s.next.peer == 4);
  answer_and_mix(core, 2, 1, live);
  core.on_outer_applied(2, live);
  CHECK(core.score(4) == 0);
  // Served: its next claim moves draw no recheck (peer 4 is first only by chance, 1 in 8 a step).
  int first = 0;
  for (int k = 0; k < 40; ++k) {
    live = peers(7, 2 + k);
    live.push_back({4, static_cast<uint64_t>(2 + k)});
    s = core.on_phase_done(3 + k, 30 + 10 * k, {}, live);
    REQUIRE(s.next.kind == Next::Kind::kCall);
    first += s.next.peer == 4;
    answer_and_mix(core, 3 + k, static_cast<uint64_t>(2 + k), live);
    core.on_outer_applied(3 + k, live);
  }
  CHECK(first < 20);
  CHECK(core.score(4) == 0);
}

TEST_CASE("node core: partners come from verified peers while there are any, hearsay only after", "[node_core][eclipse]") {
  // An eclipse flood puts up to 128 validly signed records of identities nobody runs into the view
  // as hearsay; the three real peers have gossiped with us (verified).
  std::vector<LivePeer> live;
  for (PeerRef p = 1; p <= 3; ++p) live.push_back({p, 0, true});
  for (PeerRef p = 100; p < 228; ++p) live.push_back({p, 0, false});
  CoreRng rng(5);
  std::map<PeerRef, int> hits;
  for (int i = 0; i < 3000; ++i) ++hits[choose_partner(live, {}, 0, 4, rng)->peer];
  REQUIRE(hits.size() == 3);  // only the verified ones, each about a third
  for (PeerRef p = 1; p <= 3; ++p) CHECK(hits[p] > 800);
  // With every verified peer tried this step, hearsay is next rather than a solo step.
  const std::vector<PeerRef> tried{1, 2, 3};
  auto next = choose_partner(live, tried, 0, 4, rng);
  REQUIRE(next);
  CHECK(next->peer >= 100);
  CHECK_FALSE(next->verified);
  // A verified peer past the staleness bound is not a candidate; hearsay within it is.
  std::vector<LivePeer> laggy{{1, 0, true}, {100, 9, false}};
  CHECK(choose_partner(laggy, {}, 9, 4, rng)->peer == 100);

  CoreConfig c = config();
  c.exchange_tries = 4;
  NodeCore core = started(c);
  Step s = core.on_phase_done(1, 10, {}, live);
  std::vector<PeerRef> called;
  ExchangeReply fail;
  fail.failure = "refused";
  while (s.next.kind == Next::Kind::kCall) {
    called.push_back(s.next.peer);
    s = core.on_exchange_reply(1, fail, live);
  }
  REQUIRE(called.size() == 4);
  for (int i = 0; i < 3; ++i) CHECK(called[i] <= 3);
  CHECK(called[3] >= 100);
}

TEST_CASE("node core: the state sync source is the most advanced verified peer, hearsay only when none is",
          "[node_core][eclipse]") {
  // A flood's fake records claim the swarm's newest step; the real peers are verified.
  std::vector<LivePeer> live{{1, 4, true}, {2, 6, true}, {100, 9, false}, {101, 9, false}};
  REQUIRE(most_advanced(live));
  CHECK(most_advanced(live)->peer == 2);
  std::vector<LivePeer> hearsay_only{{100, 3, false}, {101, 9, false}};
  CHECK(most_advanced(hearsay_only)->peer == 101);
  CHECK_FALSE(most_advanced(std::vector<LivePeer>{}).has_value());
}
