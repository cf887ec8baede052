#include "trainer/node/relay_keeper.h"

#include <algorithm>

namespace noloco::node {

std::vector<p2p::Multiaddr> RelayKeeper::tick(TimePoint now, bool want_relays,
                                              const std::vector<RelayCandidate>& candidates,
                                              const std::function<bool(const p2p::PeerId&)>& connected) {
  std::vector<p2p::Multiaddr> ask;
  if (!want_relays) {
    slots_.clear();  // reachable directly: nothing to advertise through a relay
    return ask;
  }
  // A lapsed grant or a lost connection to the relay ends the reservation; ask again at once
  // (the RESERVE redials), unless the relay is in its back-off.
  auto is_candidate = [&](const p2p::PeerId& peer) {
    return std::any_of(candidates.begin(), candidates.end(), [&](const RelayCandidate& c) { return c.peer == peer; });
  };
  for (auto it = slots_.begin(); it != slots_.end();) {
    Slot& s = it->second;
    // A relay that no longer looks public (it now advertises a circuit address itself, or left
    // the view) is let go, so that we never advertise an address through a NATed peer.
    if (!s.in_flight && !is_candidate(it->first)) {
      it = slots_.erase(it);
      continue;
    }
    if (s.granted && !s.in_flight && (now >= s.expires || !connected(it->first))) {
      s.granted = false;
      if (backoff_.count(it->first) && backoff_[it->first] > now) {
        it = slots_.erase(it);
        continue;
      }
      s.in_flight = true;
      ask.push_back(s.addr);
    } else if (s.granted && !s.in_flight && now >= s.renew_at) {
      s.in_flight = true;
      ask.push_back(s.addr);
    }
    ++it;
  }
  for (const auto& c : candidates) {
    if (slots_.size() >= opt_.want) break;
    if (slots_.count(c.peer)) continue;
    if (auto b = backoff_.find(c.peer); b != backoff_.end() && b->second > now) continue;
    Slot s;
    s.addr = c.addr.with_peer_id(c.peer);
    s.in_flight = true;
    ask.push_back(s.addr);
    slots_.emplace(c.peer, std::move(s));
  }
  return ask;
}

void RelayKeeper::on_granted(const p2p::PeerId& relay, TimePoint now, Duration ttl) {
  auto it = slots_.find(relay);
  if (it == slots_.end()) return;  // dropped meanwhile (we became reachable)
  Slot& s = it->second;
  s.granted = true;
  s.in_flight = false;
  s.expires = now + ttl;
  const auto left = std::chrono::duration_cast<Duration>(ttl * opt_.renew_when_left);
  s.renew_at = s.expires - left;
  backoff_.erase(relay);
}

void RelayKeeper::on_failed(const p2p::PeerId& relay, TimePoint now) {
  backoff_[relay] = now + opt_.retry_after;
  auto it = slots_.find(relay);
  if (it == slots_.end()) return;
  // A failed renewal keeps a grant that has not lapsed yet; tick() drops it when it does.
  if (it->second.granted && now < it->second.expires) {
    it->second.in_flight = false;
    it->second.renew_at = now + opt_.retry_after;
    return;
  }
  slots_.erase(it);
}

std::vector<std::string> RelayKeeper::circuit_addrs() const {
  std::vector<std::string> out;
  for (const auto& [peer, s] : slots_)
    if (s.granted) out.push_back(s.addr.with_peer_id(peer).to_string() + "/p2p-circuit");
  return out;
}

size_t RelayKeeper::held() const {
  size_t n = 0;
  for (const auto& [peer, s] : slots_) n += s.granted ? 1 : 0;
  return n;
}

}  // namespace noloco::node
