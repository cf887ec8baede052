// Strikes against peers and the bans they lead to (docs/defences.md, "Scores and bans"): each
// refusal that shows misbehaviour adds its weight to the sender's score, and a peer whose score
// reaches `strikes_to_ban` is banned, once. Honest failures (timeouts, lag, an unchanged answer)
// are never struck: only the callers decide what counts, with the weights below.
#pragma once

#include <algorithm>
#include <map>
#include <set>

#include "trainer/node/partner_choice.h"

namespace noloco::node {

// A refusal an honest but unusual peer could still earn (a robust-acceptance bound: norm ratio,
// direction, slow-weight spread; a caller pushing again what it had already pushed).
constexpr double kSuspectStrike = 1.0;
// A refusal no honest peer can earn: a record whose signature does not verify, a payload for
// another run or failing the wire checks, a payload replayed under a new step number, a state
// snapshot every witness (two or more) disagrees with, a malformed protocol message. Two ban a
// peer at the default of five.
constexpr double kProofStrike = 2.5;

// A suspect strike from a payload verdict (a robust-acceptance bound on its statistics, a caller
// pushing again what it had pushed) is forgiven after kForgiveAfter outer steps in which the peer
// earned no other: one suspect strike's weight for each such quiet stretch. An honest peer's
// statistics wander past a bound now and then (the φ spread of a node that trained alone under
// faults: 20.2–22.4x against 20x, eight times in one 390-step chaos run, three against one peer),
// and over a run of thousands of outer steps strikes that are never forgiven add up to a ban at any
// rate above zero. Five within a quiet stretch still ban, as before. Proof strikes, and suspect
// strikes from anything but a payload verdict, are never forgiven. Scores that decay back towards
// zero are GossipSub v1.1's answer to the same problem (libp2p/specs,
// pubsub/gossipsub/gossipsub-v1.1.md, "decayInterval", "decayToZero").
constexpr int kForgiveAfter = 50;  // outer steps

class StrikeBook {
 public:
  explicit StrikeBook(int strikes_to_ban) : strikes_to_ban_(strikes_to_ban) {}

  // Adds `weight` (> 0) to the peer's score; true when this strike is the one that bans the peer.
  // `fades`: a payload verdict, forgiven after quiet stretches when it weighs less than a proof.
  bool strike(PeerRef peer, double weight = kSuspectStrike, bool fades = false) {
    Score& s = scores_[peer];
    if (fades && weight < kProofStrike) {
      s.fading += weight;
      s.quiet = 0;
    } else {
      s.lasting += weight;
    }
    return s.total() >= strikes_to_ban_ && banned_.insert(peer).second;
  }
  // One outer step has passed: a fading score quiet for kForgiveAfter steps loses one suspect strike.
  void outer_step_passed() {
    for (auto& [peer, s] : scores_) {
      if (s.fading <= 0 || ++s.quiet < kForgiveAfter) continue;
      s.fading = std::max(0.0, s.fading - kSuspectStrike);
      s.quiet = 0;
    }
  }
  bool banned(PeerRef peer) const { return banned_.count(peer) > 0; }
  const std::set<PeerRef>& banned_set() const { return banned_; }
  double score(PeerRef peer) const {
    auto it = scores_.find(peer);
    return it == scores_.end() ? 0 : it->second.total();
  }

 private:
  struct Score {
    double lasting = 0, fading = 0;
    int quiet = 0;  // outer steps since the last fading strike or forgiveness
    double total() const { return lasting + fading; }
  };
  int strikes_to_ban_;
  std::map<PeerRef, Score> scores_;
  std::set<PeerRef> banned_;
};

}  // namespace noloco::node
