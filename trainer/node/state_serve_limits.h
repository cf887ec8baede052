// How many state streams (/noloco/state/1.0.0) a node serves at once (docs/protocols/state.md,
// "Limits"). Sans-IO: the adapter asks on every inbound state stream and says when one ends.
//
// Our own client (NodeNetwork::fetch_state, probe_state) holds one state stream to a server at a
// time and closes it when its call ends (resets it when the call fails); a stream of a connection
// that died unnoticed may linger on our side, so a peer may hold `per_peer` (2) at once. More than that is something our client
// never does: the stream is refused and the peer struck (proof). Past `total` streams in all,
// newcomers are refused without a strike (many honest peers may sync at once).
#pragma once

#include <cstddef>
#include <map>

namespace noloco::node {

struct StateServeLimits {
  size_t per_peer = 2;
  size_t total = 16;
};

enum class StateAdmit { kServe, kRefuseBusy, kRefuseAbuse };

template <typename PeerKey>
class StateStreamLimiter {
 public:
  explicit StateStreamLimiter(StateServeLimits limits = {}) : limits_(limits) {}

  // A new inbound state stream from `peer`. kServe counts it until release(peer).
  StateAdmit admit(const PeerKey& peer) {
    if (open(peer) >= limits_.per_peer) return StateAdmit::kRefuseAbuse;
    if (total_ >= limits_.total) return StateAdmit::kRefuseBusy;
    ++open_[peer];
    ++total_;
    return StateAdmit::kServe;
  }
  void release(const PeerKey& peer) {
    auto it = open_.find(peer);
    if (it == open_.end() || it->second == 0) return;
    --total_;
    if (--it->second == 0) open_.erase(it);
  }
  size_t open(const PeerKey& peer) const {
    auto it = open_.find(peer);
    return it == open_.end() ? 0 : it->second;
  }
  size_t total() const { return total_; }

 private:
  StateServeLimits limits_;
  std::map<PeerKey, size_t> open_;
  size_t total_ = 0;
};

}  // namespace noloco::node
