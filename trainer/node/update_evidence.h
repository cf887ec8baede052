// Evidence against a peer from the updates it sends, beyond one refusal's yes or no
// (docs/defences.md, "Evidence from updates"):
//  - a norm refusal weighs more the farther past its bound the statistic is: an honest update was
//    never measured past 2.7x ours (bound 10x), so one at 50x is far stronger evidence than one
//    at 11x;
//  - a peer whose updates are, payload after payload, as orthogonal to ours as random vectors
//    are (|cos| ~ 1/sqrt(d) in d dimensions) sends noise: honest updates share the gradient
//    signal, so their cosines with ours are orders of magnitude above 1/sqrt(d);
//  - a peer whose updates, payload after payload, point against both our own update and our slow
//    weights' last movement (after mixing, the swarm's recent direction) sends sign-flipped
//    updates: each reference alone is noisy, honest windows were never against both.
// Torch-free and IO-free.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <deque>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "trainer/node/strike_book.h"

namespace noloco::node {

// A norm-bound refusal at this many times its bound weighs a proof strike.
constexpr double kNormProofFactor = 5.0;

// kSuspectStrike just past `bound`, growing with log(ratio / bound) to kProofStrike at
// kNormProofFactor · bound and beyond (an infinite ratio too; a NaN weighs a suspect strike).
inline double norm_refusal_weight(double ratio, double bound) {
  if (!(ratio > bound) || !(bound > 0)) return kSuspectStrike;
  const double x = std::log(ratio / bound) / std::log(kNormProofFactor);
  return std::min(kProofStrike, kSuspectStrike + (kProofStrike - kSuspectStrike) * x);
}

struct EvidenceRuling {
  double weight = 0;  // 0: no evidence against the peer
  std::string why;
};

// Per peer, the cosines with our own update of its last kWindow payloads (every payload whose
// statistics were computed). For random directions, d · cos² has mean 1 (cos·sqrt(d) is about
// standard normal), so d · mean cos² over a window is χ²_k / k; honest partners were measured at
// 66 and above over any 3 payloads at the tiny preset (119k parameters), and the statistic grows
// with d for honest updates while it stays ~1 for noise.
//
// That holds only while honest updates share a signal. Late in a full-length run at the tiny preset
// (58 outer steps, the attack matrix of 2026-12-04) honest partners' windows fell to 1.5–7, as low
// as noise, and two honest nodes were banned by this rule. So it strikes only when the test has
// power: the median of the other peers' latest windows must be at least kReferenceFloor (a swarm
// whose updates correlate with ours now), over kMinReference peers at least.
//
// That was not enough over a long run. The chaos harness's clean run (390 outer steps, tiny, 8
// nodes, 2026-12-04) struck honest peers 45 times and banned 14 (node, peer) pairs while the other
// peers' median stood at 55–770: an honest partner's cosines there are about N(0.015, 0.05) per
// payload (measured); one in six is under |cos| ≈ 0.009, and windows of three under d·mean cos² < 10
// came 45 times in about 3000. Over kWindow = 8 payloads, were they independent, (1/6)^8 ≈ 6e-7;
// noise stays at χ²₈/8 ≈ 1. The price: a noise sender is struck from its 8th payload to us, not its 3rd.
//
// Windows of 8 still banned one honest pair in a run twice as long (780 outer steps: two windows at
// 8.4 and 6.7; consecutive payloads of one pair are not independent). So a peer is judged as long
// as it has never shown the shared signal: once one of its windows reaches kReferenceFloor it is
// cleared for good (in this process). Honest peers clear in their first window early in a run
// (median ~800 there) and almost always in their first window late (median ~100); a noise sender
// never does. What it gives up: a peer honest at first and noisy later is not struck (its noise
// is then mixed under the norm bound, late in a run where updates are mostly noise anyway).
class NoiseEvidence {
 public:
  static constexpr size_t kWindow = 8;
  static constexpr double kBound = 10.0;           // strike below this (noise: ~1; honest, short runs: >= 66)
  static constexpr double kReferenceFloor = 30.0;  // ... and only while the others' median is this high
  static constexpr size_t kMinReference = 2;       // other peers with a full window

  // Records one payload's cosine with our update over `numel` parameters; a proof strike when the
  // peer's last kWindow payloads are indistinguishable from random directions.
  EvidenceRuling observe(const std::string& peer, double cosine, uint64_t numel) {
    std::deque<double>& w = cosines_[peer];
    w.push_back(cosine);
    while (w.size() > kWindow) w.pop_front();
    if (w.size() < kWindow || numel == 0) return {};
    double sum2 = 0;
    for (double c : w) sum2 += c * c;
    const double stat = static_cast<double>(numel) * sum2 / static_cast<double>(w.size());
    if (std::isnan(stat)) return {};
    latest_[peer] = stat;
    if (stat >= kReferenceFloor) cleared_.insert(peer);
    if (cleared_.count(peer) || !(stat < kBound)) return {};
    std::vector<double> others;
    for (const auto& [p, s] : latest_)
      if (p != peer) others.push_back(s);
    if (others.size() < kMinReference) return {};
    std::nth_element(others.begin(), others.begin() + static_cast<std::ptrdiff_t>(others.size() / 2), others.end());
    const double median = others[others.size() / 2];
    if (!(median >= kReferenceFloor)) return {};  // honest updates do not stand out from noise now
    char buf[240];
    std::snprintf(buf, sizeof buf,
                  "update looks like random noise: d·mean cos² with ours over its last %zu payloads is %.3g "
                  "(random ~1, limit %.3g; other peers' median %.3g)",
                  w.size(), stat, kBound, median);
    return {kProofStrike, buf};
  }

 private:
  std::map<std::string, std::deque<double>> cosines_;
  std::map<std::string, double> latest_;  // each peer's statistic over its latest full window
  std::set<std::string> cleared_;         // peers that once had a window at kReferenceFloor or above
};

// Per peer, the last kWindow (cos with our update, cos with our last slow-weight movement δ) of the
// payloads that had a δ to compare with (delta_phi form). A sign-flipped honest update has the
// negated cosines of an honest one. Measured at the tiny preset over 1032 honest windows of three
// (docs/attacks.md, score12): the sum of the two window means was never below −0.06 and the two
// means were never both negative; 39 of 51 windows of flipped updates met the rule below. The
// chaos harness's clean run (390 outer steps, 2026-12-04) then struck an honest window of three at
// −0.007 and −0.157: late in a run both cosines scatter around ~0.02 with a spread of ~0.05, and a
// window of three is too short. Over kWindow = 8 the means' spread is ~0.02 and −0.15 is far out.
// As with noise, a peer with one window clearly along both references (both means positive, sum
// above kClear) has shown the shared direction and is cleared for good.
class DirectionEvidence {
 public:
  static constexpr size_t kWindow = 8;
  static constexpr double kBound = -0.15;  // strike when mean cos_own + mean cos_δ is below this
  static constexpr double kClear = 0.15;   // a window with both means positive and a sum above: cleared

  // Records one payload; `momentum_cosine` 0 means we had no movement to compare with (skipped).
  EvidenceRuling observe(const std::string& peer, double cosine, double momentum_cosine) {
    if (momentum_cosine == 0.0) return {};
    std::deque<std::pair<double, double>>& w = window_[peer];
    w.emplace_back(cosine, momentum_cosine);
    while (w.size() > kWindow) w.pop_front();
    if (w.size() < kWindow) return {};
    double own = 0, mom = 0;
    for (const auto& [c, m] : w) own += c, mom += m;
    own /= static_cast<double>(w.size());
    mom /= static_cast<double>(w.size());
    if (own > 0 && mom > 0 && own + mom > kClear) cleared_.insert(peer);
    if (cleared_.count(peer)) return {};
    if (!(own < 0 && mom < 0 && own + mom < kBound)) return {};  // NaN: no evidence
    char buf[240];
    std::snprintf(buf, sizeof buf,
                  "updates point against ours: over its last %zu payloads mean cosine %.3g with our update and "
                  "%.3g with our slow weights' last movement (limit: both negative, sum below %.3g)",
                  w.size(), own, mom, kBound);
    return {kProofStrike, buf};
  }

  // Probation (docs/defences.md, "Probation"): the window above convicts a flipper only at its
  // eighth payload to us, and the ones before it were mixed: 10 to 22 per run with 2 flippers
  // among 8 nodes (attack matrix, 2026-12-05), enough to cost the honest nodes ~0.8 % loss. So until a
  // peer is cleared, a payload of its that points against both our update and our last movement is
  // held back: not mixed, not struck (one such payload is no evidence; the window rules on it). In
  // the clean runs of those matrices 0.2–0.9 % of honest payloads were like that before their
  // sender cleared (3 to 13 of ~1400 per run), against 85–100 % of the flippers' mixed ones.
  // The reason when `observe` has just recorded such a payload of an uncleared peer; empty otherwise.
  std::string holds_back(const std::string& peer, double cosine, double momentum_cosine) const {
    if (momentum_cosine == 0.0 || cleared_.count(peer) || !(cosine < 0 && momentum_cosine < 0)) return {};
    char buf[200];
    std::snprintf(buf, sizeof buf,
                  "held back on probation: cosine %.3g with our update and %.3g with our slow weights' last "
                  "movement, both negative, from a peer not yet cleared",
                  cosine, momentum_cosine);
    return buf;
  }

 private:
  std::map<std::string, std::deque<std::pair<double, double>>> window_;
  std::set<std::string> cleared_;  // peers that once had a window clearly along both references
};

}  // namespace noloco::node
