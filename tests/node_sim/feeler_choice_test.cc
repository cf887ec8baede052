// Feelers one introducer at a time (trainer/node/feeler_choice.h).
#include <catch2/catch.hpp>

#include <string>
#include <utility>

#include "trainer/node/feeler_choice.h"

using namespace noloco::node;

namespace {
using Rec = std::pair<std::string, std::string>;  // (peer, introducer)
const std::function<std::string(const Rec&)> by = [](const Rec& r) { return r.second; };
}  // namespace

TEST_CASE("feelers: a flooder's records do not crowd out another introducer's", "[feelers][eclipse]") {
  std::vector<Rec> view;
  for (int i = 0; i < 128; ++i) view.push_back({"fake" + std::to_string(i), "flooder"});  // first: newest claims
  view.push_back({"honest1", "bootstrap"});
  view.push_back({"honest2", "bootstrap"});
  auto tick = pick_feelers(view, by, 2);
  REQUIRE(tick.size() == 2);
  CHECK(tick[0].first == "fake0");
  CHECK(tick[1].first == "honest1");  // in the first tick, not after 64
}

TEST_CASE("feelers: round robin by introducer, in view order, up to n", "[feelers]") {
  std::vector<Rec> view = {{"a1", "A"}, {"a2", "A"}, {"b1", "B"}, {"a3", "A"}, {"c1", "C"}, {"b2", "B"}};
  auto got = pick_feelers(view, by, 10);
  std::vector<std::string> ids;
  for (auto& r : got) ids.push_back(r.first);
  CHECK(ids == std::vector<std::string>{"a1", "b1", "c1", "a2", "b2", "a3"});
  CHECK(pick_feelers(view, by, 0).empty());
  CHECK(pick_feelers(std::vector<Rec>{}, by, 2).empty());
}
