// The order a node tries a peer's addresses in (docs/node.md, "Reachability and relays"): the one
// that last worked first, then the record's addresses as the peer listed them (a NATed peer lists
// its /p2p-circuit addresses first, since it knows its direct one is not reachable from outside).
// Addresses that do not parse are skipped; each comes back with /p2p/<peer> appended.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "p2p/membership.h"
#include "p2p/multiaddr.h"

namespace noloco::node {

std::vector<p2p::Multiaddr> dial_order(const p2p::PeerRecord& record, const std::optional<std::string>& last_good);

}  // namespace noloco::node
