#include "trainer/node/peer_paths.h"

namespace noloco::node {

const char* peer_path_name(PeerPath p) {
  switch (p) {
    case PeerPath::kDirect: return "direct";
    case PeerPath::kRelayed: return "relayed";
    case PeerPath::kHolePunched: return "hole_punched";
    case PeerPath::kNone: break;
  }
  return "none";
}

}  // namespace noloco::node
