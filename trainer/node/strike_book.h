// Strikes against peers and the bans they lead to (docs/defences.md, "Scores and bans"): each
// refusal that shows misbehaviour adds its weight to the sender's score, and a peer whose score
// reaches `strikes_to_ban` is banned, once. Honest failures (timeouts, lag, an unchanged answer)
// are never struck: only the callers decide what counts, with the weights below.
#pragma once

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

class StrikeBook {
 public:
  explicit StrikeBook(int strikes_to_ban) : strikes_to_ban_(strikes_to_ban) {}

  // Adds `weight` (> 0) to the peer's score; true when this strike is the one that bans the peer.
  bool strike(PeerRef peer, double weight = kSuspectStrike) {
    double& s = scores_[peer];
    s += weight;
    return s >= strikes_to_ban_ && banned_.insert(peer).second;
  }
  bool banned(PeerRef peer) const { return banned_.count(peer) > 0; }
  const std::set<PeerRef>& banned_set() const { return banned_; }
  double score(PeerRef peer) const {
    auto it = scores_.find(peer);
    return it == scores_.end() ? 0 : it->second;
  }

 private:
  int strikes_to_ban_;
  std::map<PeerRef, double> scores_;
  std::set<PeerRef> banned_;
};

}  // namespace noloco::node
