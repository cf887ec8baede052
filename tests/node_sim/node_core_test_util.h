// Helpers shared by the node core tests (node_core_test.cc, node_core_peers_test.cc).
#pragma once

#include <catch2/catch.hpp>

#include <vector>

#include "trainer/node/node_core.h"

namespace noloco::node::test_core {

inline CoreConfig config() {
  CoreConfig c;
  c.total_steps = 1000;
  c.H = 10;
  c.seed = 7;
  return c;
}

inline std::vector<LivePeer> peers(int n, uint64_t outer = 0) {
  std::vector<LivePeer> v;
  for (int i = 1; i <= n; ++i) v.push_back({static_cast<PeerRef>(i), outer});
  return v;
}

inline int count(const Step& s, Effect::Kind k) {
  int n = 0;
  for (const auto& e : s.effects) n += e.kind == k;
  return n;
}

inline int notices(const Step& s, Notice::Kind k) {
  int n = 0;
  for (const auto& e : s.effects) n += e.kind == Effect::Kind::kNotice && e.notice.kind == k;
  return n;
}

// Starts a core with no join wait and brings it to its first phase end.
inline NodeCore started(CoreConfig c, int64_t outer = 0) {
  NodeCore core(c);
  Step s = core.on_start(0, outer * c.H, outer, {});
  REQUIRE(s.next.kind == Next::Kind::kTrainPhase);
  return core;
}

}  // namespace noloco::node::test_core
