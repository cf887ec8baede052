// Strikes against peers and the bans they lead to: a peer whose payloads (or state, or wire
// messages) were refused `strikes_to_ban` times is banned, once.
#pragma once

#include <map>
#include <set>

#include "trainer/node/partner_choice.h"

namespace noloco::node {

class StrikeBook {
 public:
  explicit StrikeBook(int strikes_to_ban) : strikes_to_ban_(strikes_to_ban) {}

  // Counts one strike; true when this strike is the one that bans the peer.
  bool strike(PeerRef peer) { return ++strikes_[peer] >= strikes_to_ban_ && banned_.insert(peer).second; }
  bool banned(PeerRef peer) const { return banned_.count(peer) > 0; }
  const std::set<PeerRef>& banned_set() const { return banned_; }
  int strikes(PeerRef peer) const {
    auto it = strikes_.find(peer);
    return it == strikes_.end() ? 0 : it->second;
  }

 private:
  int strikes_to_ban_;
  std::map<PeerRef, int> strikes_;
  std::set<PeerRef> banned_;
};

}  // namespace noloco::node
