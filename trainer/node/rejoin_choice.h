// Which remembered peer to dial this gossip tick to find the rest of the swarm again
// (NodeNetworkImpl::gossip_tick). Two halves of a healed partition each keep a live view of their
// own side, and the other side's records have expired from it; they met again only through a
// bootstrap address, dialled every 10 ticks (the chaos run of 2026-12-05: exchanges across the
// healed cut resumed 8 outer steps after the heal), and never once the bootstrap was gone for
// good. So now and then one peer we remember but no longer hold as live is dialled, in turn; a
// banned one never. IO-free.
#pragma once

#include <cstddef>
#include <iterator>
#include <map>
#include <optional>
#include <set>

namespace noloco::node {

// The next peer of `remembered` (in key order, starting at `*cursor` and moving it on) that is
// neither in `live` nor in `banned`; nothing when every remembered peer is one or the other.
template <typename Id, typename Rec>
std::optional<Id> pick_rejoin(const std::map<Id, Rec>& remembered, const std::set<Id>& live,
                              const std::set<Id>& banned, size_t* cursor) {
  const size_t n = remembered.size();
  for (size_t k = 0; k < n; ++k) {
    auto it = std::next(remembered.begin(), static_cast<long>((*cursor + k) % n));
    if (live.count(it->first) || banned.count(it->first)) continue;
    *cursor = (*cursor + k + 1) % n;
    return it->first;
  }
  return std::nullopt;
}

}  // namespace noloco::node
