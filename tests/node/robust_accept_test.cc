// Robust acceptance of a partner's payload (node_payload.h: compare_updates, judge_update;
// replay_guard.h), on synthetic vectors: honest-like correlated updates pass; sign-flipped,
// scaled and replayed payloads are refused with their own reason; noise is bounded in norm.
#include "../trainer/torch_catch.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "trainer/node/node_payload.h"
#include "trainer/node/replay_guard.h"

using namespace noloco;
using namespace noloco::node;

namespace {

constexpr int64_t kN = 100000;

// Two honest-like updates: a shared descent direction plus each replica's own data noise, both
// shaped by one per-coordinate scale (parameters that move a lot move a lot for everyone).
// cos(own, peer) ≈ 1 / (1 + noise²) = 0.33 for noise² = 2.
struct Pair {
  torch::Tensor own, peer, phi;
};

Pair honest_pair(uint64_t seed) {
  torch::manual_seed(seed);
  const torch::Tensor scale = torch::randn({kN}).exp();
  const torch::Tensor common = torch::randn({kN});
  const double noise = std::sqrt(2.0);
  Pair p;
  p.own = (common + noise * torch::randn({kN})) * scale * 1e-3;
  p.peer = (common + noise * torch::randn({kN})) * scale * 1e-3;
  p.phi = torch::randn({kN}) * 0.01;  // updates well above the floor (0.01 · ‖φ‖)
  return p;
}

Status judged(const Pair& p, const torch::Tensor& peer, WireForm form = WireForm::kDeltaPhi) {
  const VerifyLimits lim;
  return judge_update(compare_updates(p.own, peer, torch::Tensor(), p.phi.norm().item<double>(), lim.delta_floor),
                      lim, form);
}

bool says(const Status& st, const std::string& what) { return st.message().find(what) != std::string::npos; }

}  // namespace

TEST_CASE("robust acceptance: honest-like correlated updates pass, in both wire forms", "[node][payload][robust]") {
  for (uint64_t seed = 1; seed <= 5; ++seed) {
    const Pair p = honest_pair(seed);
    const VerifyLimits lim;
    const PayloadStats s = compare_updates(p.own, p.peer, torch::Tensor(), p.phi.norm().item<double>(), lim.delta_floor);
    CHECK(s.cosine == Approx(1.0 / 3.0).margin(0.05));
    CHECK(s.norm_ratio == Approx(1.0).margin(0.1));
    CHECK(judged(p, p.peer).ok());
    CHECK(judged(p, p.peer, WireForm::kTheta).ok());
    // A partner whose update is three times ours (another point of the schedule) passes too.
    CHECK(judged(p, p.peer * 3.0).ok());
  }
}

TEST_CASE("robust acceptance: sign-flipped and scaled updates are refused with their reason, noise is held by the norm bound",
          "[node][payload][robust]") {
  const Pair p = honest_pair(11);
  SECTION("sign-flipped") {
    const Status st = judged(p, -p.peer);
    REQUIRE_FALSE(st.ok());
    CHECK(says(st, "points away from ours"));
  }
  SECTION("scaled x100") {
    const Status st = judged(p, p.peer * 100.0);
    REQUIRE_FALSE(st.ok());
    CHECK(says(st, "update norm is"));
    CHECK_FALSE(judged(p, p.peer * 100.0, WireForm::kTheta).ok());
  }
  SECTION("random noise: bounded in norm, not recognisable by direction") {
    torch::manual_seed(99);
    const torch::Tensor noise = torch::randn({kN});
    const torch::Tensor forged = noise * (p.peer.norm() / noise.norm());
    const VerifyLimits lim;
    const PayloadStats s = compare_updates(p.own, forged, torch::Tensor(), p.phi.norm().item<double>(), lim.delta_floor);
    // Its cosine is within ±4/sqrt(n) of 0, where honest slow partners were measured too
    // (docs/protocols/exchange.md): one payload cannot tell them apart, the norm bound holds it.
    CHECK(std::abs(s.cosine) < 4.0 / std::sqrt(static_cast<double>(kN)));
    const Status st = judged(p, forged * 100.0);
    REQUIRE_FALSE(st.ok());
    CHECK(says(st, "update norm is"));
  }
}

TEST_CASE("robust acceptance: the limits per statistic and per wire form", "[node][payload][robust]") {
  const VerifyLimits lim;
  PayloadStats s{0.2, 1.0, 0.0};
  CHECK(judge_update(s, lim, WireForm::kDeltaPhi).ok());
  s.cosine = -0.7;  // as measured for honest theta-form partners behind us
  CHECK(judge_update(s, lim, WireForm::kTheta).ok());
  CHECK(says(judge_update(s, lim, WireForm::kDeltaPhi), "points away"));
  s = PayloadStats{0.2, lim.max_norm_ratio_delta_phi * 1.01, 0.0};
  CHECK(says(judge_update(s, lim, WireForm::kDeltaPhi), "update norm"));
  CHECK(judge_update(s, lim, WireForm::kTheta).ok());  // θ − φ_own carries the spread too: looser
  s = PayloadStats{0.2, 1.0, lim.max_phi_spread * 1.01};  // slow weights replaced
  CHECK(says(judge_update(s, lim, WireForm::kDeltaPhi), "slow weights are"));
  s = PayloadStats{std::numeric_limits<double>::quiet_NaN(), 1.0, 0.0};
  CHECK_FALSE(judge_update(s, lim, WireForm::kDeltaPhi).ok());  // a NaN statistic never passes
  // No update of ours (nothing trained yet): no reference direction, the norm bound alone
  // applies (scaled to the floor).
  const torch::Tensor phi = torch::ones({kN});
  const torch::Tensor tiny = torch::zeros({kN});
  const torch::Tensor peer = torch::randn({kN}) * 1e-3;
  const PayloadStats f = compare_updates(tiny, peer, torch::Tensor(), phi.norm().item<double>(), lim.delta_floor);
  CHECK(f.cosine == 1.0);
  CHECK(judge_update(f, lim, WireForm::kDeltaPhi).ok());
  // An update of ours below the floor still gives the direction: its flip is refused.
  const torch::Tensor small = peer * 1e-3;
  const PayloadStats g = compare_updates(small, -peer, torch::Tensor(), phi.norm().item<double>(), lim.delta_floor);
  CHECK(g.cosine == Approx(-1.0));
  CHECK(says(judge_update(g, lim, WireForm::kDeltaPhi), "points away"));
}

TEST_CASE("robust acceptance: a stale payload is held to its update's norm alone", "[node][payload][robust]") {
  // A laggard's payload: its direction and slow weights are those of a replica far behind ours.
  const VerifyLimits stale = stale_payload_limits(), current;
  PayloadStats s{-0.7, 1.0, current.max_phi_spread * 3};
  CHECK_FALSE(judge_update(s, current, WireForm::kDeltaPhi).ok());
  CHECK(judge_update(s, stale, WireForm::kDeltaPhi).ok());
  s.norm_ratio = current.max_norm_ratio_delta_phi * 1.01;  // ×100-style scaling is still refused
  CHECK(says(judge_update(s, stale, WireForm::kDeltaPhi), "update norm"));
  CHECK(refusal_weight(s, stale, WireForm::kDeltaPhi) == Approx(kSuspectStrike).margin(0.05));
  s.norm_ratio = current.max_norm_ratio_delta_phi * 100;
  CHECK(refusal_weight(s, stale, WireForm::kDeltaPhi) == kProofStrike);
  // θ − φ_own carries the laggard's spread: nothing bounds a stale theta payload but finiteness.
  s = PayloadStats{-0.9, current.max_norm_ratio_theta * 3, 0.0};
  CHECK_FALSE(judge_update(s, current, WireForm::kTheta).ok());
  CHECK(judge_update(s, stale, WireForm::kTheta).ok());
  s.norm_ratio = std::numeric_limits<double>::quiet_NaN();
  CHECK_FALSE(judge_update(s, stale, WireForm::kTheta).ok());
}

TEST_CASE("robust acceptance: replays of what a peer already gave us are recognised", "[node][payload][robust]") {
  ReplayGuard g;
  const std::string a(64, 'a'), b(64, 'b'), c(64, 'c');
  CHECK(g.check("P", 5, a) == ReplayGuard::Verdict::kNew);
  g.accepted("P", 5, a, /*as_answer=*/false);
  CHECK(g.check("P", 5, a) == ReplayGuard::Verdict::kRepeat);
  CHECK(g.check("P", 4, b) == ReplayGuard::Verdict::kOlder);
  CHECK(g.check("P", 5, b) == ReplayGuard::Verdict::kNew);  // same step, other content: not a replay
  CHECK(g.check("P", 6, b) == ReplayGuard::Verdict::kNew);
  CHECK(g.check("P", 6, a) == ReplayGuard::Verdict::kReused);  // step 5's content as step 6
  CHECK(g.check("Q", 5, a) == ReplayGuard::Verdict::kNew);     // per peer
  g.accepted("P", 7, b, /*as_answer=*/false);
  CHECK(g.check("P", 5, b) == ReplayGuard::Verdict::kReused);  // step 7's content as step 5
  CHECK(g.check("P", 6, c) == ReplayGuard::Verdict::kOlder);
  CHECK(g.check("P", 7, b) == ReplayGuard::Verdict::kRepeat);
  CHECK(g.check("P", 9, a) == ReplayGuard::Verdict::kReused);  // any remembered step's content
  // Mixed as its answer to our call: the same payload pushed by it afterwards is an honest race
  // (we called it between its publish and its own call), told apart so it costs no strike.
  g.accepted("P", 8, c, /*as_answer=*/true);
  CHECK(g.check("P", 8, c) == ReplayGuard::Verdict::kRepeatOfAnswer);
  CHECK(g.check("P", 7, std::string(64, 'd')) == ReplayGuard::Verdict::kOlder);
  CHECK(g.check("P", 8, std::string(64, 'd')) == ReplayGuard::Verdict::kNew);
  // The history is bounded: the oldest content is forgotten after kHistory newer ones.
  for (uint64_t k = 0; k < ReplayGuard::kHistory; ++k) g.accepted("P", 10 + k, std::string(64, char('e' + k)), false);
  CHECK(g.check("P", 100, a) == ReplayGuard::Verdict::kNew);
  CHECK(g.check("P", 100, std::string(64, 'e' + 1)) == ReplayGuard::Verdict::kReused);
  // The content key is the tensors' digests from the header.
  PayloadHeader h;
  h.tensors = {{"delta", 10, Bytes(32, 1)}, {"phi", 10, Bytes(32, 2)}};
  PayloadHeader h2 = h;
  h2.tensors[1].sha256[0] = 3;
  CHECK(ReplayGuard::content_of(h) != ReplayGuard::content_of(h2));
  CHECK(ReplayGuard::content_of(h).size() == 64);
}

TEST_CASE("replay rulings: an honest lagging or restarted peer is never struck, a replayer is", "[node][payload][robust]") {
  using V = ReplayGuard::Verdict;
  // A lagging partner that has not stepped yet answers our call with the payload we mixed
  // already (as its push or as its earlier answer): nothing new, not a refusal, no strike.
  for (V v : {V::kRepeat, V::kRepeatOfAnswer}) {
    const ReplayRuling r = rule_on_replay(v, /*as_answer=*/true, 12);
    CHECK(r.weight == 0);
    CHECK(r.why.find("unchanged payload") == 0);
  }
  // A caller pushing what we took as its answer (an honest race), or a restarted peer's older step.
  CHECK(rule_on_replay(V::kRepeatOfAnswer, false, 12).weight == 0);
  CHECK(rule_on_replay(V::kOlder, false, 3).weight == 0);
  CHECK(rule_on_replay(V::kOlder, true, 3).weight == 0);
  // A caller pushing again what it pushed already: suspect.
  const ReplayRuling again = rule_on_replay(V::kRepeat, false, 12);
  CHECK(again.weight == kSuspectStrike);
  CHECK(again.why.find("replayed payload") == 0);
  // Content we mixed under one step coming back under another: proof, either way it came.
  for (bool answer : {false, true}) {
    const ReplayRuling r = rule_on_replay(V::kReused, answer, 13);
    CHECK(r.weight == kProofStrike);
    CHECK(r.why.find("another outer step") != std::string::npos);
  }
  CHECK(rule_on_replay(V::kNew, false, 1).weight == 0);
}

TEST_CASE("replay rulings on stale payloads: a lagger's old payload is dropped unstruck, a reused one is proof",
          "[node][payload][robust]") {
  ReplayGuard g;
  g.accepted("p", 8, "first", false);  // mixed at its outer step 8
  // Within the staleness bound the usual checks rule (nothing here).
  CHECK_FALSE(rule_on_stale(g, "p", 9, "first", 4, 4, false));
  // Too old to mix: an honest lagger's new payload, or the one we mixed, at its own step: no strike.
  CHECK_FALSE(rule_on_stale(g, "p", 9, "second", 10, 4, false));
  CHECK_FALSE(rule_on_stale(g, "p", 8, "first", 11, 4, true));
  // The content mixed at step 8 sent again as step 9, 10 ...: proof, as a push or as an answer.
  for (bool answer : {false, true}) {
    const auto r = rule_on_stale(g, "p", 9 + answer, "first", 10, 4, answer);
    REQUIRE(r);
    CHECK(r->weight == kProofStrike);
    CHECK(r->why.find("another outer step") != std::string::npos);
  }
  // Another peer's content is not this one's.
  CHECK_FALSE(rule_on_stale(g, "q", 9, "first", 10, 4, false));
}

TEST_CASE("strike book: weights add up to the ban, which comes once", "[node][robust]") {
  StrikeBook book(5);
  CHECK_FALSE(book.strike(1, kProofStrike));
  CHECK(book.strike(1, kProofStrike));  // two proofs ban
  CHECK(book.banned(1));
  CHECK_FALSE(book.strike(1, kProofStrike));  // once
  for (int i = 0; i < 4; ++i) CHECK_FALSE(book.strike(2, kSuspectStrike));
  CHECK(book.score(2) == 4 * kSuspectStrike);
  CHECK(book.strike(2, kSuspectStrike));  // five suspect refusals ban, as before
  CHECK_FALSE(book.banned(3));
  CHECK(book.score(3) == 0);
}

TEST_CASE("strike book: payload suspects are forgiven after quiet stretches while proofs and other suspects last", "[node][robust]") {
  StrikeBook book(5);
  for (int i = 0; i < 4; ++i) CHECK_FALSE(book.strike(1, kSuspectStrike, /*fades=*/true));
  CHECK_FALSE(book.strike(2, kProofStrike, /*fades=*/true));  // a proof is never forgiven
  for (int i = 0; i < 4; ++i) CHECK_FALSE(book.strike(3, kSuspectStrike));  // not a payload verdict
  for (int i = 0; i < kForgiveAfter - 1; ++i) book.outer_step_passed();
  CHECK(book.score(1) == 4 * kSuspectStrike);  // not yet
  book.outer_step_passed();
  CHECK(book.score(1) == 3 * kSuspectStrike);  // one quiet stretch: one forgiven
  for (int i = 0; i < 2 * kForgiveAfter; ++i) book.outer_step_passed();
  CHECK(book.score(1) == 1 * kSuspectStrike);
  CHECK(book.score(2) == kProofStrike);
  CHECK(book.score(3) == 4 * kSuspectStrike);
  CHECK(book.strike(3, kSuspectStrike));  // the lasting ones still ban at the fifth
  // A new strike restarts the quiet stretch.
  for (int i = 0; i < kForgiveAfter - 1; ++i) book.outer_step_passed();
  CHECK_FALSE(book.strike(1, kSuspectStrike, true));
  for (int i = 0; i < kForgiveAfter - 1; ++i) book.outer_step_passed();
  CHECK(book.score(1) == 2 * kSuspectStrike);
  // Five payload suspects inside a quiet stretch ban, as without forgiveness.
  for (int i = 0; i < 4; ++i) {
    CHECK_FALSE(book.strike(4, kSuspectStrike, true));
    for (int k = 0; k < kForgiveAfter / 5; ++k) book.outer_step_passed();
  }
  CHECK(book.strike(4, kSuspectStrike, true));
  // A forgiven score never goes below what lasts.
  CHECK_FALSE(book.strike(5, kProofStrike));
  CHECK_FALSE(book.strike(5, 0.5, true));
  for (int i = 0; i < 3 * kForgiveAfter; ++i) book.outer_step_passed();
  CHECK(book.score(5) == kProofStrike);
  CHECK(book.strike(5, kProofStrike, true));
}

TEST_CASE("strike book: a rare payload suspect never adds up to a ban but a frequent one does", "[node][robust]") {
  // One suspect refusal every 60 outer steps (twice the worst honest rate measured, three in 390
  // steps in a faulted chaos run) for 5000 steps: each is forgiven before the next. One every 20
  // steps (hostile: a peer the bounds refuse every few payloads) bans.
  StrikeBook book(5);
  double peak = 0;
  for (int step = 0; step < 5000; ++step) {
    if (step % 60 == 0) CHECK_FALSE(book.strike(1, kSuspectStrike, true));
    if (step % 20 == 0 && !book.banned(2)) book.strike(2, kSuspectStrike, true);
    peak = std::max(peak, book.score(1));
    book.outer_step_passed();
  }
  CHECK(peak == kSuspectStrike);
  CHECK_FALSE(book.banned(1));
  CHECK(book.banned(2));
}

