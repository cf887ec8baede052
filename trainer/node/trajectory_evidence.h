// A peer's updates checked against its own slow weights (docs/defences.md, "A peer's updates
// against its own trajectory"). In the delta_phi form a payload carries the sender's update Δ
// and its slow weights φ. An honest sender's next outer step moves its φ by
//   δ ← α·δ + β·(Δ + Δ_partner)/2 − γ·(φ − φ_partner)/2,
// so its φ at a later payload has moved along the Δ it sent before: cos(φ_later − φ_earlier,
// Δ_earlier) is positive, whatever the partners and however little the swarm's updates share late
// in a run (where the cosines with our own update fall to ~0.015 and the direction rule of
// update_evidence.h has no power). A sender that applies its true update but sends −Δ shows a
// negative cosine; one that sends noise, one near 0. Lying consistently means making up a whole
// trajectory of slow weights, which then drifts from the swarm's (the φ-spread bound).
//
// The comparison runs on a sketch: the values at every stride-th index of the flat vector
// (kSketchValues of them at most), so a peer costs 2 · 4 · kSketchValues bytes, whatever the model.
// Torch-free and IO-free.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <deque>
#include <list>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "trainer/node/strike_book.h"
#include "trainer/node/update_evidence.h"

namespace noloco::node {

inline constexpr uint64_t kSketchValues = 8192;

// Every stride-th index of a flat vector of `numel` values is sketched.
inline uint64_t sketch_stride(uint64_t numel) { return numel <= kSketchValues ? 1 : (numel + kSketchValues - 1) / kSketchValues; }

// A payload's Δ and φ at the sketched indices (delta_phi form).
struct UpdateSketch {
  uint64_t outer_step = 0;
  std::vector<float> delta, phi;
};

// cos(later.phi − earlier.phi, earlier.delta); nothing when the sketches do not match or a norm is 0.
inline std::optional<double> trajectory_cosine(const UpdateSketch& earlier, const UpdateSketch& later) {
  const size_t n = earlier.delta.size();
  if (n == 0 || earlier.phi.size() != n || later.phi.size() != n) return std::nullopt;
  double dot = 0, m2 = 0, d2 = 0;
  for (size_t i = 0; i < n; ++i) {
    const double m = static_cast<double>(later.phi[i]) - earlier.phi[i], d = earlier.delta[i];
    dot += m * d;
    m2 += m * m;
    d2 += d * d;
  }
  if (!(m2 > 0) || !(d2 > 0)) return std::nullopt;
  const double c = dot / std::sqrt(m2 * d2);
  return std::isfinite(c) ? std::optional<double>(c) : std::nullopt;
}

struct TrajectoryObservation {
  EvidenceRuling ruling;   // the window's: a proof strike
  EvidenceRuling payload;  // this payload alone: not mixed, a suspect strike (kRefuseBelow)
  std::optional<double> cosine;  // this payload against the peer's previous one, when comparable
  uint64_t gap = 0;              // outer steps between the two
};

class TrajectoryEvidence {
 public:
  static constexpr uint64_t kMaxGap = 8;  // outer steps: farther apart, Δ is a small part of the movement
  static constexpr size_t kWindow = 4;
  static constexpr double kBound = -0.05;  // strike when the window's mean cosine is below this
  static constexpr double kClear = 0.2;    // a window's mean above this: cleared for good
  static constexpr size_t kMaxPeers = 64;  // sketches kept (least recently seen dropped first)
  // One payload whose cosine is below this is not mixed (a suspect strike, which fades). The window
  // needs 4 comparable pairs, and a flip sender met every few outer steps had its payloads mixed
  // 2-6 times per honest node before that (the flip x2 matrix row of 2026-12-05: 31 of the 49
  // flipped payloads it mixed had a cosine below −0.1; loss +2.34 %). Honest single cosines in the
  // clean runs logged since 2026-12-04: 10.5k in attack-matrix runs, 12 below −0.1 (0.11 %); 28k in
  // six 390-step chaos runs (clean and faulted), 26 below −0.1 (0.09 %); the lowest −0.53, 28 of the
  // 38 at gaps of 5-6 outer steps (3-8 in all). Flip senders: max −0.025, median −0.38. A refused
  // honest payload costs one partner's contribution to one outer step. Applies to cleared peers
  // too: a peer that turns after its first window is refused payload by payload.
  static constexpr double kRefuseBelow = -0.1;

  // Records a payload's sketch (delta_phi form) from `peer`.
  TrajectoryObservation observe(const std::string& peer, UpdateSketch sketch) {
    TrajectoryObservation out;
    auto it = last_.find(peer);
    if (it != last_.end()) {
      order_.erase(it->second.where);
      const UpdateSketch& prev = it->second.sketch;
      if (sketch.outer_step > prev.outer_step && sketch.outer_step - prev.outer_step <= kMaxGap) {
        out.gap = sketch.outer_step - prev.outer_step;
        out.cosine = trajectory_cosine(prev, sketch);
      }
    } else if (last_.size() >= kMaxPeers) {
      last_.erase(order_.front());
      window_.erase(order_.front());
      order_.pop_front();
    }
    order_.push_back(peer);
    Entry& e = last_[peer];
    e.where = std::prev(order_.end());
    e.sketch = std::move(sketch);
    if (!out.cosine) return out;
    out.ruling = judge(peer, *out.cosine);
    if (*out.cosine < kRefuseBelow) {
      char buf[200];
      std::snprintf(buf, sizeof buf,
                    "its slow weights moved against the update it sent %llu outer steps before (cosine %.3g, "
                    "limit %.3g)",
                    static_cast<unsigned long long>(out.gap), *out.cosine, kRefuseBelow);
      out.payload = {kSuspectStrike, buf};
    }
    return out;
  }

 private:
  EvidenceRuling judge(const std::string& peer, double cosine) {
    std::deque<double>& w = window_[peer];
    w.push_back(cosine);
    while (w.size() > kWindow) w.pop_front();
    if (w.size() < kWindow) return {};
    double mean = 0;
    for (double c : w) mean += c;
    mean /= static_cast<double>(w.size());
    if (mean > kClear) cleared_.insert(peer);
    if (cleared_.count(peer) || !(mean < kBound)) return {};
    char buf[200];
    std::snprintf(buf, sizeof buf,
                  "its slow weights do not move along the updates it sends: mean cosine %.3g over its last %zu "
                  "payload pairs (limit %.3g)",
                  mean, w.size(), kBound);
    return {kProofStrike, buf};
  }

  struct Entry {
    UpdateSketch sketch;
    std::list<std::string>::iterator where;
  };
  std::map<std::string, Entry> last_;
  std::list<std::string> order_;  // least recently seen first
  std::map<std::string, std::deque<double>> window_;
  std::set<std::string> cleared_;
};

}  // namespace noloco::node
