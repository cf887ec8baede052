// Tainted addresses (trainer/node/address_taint.h): two banned identities from one address bucket
// taint it; other identities connected from it are then banned on sight unless they served us a
// payload; nothing else is affected.
#include <catch2/catch.hpp>

#include "trainer/node/address_taint.h"

using namespace noloco::node;

TEST_CASE("address taint: the second banned identity from an address taints it, once", "[taint]") {
  AddressTaint<int> t;
  CHECK(t.on_banned(1, {"10.0.0.7"}).empty());
  CHECK_FALSE(t.any());
  CHECK_FALSE(t.judge(3, {"10.0.0.7"}));  // one liar is not an address's fault
  CHECK(t.on_banned(1, {"10.0.0.7"}).empty());  // the same identity twice is still one
  const auto now = t.on_banned(2, {"10.0.0.7", "2001:db8:1:2::/64"});
  REQUIRE(now.size() == 1);
  CHECK(now[0] == "10.0.0.7");
  CHECK(t.tainted("10.0.0.7"));
  CHECK_FALSE(t.tainted("2001:db8:1:2::/64"));  // one ban from there
  CHECK(t.on_banned(4, {"10.0.0.7"}).empty());  // already tainted: not reported again
}

TEST_CASE("address taint: identities from a tainted address are judged, vouched ones and others are not",
          "[taint]") {
  AddressTaint<int> t;
  t.on_banned(1, {"10.0.0.7"});
  t.on_banned(2, {"10.0.0.7"});
  const auto why = t.judge(3, {"10.0.0.7"});
  REQUIRE(why);
  CHECK(why->find("10.0.0.7") != std::string::npos);
  CHECK(t.judge(3, {"192.0.2.1", "10.0.0.7"}));  // any of its connections' addresses
  CHECK_FALSE(t.judge(3, {"192.0.2.1"}));         // another address
  CHECK_FALSE(t.judge(3, {}));                    // not directly connected: nothing to go by
  t.vouch(5);                                     // an honest node behind the same NAT that trained with us
  CHECK_FALSE(t.judge(5, {"10.0.0.7"}));
  CHECK_FALSE(t.judge(6, {""}));  // an exempt address (loopback) has no bucket
  CHECK(t.on_banned(7, {""}).empty());
  CHECK(t.on_banned(8, {""}).empty());
}

TEST_CASE("address taint: the threshold is a setting", "[taint]") {
  AddressTaint<int> t(3);
  t.on_banned(1, {"10.0.0.7"});
  t.on_banned(2, {"10.0.0.7"});
  CHECK_FALSE(t.judge(9, {"10.0.0.7"}));
  CHECK(t.on_banned(3, {"10.0.0.7"}).size() == 1);
  CHECK(t.judge(9, {"10.0.0.7"}));
}
