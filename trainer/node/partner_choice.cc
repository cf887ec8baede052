// Choosing from the live view (partner_choice.h).
#include "trainer/node/partner_choice.h"

#include <algorithm>
#include <vector>

namespace noloco::node {

std::optional<LivePeer> choose_partner(std::span<const LivePeer> live, std::span<const PeerRef> exclude,
                                       uint64_t our_outer, int64_t max_staleness, CoreRng& rng) {
  std::vector<const LivePeer*> verified, hearsay;
  verified.reserve(live.size());
  for (const auto& p : live) {
    if (static_cast<int64_t>(our_outer) - static_cast<int64_t>(p.outer_step) > max_staleness) continue;
    if (std::find(exclude.begin(), exclude.end(), p.peer) != exclude.end()) continue;
    (p.verified ? verified : hearsay).push_back(&p);
  }
  const auto& candidates = verified.empty() ? hearsay : verified;
  if (candidates.empty()) return std::nullopt;
  return *candidates[rng.below(candidates.size())];
}

std::optional<LivePeer> most_advanced(std::span<const LivePeer> live) {
  if (live.empty()) return std::nullopt;
  // Verified peers outrank hearsay whatever they claim: a flood's fake records claim the swarm's
  // newest step and would otherwise be every joiner's first state server (a refused dial each).
  return *std::max_element(live.begin(), live.end(), [](const LivePeer& a, const LivePeer& b) {
    if (a.verified != b.verified) return b.verified;
    return a.outer_step < b.outer_step;
  });
}

}  // namespace noloco::node
