// The reachability verdict with AutoNAT's dial-back evidence, and the peer-path bookkeeping
// (reachability.h, peer_paths.h; docs/node.md, "Reachability and relays"): sans-IO.
#include <catch2/catch.hpp>

#include <string>

#include "trainer/node/peer_paths.h"
#include "trainer/node/reachability.h"

using namespace noloco::node;

TEST_CASE("reachability: a dial-back outranks the observed addresses, and says so", "[reachability]") {
  ReachabilityEvidence ev;
  ev.own_ips = {"10.1.0.2"};
  ev.observed_ips = {"10.1.0.2"};  // a peer on our LAN saw our own address ...
  auto v = judge_reachability(ReachabilityMode::kAuto, ev);
  CHECK(v.reachability == Reachability::kPublic);
  CHECK(std::string(v.basis) == "observed");
  ev.dialback_succeeded = false;  // ... but nobody outside could dial our listen address
  ev.dialback_votes = 2;
  v = judge_reachability(ReachabilityMode::kAuto, ev);
  CHECK(v.reachability == Reachability::kPrivate);
  CHECK(std::string(v.basis) == "dialback");
  CHECK(v.why == "dial-back: 2 peers could not reach our listen address (AutoNAT)");
  ev.observed_ips = {"198.51.100.1"};  // a NAT rewrote our source, yet a dial-back got through
  ev.dialback_succeeded = true;       // (a forwarded port)
  ev.dialback_votes = 1;
  v = judge_reachability(ReachabilityMode::kAuto, ev);
  CHECK(v.reachability == Reachability::kPublic);
  CHECK(v.why == "dial-back: 1 peer reached our listen address (AutoNAT)");
  // A flag still wins over everything.
  v = judge_reachability(ReachabilityMode::kPrivate, ev);
  CHECK(v.reachability == Reachability::kPrivate);
  CHECK(std::string(v.basis) == "flag");
}

TEST_CASE("reachability: a failed dial-back does not make a loopback-only node private", "[reachability]") {
  ReachabilityEvidence ev;
  ev.own_ips = {"127.0.1.2", "127.0.2.2"};  // tools/linkemu
  ev.dialback_succeeded = false;
  ev.dialback_votes = 1;
  // No NAT on loopback: the observed addresses decide (here: none yet).
  auto v = judge_reachability(ReachabilityMode::kAuto, ev);
  CHECK(v.reachability == Reachability::kUnknown);
  CHECK(std::string(v.basis) == "none");
  ev.observed_ips = {"127.0.0.1"};
  v = judge_reachability(ReachabilityMode::kAuto, ev);
  CHECK(v.reachability == Reachability::kPublic);
  CHECK(std::string(v.basis) == "observed");
  // Not loopback-only: the failure counts.
  ev.own_ips.push_back("10.1.0.2");
  CHECK(decide_reachability(ReachabilityMode::kAuto, ev) == Reachability::kPrivate);
}

TEST_CASE("peer paths: changes are reported once, a gap keeps the last path, a returning peer is new", "[reachability]") {
  PeerPaths<std::string> paths;
  using S = std::vector<std::pair<std::string, PeerPath>>;
  auto c = paths.update(S{{"a", PeerPath::kRelayed}, {"b", PeerPath::kDirect}, {"c", PeerPath::kNone}});
  REQUIRE(c.size() == 2);
  CHECK((c[0].peer == "a" && c[0].path == PeerPath::kRelayed));
  CHECK((c[1].peer == "b" && c[1].path == PeerPath::kDirect));
  CHECK(paths.counts().relayed == 1);
  CHECK(paths.counts().direct == 1);
  CHECK(paths.update(S{{"a", PeerPath::kRelayed}, {"b", PeerPath::kDirect}}).empty());  // nothing new
  // a's relayed connection was upgraded; b is between connections for a moment.
  c = paths.update(S{{"a", PeerPath::kHolePunched}, {"b", PeerPath::kNone}});
  REQUIRE(c.size() == 1);
  CHECK((c[0].peer == "a" && c[0].path == PeerPath::kHolePunched));
  CHECK(paths.counts().hole_punched == 1);
  CHECK(paths.counts().direct == 0);
  CHECK(paths.update(S{{"a", PeerPath::kHolePunched}, {"b", PeerPath::kDirect}}).empty());  // b back as it was
  // b leaves the live view; when it returns it is reported again.
  CHECK(paths.update(S{{"a", PeerPath::kHolePunched}}).empty());
  c = paths.update(S{{"a", PeerPath::kHolePunched}, {"b", PeerPath::kDirect}});
  REQUIRE(c.size() == 1);
  CHECK(c[0].peer == "b");
  CHECK(std::string(peer_path_name(PeerPath::kHolePunched)) == "hole_punched");
}
