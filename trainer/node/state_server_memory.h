// Which state servers a node should not download from again soon, and which claims to check
// before it downloads at all (docs/defences.md, "State sync"). Sans-IO: times are seconds on the
// caller's clock.
//
// A server whose download failed (an error, a stall, a trickle) is avoided for `cooldown_s` (10 s),
// doubled at each failure in a row up to `max_cooldown_s`, and forgotten once it serves: an honest
// server that was stopped or cut off is tried again later, a slow one is not tried every outer
// step. Outvoted snapshots are not remembered here: the strike book deals with those.
#pragma once

#include <algorithm>
#include <cstdint>
#include <map>
#include <span>

namespace noloco::node {

struct StateServerMemoryOptions {
  double cooldown_s = 10;
  double max_cooldown_s = 600;
};

template <typename PeerKey>
class StateServerMemory {
 public:
  explicit StateServerMemory(StateServerMemoryOptions o = {}) : o_(o) {}

  void failed(const PeerKey& peer, double now) {
    Entry& e = entries_[peer];
    e.cooldown_s = e.failures == 0 ? o_.cooldown_s : std::min(e.cooldown_s * 2, o_.max_cooldown_s);
    ++e.failures;
    e.until = now + e.cooldown_s;
  }
  void served(const PeerKey& peer) { entries_.erase(peer); }
  bool avoid(const PeerKey& peer, double now) const {
    auto it = entries_.find(peer);
    return it != entries_.end() && now < it->second.until;
  }
  int failures(const PeerKey& peer) const {
    auto it = entries_.find(peer);
    return it == entries_.end() ? 0 : it->second.failures;
  }

 private:
  struct Entry {
    int failures = 0;
    double cooldown_s = 0, until = 0;
  };
  StateServerMemoryOptions o_;
  std::map<PeerKey, Entry> entries_;
};

// A claim nobody else backs: the server says it is at least `gap` outer steps ahead of every other
// peer we hear from and of us. An honest node far ahead of the whole swarm is possible (a joiner
// meets one long-running peer), so such a claim is checked with a short probe before the
// download, not refused.
inline bool lone_claim(uint64_t claimed, std::span<const uint64_t> others, uint64_t ours, uint64_t gap) {
  uint64_t second = ours;
  for (uint64_t o : others) second = std::max(second, o);
  return claimed >= second + gap;
}

}  // namespace noloco::node
