// The network rules of `noloco doctor` (cli/doctor_network_checks.h): reachability from AutoNAT
// answers, the NAT's mapping from observed addresses, the clock offset from time samples.
#include <catch2/catch.hpp>

#include "cli/doctor_network_checks.h"

using namespace noloco::cli::doctor;
using Outcome = DialbackFacts::Outcome;

namespace {
bool has(const std::string& s, const std::string& what) { return s.find(what) != std::string::npos; }

ListenFacts node_port() { return {"/ip4/0.0.0.0/tcp/4001", "/ip4/0.0.0.0/tcp/4001", false}; }
}  // namespace

TEST_CASE("doctor: reachability is ok when any peer dialled us back, naming the address and port", "[doctor]") {
  const std::vector<DialbackFacts> a = {{"A", Outcome::kDialError, "E_DIAL_ERROR dial back failed"},
                                        {"B", Outcome::kReached, "/ip4/203.0.113.7/tcp/4001"},
                                        {"C", Outcome::kNotOffered, ""}};
  Verdict v = check_reachability(node_port(), a);
  CHECK(v.level == Level::kOk);
  CHECK(has(v.what, "1 of 2 peer(s) asked dialled this machine back at /ip4/203.0.113.7/tcp/4001"));
  CHECK(has(v.what, "on the node's port 4001"));
  CHECK(v.fix.empty());
  ListenFacts temp{"/ip4/0.0.0.0/tcp/39211", "/ip4/0.0.0.0/tcp/4001", true};
  v = check_reachability(temp, a);
  CHECK(v.level == Level::kOk);
  CHECK(has(v.what, "on a temporary port 39211 (the node's port 4001 is taken: is the node running?)"));
  CHECK(has(v.what, "the node's own port was not tested"));
}

TEST_CASE("doctor: reachability warns with the port to forward when every dial-back failed", "[doctor]") {
  const std::vector<DialbackFacts> a = {{"A", Outcome::kDialError, "E_DIAL_ERROR dial back failed"},
                                        {"B", Outcome::kDialError, "E_DIAL_ERROR dial back failed"},
                                        {"C", Outcome::kUnreachablePeer, ""}};
  Verdict v = check_reachability(node_port(), a);
  CHECK(v.level == Level::kWarn);
  CHECK(has(v.what, "2 of 2 peer(s) asked tried to dial this machine back on the node's port 4001 and could not"));
  CHECK(has(v.what, "relay"));
  CHECK(has(v.fix, "forward TCP port 4001"));
  // Tested on a temporary port: the fix still names the node's port.
  v = check_reachability({"/ip4/0.0.0.0/tcp/39211", "/ip4/0.0.0.0/tcp/4001", true}, a);
  CHECK(has(v.fix, "forward TCP port 4001"));
  // The node picks any port (--listen .../tcp/0): there is no port to forward until it has a fixed one.
  v = check_reachability({"/ip4/0.0.0.0/tcp/39211", "/ip4/0.0.0.0/tcp/0", false}, a);
  CHECK(has(v.fix, "give the node a fixed --listen port"));
}

TEST_CASE("doctor: reachability skips, saying why, when no dial-back was possible", "[doctor]") {
  CHECK(check_reachability(node_port(), {}).level == Level::kSkip);
  Verdict v = check_reachability(node_port(), {{"A", Outcome::kUnreachablePeer, ""}});
  CHECK(v.level == Level::kSkip);
  CHECK(has(v.what, "no peer could be dialled"));
  v = check_reachability(node_port(), {{"A", Outcome::kNotOffered, ""}});
  CHECK(v.level == Level::kSkip);
  CHECK(has(v.what, "none offers AutoNAT"));
  v = check_reachability(node_port(), {{"A", Outcome::kRefused, "E_DIAL_REFUSED too many requests"},
                                       {"B", Outcome::kFailed, "timed out"}});
  CHECK(v.level == Level::kSkip);
  CHECK(has(v.what, "A: E_DIAL_REFUSED too many requests; B: timed out"));
  v = check_reachability({"/ip4/0.0.0.0/tcp/40000", "", false}, {{"A", Outcome::kReached, "/ip4/1.2.3.4/tcp/40000"}});
  CHECK(has(v.what, "on port 40000 (no --listen given: any free port)"));
}

TEST_CASE("doctor: nat is none when peers see our own address and listen port", "[doctor]") {
  NatFacts f;
  f.listen_port = 4001;
  f.local_ips = {"192.168.1.5"};
  f.seen = {{"A", "192.168.1.5", 4001, true}};
  Verdict v = check_nat(f);
  CHECK(v.level == Level::kOk);
  CHECK(has(v.what, "no NAT: 1 peer(s) see this machine at its own address 192.168.1.5:4001"));
  f.seen = {{"A", "127.0.0.1", 4001, true}, {"B", "127.0.0.1", 4001, true}};  // loopback is always ours
  CHECK(has(check_nat(f).what, "no NAT: 2 peer(s)"));
}

TEST_CASE("doctor: nat tells endpoint-independent from symmetric mappings by the observed ports", "[doctor]") {
  NatFacts f;
  f.listen_port = 4001;
  f.local_ips = {"192.168.1.5"};
  f.seen = {{"A", "198.51.100.9", 4001, true}, {"B", "198.51.100.9", 4001, true}};
  Verdict v = check_nat(f);
  CHECK(v.level == Level::kOk);
  CHECK(has(v.what, "endpoint-independent NAT"));
  CHECK(has(v.what, "(port preserved)"));
  CHECK(has(v.what, "hole punching can"));
  CHECK(has(v.what, "(2 peer(s): A sees 198.51.100.9:4001, B sees 198.51.100.9:4001)"));
  f.seen = {{"A", "198.51.100.9", 50123, true}, {"B", "198.51.100.9", 50123, true}};
  v = check_nat(f);
  CHECK(v.level == Level::kOk);
  CHECK(!has(v.what, "port preserved"));
  f.seen = {{"A", "198.51.100.9", 50123, true}, {"B", "198.51.100.9", 61002, true}};
  v = check_nat(f);
  CHECK(v.level == Level::kWarn);
  CHECK(has(v.what, "symmetric NAT"));
  CHECK(has(v.what, "relay only"));
  CHECK(has(v.fix, "forward TCP port 4001"));
  f.seen = {{"A", "198.51.100.9", 4001, true}, {"B", "203.0.113.1", 4001, true}};
  v = check_nat(f);
  CHECK(v.level == Level::kWarn);
  CHECK(has(v.what, "different IPs"));
}

TEST_CASE("doctor: nat skips with a reason below two translated observations", "[doctor]") {
  NatFacts f;
  f.listen_port = 4001;
  CHECK(check_nat(f).level == Level::kSkip);
  f.seen = {{"A", "198.51.100.9", 4001, true}};
  Verdict v = check_nat(f);
  CHECK(v.level == Level::kSkip);
  CHECK(has(v.what, "behind a NAT (1 peer(s)"));
  CHECK(has(v.what, "at least 2 peers"));
  // Connections from ephemeral ports say nothing about the listen port's mapping.
  f.seen = {{"A", "198.51.100.9", 50000, false}, {"B", "198.51.100.9", 50001, false}};
  v = check_nat(f);
  CHECK(v.level == Level::kSkip);
  CHECK(has(v.what, "no connection left from the listen port"));
}

TEST_CASE("doctor: clock is ok within 2 s, warns beyond, fails at the relay reservation's hour", "[doctor]") {
  auto sample = [](const std::string& p, int64_t off, int64_t err) {
    ClockFacts c;
    c.peer = p;
    c.offered = true;
    c.offset_ms = off;
    c.error_ms = err;
    return c;
  };
  Verdict v = check_clock({sample("A", 12, 3)});
  CHECK(v.level == Level::kOk);
  CHECK(has(v.what, "+12 ms (±3 ms, half the round trip; median of 1 peer(s))"));
  // The median resists one wrong peer.
  v = check_clock({sample("A", -40, 2), sample("B", 9'000'000, 2), sample("C", 15, 2)});
  CHECK(v.level == Level::kOk);
  CHECK(has(v.what, "+15 ms"));
  CHECK(has(v.what, "from -40 ms to +9000.0 s"));
  // Beyond 2 s only when the error bound cannot explain it.
  CHECK(check_clock({sample("A", 2500, 600)}).level == Level::kOk);
  v = check_clock({sample("A", -2500, 100)});
  CHECK(v.level == Level::kWarn);
  CHECK(has(v.what, "-2500 ms"));
  CHECK(has(v.what, "membership times heartbeats on each node's own clock"));
  CHECK(has(v.fix, "timedatectl set-ntp true"));
  CHECK(check_clock({sample("A", kClockFailMs - 1, 0)}).level == Level::kWarn);
  v = check_clock({sample("A", kClockFailMs, 0)});
  CHECK(v.level == Level::kFail);
  CHECK(has(v.what, "relay"));
}

TEST_CASE("doctor: clock skips when no peer serves the time protocol or none answered", "[doctor]") {
  CHECK(check_clock({}).level == Level::kSkip);
  ClockFacts old;
  old.peer = "A";
  Verdict v = check_clock({old});
  CHECK(v.level == Level::kSkip);
  CHECK(has(v.what, "none of the reachable peers serves /noloco/time/1.0.0"));
  ClockFacts bad;
  bad.peer = "B";
  bad.offered = true;
  bad.error = "time: the reply is 7 bytes, not 8";
  v = check_clock({old, bad});
  CHECK(v.level == Level::kSkip);
  CHECK(has(v.what, "B: time: the reply is 7 bytes, not 8"));
}
