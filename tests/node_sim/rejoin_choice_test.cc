// Rejoining through remembered peers (trainer/node/rejoin_choice.h).
#include <catch2/catch.hpp>

#include <string>

#include "trainer/node/rejoin_choice.h"

using namespace noloco::node;

TEST_CASE("rejoin: remembered peers the view no longer holds are dialled in turn, banned ones never", "[rejoin]") {
  const std::map<std::string, int> remembered = {{"a", 0}, {"b", 0}, {"c", 0}, {"d", 0}, {"e", 0}};
  // Our side of a partition: a and c are live; the other side (b, d) expired from the view; e is banned.
  const std::set<std::string> live = {"a", "c"}, banned = {"e"};
  size_t cursor = 0;
  std::vector<std::string> got;
  for (int i = 0; i < 6; ++i) got.push_back(*pick_rejoin(remembered, live, banned, &cursor));
  CHECK(got == std::vector<std::string>{"b", "d", "b", "d", "b", "d"});
}

TEST_CASE("rejoin: nothing to dial when every remembered peer is live or banned", "[rejoin]") {
  const std::map<std::string, int> remembered = {{"a", 0}, {"b", 0}};
  size_t cursor = 7;  // a cursor past the end (the map shrank) is taken modulo its size
  CHECK_FALSE(pick_rejoin(remembered, {"a"}, {"b"}, &cursor));
  CHECK_FALSE(pick_rejoin(std::map<std::string, int>{}, {}, {}, &cursor));
  CHECK(pick_rejoin(remembered, {"a"}, {}, &cursor) == std::optional<std::string>("b"));
}
