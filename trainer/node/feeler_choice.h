// Which untested hearsay records to dial this gossip tick (the feelers of NodeNetworkImpl::
// gossip_tick): one per introducer in turn, each introducer's in the view's order. Taken in the
// view's order alone, a flooder's 128 fake records (claiming the newest step, so first) were all
// tried before the honest peers our bootstrap introduced, and a joining node spent its whole join
// wait dialling fakes (the attack matrix of 2026-12-05, eclipse-flood). Per introducer, a flood
// gets its introducer's share, whatever its size. IO-free.
#pragma once

#include <cstddef>
#include <functional>
#include <map>
#include <optional>
#include <vector>

namespace noloco::node {

// `candidates`: untested hearsay in the view's order; `introducer_of` names who introduced each.
// Returns up to `n` of them: the first of each introducer, then the second of each, and so on.
template <typename Rec, typename Id>
std::vector<Rec> pick_feelers(const std::vector<Rec>& candidates, const std::function<Id(const Rec&)>& introducer_of,
                              size_t n) {
  std::vector<Id> order;                   // introducers in order of first appearance
  std::map<Id, std::vector<const Rec*>> by;  // their records, in the view's order
  for (const Rec& r : candidates) {
    Id who = introducer_of(r);
    auto [it, fresh] = by.try_emplace(who);
    if (fresh) order.push_back(who);
    it->second.push_back(&r);
  }
  std::vector<Rec> out;
  for (size_t round = 0; out.size() < n; ++round) {
    bool any = false;
    for (const Id& who : order) {
      const auto& recs = by[who];
      if (round >= recs.size()) continue;
      any = true;
      out.push_back(*recs[round]);
      if (out.size() >= n) break;
    }
    if (!any) break;
  }
  return out;
}

}  // namespace noloco::node
