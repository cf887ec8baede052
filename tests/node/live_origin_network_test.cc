// Where a verified peer spoke from (NodeNetwork::live_peers_verified, LiveRecord::origin), on real
// hosts: identities whose connections come from one address share an origin, a peer elsewhere has
// its own, and exempt loopback (127.0.0.1) gives none. The join wait counts origins, so a Sybil's
// identities are one vantage point however many there are (NodeCore::vantage_points).
#include <catch2/catch.hpp>

#include <map>

#include "network_test_util.h"

using namespace noloco;
using namespace noloco::node;
using namespace noloco::test;

namespace {

// The origin `in` holds for `peer` once its record is verified there ("?" if it never is).
std::string origin_of(NodeNetwork& in, const p2p::PeerId& peer) {
  for (int i = 0; i < 300; ++i) {
    for (auto& l : in.live_peers_verified())
      if (l.record.peer == peer && l.verified) return l.origin;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return "?";
}

}  // namespace

TEST_CASE("live view: identities from one address share an origin, others have their own", "[network][sybil]") {
  auto v = start_network({}, "127.0.0.1");
  const std::vector<p2p::Multiaddr> boot = {v->listen_addr()};
  auto s1 = start_network(boot, "127.0.1.21");
  auto s2 = start_network(boot, "127.0.1.21");
  auto elsewhere = start_network(boot, "127.0.1.22");
  auto local = start_network(boot, "127.0.0.1");

  const std::string a = origin_of(*v, s1->peer_id());
  CHECK(a == "127.0.1.21");
  CHECK(origin_of(*v, s2->peer_id()) == a);
  CHECK(origin_of(*v, elsewhere->peer_id()) == "127.0.1.22");
  CHECK(origin_of(*v, local->peer_id()).empty());  // exempt loopback: counted one by one
}
