// IntroducerWatch (trainer/node/introducer_watch.h): records nobody answers at count against the
// peer that introduced them, with the guards that keep honest introducers unstruck.
#include <catch2/catch.hpp>

#include <string>

#include "trainer/node/introducer_watch.h"

using namespace noloco;
using namespace noloco::node;
using namespace std::chrono_literals;

namespace {
std::string fake(int i) { return "fake-" + std::to_string(i); }
}  // namespace

TEST_CASE("introducer watch: a flooder earns a strike every 8 unreachable records, five by the 40th",
          "[introducer]") {
  IntroducerWatch w;
  TimePoint t{};
  w.dial_succeeded(t);
  int strikes = 0;
  for (int i = 1; i <= 40; ++i) {
    auto why = w.unreachable("flooder", fake(i), t + 1s);
    if (i % 8 == 0) {
      REQUIRE(why.has_value());
      CHECK(why->find("introduced " + std::to_string(i)) != std::string::npos);
      ++strikes;
    } else {
      CHECK_FALSE(why.has_value());
    }
  }
  CHECK(strikes == 5);
  // The same records again count nothing more.
  for (int i = 1; i <= 40; ++i) CHECK_FALSE(w.unreachable("flooder", fake(i), t + 2s).has_value());
  CHECK(w.unreachable_count("flooder") == 40);
}

TEST_CASE("introducer watch: nothing counts while our own dialling has not worked lately", "[introducer]") {
  IntroducerWatch w;
  TimePoint t{};
  for (int i = 1; i <= 16; ++i) CHECK_FALSE(w.unreachable("x", fake(i), t).has_value());  // never dialled anyone
  CHECK(w.unreachable_count("x") == 0);
  w.dial_succeeded(t);
  for (int i = 1; i <= 16; ++i) CHECK_FALSE(w.unreachable("x", fake(i), t + 31s).has_value());  // our link cut 31 s ago
  CHECK(w.unreachable_count("x") == 0);
  w.dial_succeeded(t + 40s);
  int struck = 0;
  for (int i = 1; i <= 16; ++i) struck += w.unreachable("x", fake(i), t + 41s).has_value();
  CHECK(struck == 2);
}

TEST_CASE("introducer watch: an introducer whose records mostly answer is not struck", "[introducer]") {
  IntroducerWatch w;
  TimePoint t{};
  w.dial_succeeded(t);
  // An honest introducer in a large swarm: 10 of its records answered, then 39 peers of its died
  // before we dialled them (more than four to one only after the 40th).
  for (int i = 0; i < 10; ++i) w.reached("honest", "real-" + std::to_string(i));
  for (int i = 1; i <= 39; ++i) CHECK_FALSE(w.unreachable("honest", fake(i), t).has_value());
  // A peer that answered once and is gone now is not held against it either.
  CHECK_FALSE(w.unreachable("honest", "real-3", t).has_value());
  CHECK(w.unreachable_count("honest") == 39);
  // A peer that failed once and answers later is taken off the unreachable count.
  w.reached("honest", fake(1));
  CHECK(w.unreachable_count("honest") == 38);
}

TEST_CASE("introducer watch: a record taken off the count does not let the same strike come twice", "[introducer]") {
  IntroducerWatch w;
  TimePoint t{};
  w.dial_succeeded(t);
  for (int i = 1; i <= 7; ++i) CHECK_FALSE(w.unreachable("x", fake(i), t).has_value());
  CHECK(w.unreachable("x", fake(8), t).has_value());  // the first strike, at 8
  w.reached("x", fake(8));                             // it answers after all: 7 on the count
  CHECK_FALSE(w.unreachable("x", fake(9), t).has_value());  // 8 again, but that strike was given
  for (int i = 10; i <= 16; ++i) CHECK_FALSE(w.unreachable("x", fake(i), t).has_value());
  CHECK(w.unreachable("x", fake(17), t).has_value());  // 16 on the count: the second strike
}

TEST_CASE("introducer watch: memory stays bounded under a flood of fresh records", "[introducer]") {
  IntroducerWatch::Options o;
  o.max_tracked_per_introducer = 64;
  o.max_introducers = 4;
  IntroducerWatch w(o);
  TimePoint t{};
  w.dial_succeeded(t);
  for (int i = 0; i < 10000; ++i) (void)w.unreachable("flooder", fake(i), t);
  CHECK(w.unreachable_count("flooder") == 64);
  for (int k = 0; k < 10; ++k) (void)w.unreachable("intro-" + std::to_string(k), fake(k), t);
  CHECK(w.unreachable_count("intro-9") == 0);  // past max_introducers: not tracked
}

TEST_CASE("answer_expected: public, relayed and same-scope loopback addresses count, LAN ranges do not",
          "[introducer]") {
  CHECK(answer_expected({"/ip4/203.0.113.7/tcp/4001"}, false));
  CHECK(answer_expected({"/ip4/8.8.8.8/udp/4001/quic-v1"}, false));
  CHECK(answer_expected({"/dns4/node.example.org/tcp/4001"}, false));
  CHECK(answer_expected({"/ip4/198.51.100.1/tcp/4001/p2p/12D3KooWabc/p2p-circuit"}, false));
  CHECK(answer_expected({"/ip6/2001:db8::1/tcp/4001"}, false));
  CHECK(answer_expected({"/ip4/127.0.3.1/tcp/20000"}, true));
  CHECK_FALSE(answer_expected({"/ip4/127.0.3.1/tcp/20000"}, false));
  CHECK_FALSE(answer_expected({"/ip6/::1/tcp/20000"}, false));
  CHECK_FALSE(answer_expected({"/ip4/192.168.1.20/tcp/4001", "/ip4/10.0.0.2/tcp/4001"}, false));
  CHECK_FALSE(answer_expected({"/ip4/172.20.0.2/tcp/4001", "/ip4/100.64.1.1/tcp/4001"}, false));
  CHECK_FALSE(answer_expected({"/ip4/169.254.0.9/tcp/4001", "/ip6/fe80::1/tcp/4001", "/ip6/fd00::2/tcp/1"}, false));
  CHECK_FALSE(answer_expected({"/ip4/not-an-ip/tcp/1", "garbage"}, true));
  CHECK_FALSE(answer_expected({}, true));
  // One reachable address among LAN ones is enough.
  CHECK(answer_expected({"/ip4/192.168.1.20/tcp/4001", "/ip4/203.0.113.7/tcp/4001"}, false));
}
