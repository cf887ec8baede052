// How the node reaches each live peer (docs/node.md, "Reachability and relays"): through a relay,
// directly, or directly after a hole punch upgraded a relayed connection (DCUtR). Sans-IO: the
// network thread samples the host's connections at each gossip tick and feeds them here; what
// changed becomes a `peer_path` event (docs/events.md), the counts go to `noloco status`.
#pragma once

#include <cstddef>
#include <map>
#include <string>
#include <utility>
#include <vector>

namespace noloco::node {

enum class PeerPath { kNone, kDirect, kRelayed, kHolePunched };
const char* peer_path_name(PeerPath p);  // none|direct|relayed|hole_punched

struct PathCounts {
  size_t direct = 0, relayed = 0, hole_punched = 0;
};

template <typename Peer>
class PeerPaths {
 public:
  struct Change {
    Peer peer;
    PeerPath path;
  };
  // One sample: every live peer with its path now. Returns the peers whose path differs from the
  // last one reported (a first connection included). kNone (not connected at this instant:
  // between gossip streams, a redial in flight) is not a change and keeps the last path; a peer
  // missing from the sample (it left the live view) is forgotten, so its return is reported.
  std::vector<Change> update(const std::vector<std::pair<Peer, PeerPath>>& sample) {
    std::vector<Change> changes;
    std::map<Peer, PeerPath> next;
    counts_ = {};
    for (const auto& [peer, path] : sample) {
      auto old = last_.find(peer);
      PeerPath kept = old == last_.end() ? PeerPath::kNone : old->second;
      if (path != PeerPath::kNone && path != kept) {
        changes.push_back({peer, path});
        kept = path;
      }
      if (kept != PeerPath::kNone) next[peer] = kept;
      if (path == PeerPath::kDirect) ++counts_.direct;
      if (path == PeerPath::kRelayed) ++counts_.relayed;
      if (path == PeerPath::kHolePunched) ++counts_.hole_punched;
    }
    last_ = std::move(next);
    return changes;
  }
  // Live peers by the path of their connection at the last sample (unconnected ones in none).
  PathCounts counts() const { return counts_; }

 private:
  std::map<Peer, PeerPath> last_;
  PathCounts counts_;
};

}  // namespace noloco::node
