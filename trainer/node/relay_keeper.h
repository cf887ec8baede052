// Which relays a node that peers cannot dial holds reservations on, and when to ask again
// (circuit relay v2, docs/protocols/relay.md; docs/node.md, "Reachability and relays").
// Sans-IO: the network thread feeds it the time, the candidates and the relays' answers, and
// carries out the reservations it asks for with Host::reserve_relay.
#pragma once

#include <cstddef>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "common/clock.h"
#include "p2p/identity.h"
#include "p2p/multiaddr.h"

namespace noloco::node {

struct RelayKeeperOptions {
  size_t want = 2;                                     // reservations held at once
  Duration retry_after = std::chrono::seconds(10);     // a relay that refused or failed waits this long
  // A reservation is renewed when this fraction of its granted time is left (1 h grants: after
  // 30 min), so a late answer or one failed try still leaves time before it lapses.
  double renew_when_left = 0.5;
};

struct RelayCandidate {
  p2p::PeerId peer;
  p2p::Multiaddr addr;  // dialable, with /p2p/<relay>
};

class RelayKeeper {
 public:
  explicit RelayKeeper(RelayKeeperOptions options = {}) : opt_(options) {}

  // One tick. `want_relays`: the node is not publicly reachable. `candidates`: in order of
  // preference (bootstrap first). `connected`: whether our connection to a relay is still up (a
  // reservation lives only as long as it). A held relay missing from `candidates` is dropped.
  // Returns the relay addresses to send RESERVE to now:
  // renewals of held reservations that are due and new relays up to `want`.
  std::vector<p2p::Multiaddr> tick(TimePoint now, bool want_relays, const std::vector<RelayCandidate>& candidates,
                                   const std::function<bool(const p2p::PeerId&)>& connected);
  // The relay's answer to a RESERVE tick() asked for. `ttl`: the time the grant runs for.
  void on_granted(const p2p::PeerId& relay, TimePoint now, Duration ttl);
  void on_failed(const p2p::PeerId& relay, TimePoint now);

  // "<relay address>/p2p-circuit" for every live reservation, for our membership record (the
  // dialer appends /p2p/<us>).
  std::vector<std::string> circuit_addrs() const;
  size_t held() const;

 private:
  struct Slot {
    p2p::Multiaddr addr;
    bool granted = false;
    bool in_flight = false;
    TimePoint expires{}, renew_at{};
  };
  RelayKeeperOptions opt_;
  std::map<p2p::PeerId, Slot> slots_;
  std::map<p2p::PeerId, TimePoint> backoff_;  // not asked again before
};

}  // namespace noloco::node
