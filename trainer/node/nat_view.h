// The node's NAT picture for `noloco status` (docs/status.md): its reachability verdict and why,
// the relay reservations it holds, and how it reaches its live peers. Plain data, no p2p types,
// so the CLI's status model can take it without the network's headers.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace noloco::node {

struct NatView {
  std::string reachability = "unknown";  // public|private|unknown (reachability.h)
  std::string basis = "none";            // flag|dialback|observed|none: what the verdict rests on
  std::string why;                       // one line (ReachabilityVerdict::why)
  std::vector<std::string> reservations;  // our /p2p-circuit addresses, one per relay holding a slot
  size_t direct = 0, relayed = 0, hole_punched = 0;  // live peers by connection path (peer_paths.h)
  uint64_t punch_attempts = 0, punch_succeeded = 0, punch_failed = 0;  // DCUtR exchanges so far
};

}  // namespace noloco::node
