// A peer's updates against its own slow weights' movement (trainer/node/trajectory_evidence.h):
// a sender whose φ moves along the Δ it sends is never struck, one that sends −Δ of its true
// update is, from its fourth comparable pair of payloads, and each of its comparable payloads is
// refused on its own from the first.
#include <catch2/catch.hpp>

#include <random>

#include "trainer/node/trajectory_evidence.h"

using namespace noloco::node;

namespace {

// A NoLoCo sender late in a run: its update, its partners' and their slow weights are as good as
// unrelated random directions (the hardest case: nothing but its own Δ ties its movement to what
// it sent). α, β, γ are the defaults (docs ALGORITHM.md).
struct Sender {
  explicit Sender(uint64_t seed, size_t d = 2000) : rng(seed), phi(d), mom(d), delta(d) {
    for (auto& x : phi) x = g(rng);
    draw();
  }
  void draw() {
    for (auto& x : delta) x = 0.01f * g(rng);
  }
  // The payload of this outer step (Δ sent as `sign` · Δ), then the outer step with a partner.
  UpdateSketch payload(uint64_t step, float sign) {
    UpdateSketch s{step, delta, phi};
    for (auto& x : s.delta) x *= sign;
    return s;
  }
  void outer_step() {
    for (size_t i = 0; i < phi.size(); ++i) {
      const float partner_delta = 0.01f * g(rng), partner_phi_gap = 0.01f * g(rng);
      mom[i] = 0.5f * mom[i] + 0.7f * (delta[i] + partner_delta) / 2 - 0.7f * partner_phi_gap / 2;
      phi[i] += mom[i];
    }
    draw();
  }
  std::mt19937_64 rng;
  std::normal_distribution<float> g{0.0f, 1.0f};
  std::vector<float> phi, mom, delta;
};

}  // namespace

TEST_CASE("trajectory evidence: an honest sender is never struck, a sign flipper is", "[evidence]") {
  TrajectoryEvidence ev;
  Sender honest(1), flipper(2);
  int honest_strikes = 0, flip_strikes = 0, first_flip_strike = -1, compared = 0, flip_refused = 0;
  for (uint64_t step = 0; step < 60; step += 2) {  // a payload every other outer step
    auto h = ev.observe("honest", honest.payload(step, 1.0f));
    auto f = ev.observe("flipper", flipper.payload(step, -1.0f));
    if (h.cosine) {
      ++compared;
      CHECK(h.gap == 2);
      CHECK(*h.cosine > 0.1);
      CHECK(*f.cosine < -0.1);
      // Each comparable flipped payload is refused on its own (not mixed); an honest one never is.
      CHECK(f.payload.weight == kSuspectStrike);
      CHECK(f.payload.why.find("moved against the update it sent") != std::string::npos);
      flip_refused += f.payload.weight > 0;
    } else {
      CHECK(f.payload.weight == 0);
    }
    CHECK(h.payload.weight == 0);
    honest_strikes += h.ruling.weight > 0;
    if (f.ruling.weight > 0) {
      ++flip_strikes;
      if (first_flip_strike < 0) first_flip_strike = compared;
      CHECK(f.ruling.weight == kProofStrike);
      CHECK(f.ruling.why.find("do not move along the updates it sends") != std::string::npos);
    }
    for (int k = 0; k < 2; ++k) honest.outer_step(), flipper.outer_step();
  }
  CHECK(compared == 29);
  CHECK(flip_refused == compared);
  CHECK(honest_strikes == 0);
  CHECK(first_flip_strike == TrajectoryEvidence::kWindow);  // the first full window
  CHECK(flip_strikes == compared - static_cast<int>(TrajectoryEvidence::kWindow) + 1);
}

TEST_CASE("trajectory evidence: what is not compared", "[evidence]") {
  TrajectoryEvidence ev;
  Sender s(3);
  CHECK_FALSE(ev.observe("p", s.payload(10, -1.0f)).cosine);  // nothing before it
  for (uint64_t k = 0; k <= TrajectoryEvidence::kMaxGap; ++k) s.outer_step();
  // Too many outer steps apart: its own Δ is a small part of the movement.
  CHECK_FALSE(ev.observe("p", s.payload(10 + TrajectoryEvidence::kMaxGap + 1, -1.0f)).cosine);
  // An older or the same outer step (a restart from a checkpoint, a payload seen twice).
  CHECK_FALSE(ev.observe("p", s.payload(12, -1.0f)).cosine);
  CHECK_FALSE(ev.observe("p", s.payload(12, -1.0f)).cosine);
  // Sketches of another length (another model) or without movement.
  UpdateSketch a{20, {1, 2, 3}, {1, 1, 1}}, b{21, {1, 2}, {1, 1}}, c{22, {1, 2, 3}, {1, 1, 1}};
  CHECK_FALSE(trajectory_cosine(a, b));
  CHECK_FALSE(trajectory_cosine(a, c));
  UpdateSketch d{23, {1, 0, 0}, {2, 1, 1}};
  REQUIRE(trajectory_cosine(a, d));
  CHECK(*trajectory_cosine(a, d) == Approx(1.0 / std::sqrt(14.0)));
}

TEST_CASE("trajectory evidence: a cleared peer stays cleared, and memory is bounded", "[evidence]") {
  TrajectoryEvidence ev;
  Sender turncoat(4);
  // Honest for its first full window, then flipping: cleared, so this rule says nothing more.
  // Its payloads are still refused one by one once they turn.
  int strikes = 0, refused_before = 0, refused_after = 0;
  for (uint64_t step = 0; step < 40; ++step) {
    const auto o = ev.observe("t", turncoat.payload(step, step < 8 ? 1.0f : -1.0f));
    strikes += o.ruling.weight > 0;
    (step < 8 ? refused_before : refused_after) += o.payload.weight > 0;
    turncoat.outer_step();
  }
  CHECK(strikes == 0);
  CHECK(refused_before == 0);
  CHECK(refused_after >= 30);
  // More peers than kMaxPeers: the least recently seen one's sketch is dropped.
  Sender many(5, 16);
  for (size_t i = 0; i <= TrajectoryEvidence::kMaxPeers; ++i) ev.observe("peer" + std::to_string(i), many.payload(1, 1.0f));
  many.outer_step();
  CHECK_FALSE(ev.observe("peer0", many.payload(2, 1.0f)).cosine);  // forgotten
  CHECK(ev.observe("peer" + std::to_string(TrajectoryEvidence::kMaxPeers), many.payload(2, 1.0f)).cosine);
}
