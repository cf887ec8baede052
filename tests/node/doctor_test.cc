// `noloco doctor` end to end (docs/doctor.md): the real binary on a tiny setup (a manifest, a key,
// a `noloco listen` peer on loopback), then the same setup broken one thing at a time.
#include <catch2/catch.hpp>

#include <sys/stat.h>

#include <fstream>
#include <map>

#include "node_proc.h"
#include "node_test_util.h"

namespace noloco::test {
namespace {

using json = nlohmann::json;

// check name -> its verdict (the peer check may appear once per --join; the last one wins here).
std::map<std::string, json> verdicts(const RunResult& r) {
  std::map<std::string, json> out;
  const json j = json::parse(r.out, nullptr, false);
  if (!j.is_array()) return out;
  for (const auto& v : j) out[v["check"].get<std::string>()] = v;
  return out;
}

}  // namespace

TEST_CASE("doctor: a sound tiny setup passes, and each broken part fails with its fix", "[doctor]") {
  TempDir t;
  REQUIRE(run_noloco({"init-run", "--out", t.sub("m.json"), "--steps", "100", "--H", "5", "--batch", "4"}).exit_code == 0);
  REQUIRE(run_noloco({"keygen", "--key", t.sub("key")}).exit_code == 0);
  NodeProc peer({"listen"}, t.sub("peer.log"));  // an ephemeral identity
  const std::string peer_addr = peer.address();
  REQUIRE(!peer_addr.empty());
  const std::vector<std::string> base = {"doctor",     "--db",   t.sub("db"),       "--key", t.sub("key"),
                                         "--manifest", t.sub("m.json"), "--matmul-size", "64", "--timeout", "30"};
  auto with = [&](std::vector<std::string> extra) {
    std::vector<std::string> a = base;
    a.insert(a.end(), extra.begin(), extra.end());
    return a;
  };

  RunResult ok = run_noloco(with({"--join", peer_addr, "--json"}));
  INFO(ok.out << ok.err);
  auto v = verdicts(ok);
  REQUIRE(v.count("manifest") == 1);
  CHECK(v["manifest"]["level"] == "ok");
  CHECK(v["key file"]["level"] == "ok");
  CHECK(v["psk file"]["level"] == "skip");
  CHECK(v["device"]["level"] == "ok");
  CHECK(v["device"]["what"].get<std::string>().find("GFLOP/s fp32 matmul (n=64") != std::string::npos);
  CHECK(v["peer"]["level"] == "ok");
  CHECK(v["peer"]["what"].get<std::string>().find("reachable, ping") != std::string::npos);
  CHECK(v["disk"]["what"].get<std::string>().find("preset tiny, estimated") != std::string::npos);
  for (const char* never_faked : {"reachability", "nat", "clock"}) CHECK(v[never_faked]["level"] == "skip");
  CHECK(v.count("blas") == 1);
  CHECK(v.count("openmp") == 1);
  // A healthy setup exits 0 unless this machine's disk is short, which the disk line would say.
  CHECK(ok.exit_code == (v["disk"]["level"] == "fail" ? 1 : 0));

  SECTION("a key readable by others") {
    REQUIRE(chmod(t.sub("key").c_str(), 0644) == 0);
    RunResult r = run_noloco(with({}));
    CHECK(r.exit_code == 1);
    CHECK(r.out.find("fail  key file      " + t.sub("key") + " can be read or written by group or others (mode 0644); "
                     "fix: chmod 600 " + t.sub("key")) != std::string::npos);
  }
  SECTION("a peer nobody answers for") {
    peer.kill(SIGTERM);
    peer.wait_exit();
    RunResult r = run_noloco(with({"--join", peer_addr, "--json"}));
    CHECK(r.exit_code == 1);
    auto bad = verdicts(r);
    CHECK(bad["peer"]["level"] == "fail");
    CHECK(bad["peer"]["what"].get<std::string>().find(peer_addr) == 0);
  }
  SECTION("a damaged manifest and a missing psk") {
    std::ofstream(t.sub("m.json"), std::ios::trunc) << "{\"H\": 5}";
    RunResult r = run_noloco(with({"--psk", t.sub("missing.psk"), "--json"}));
    CHECK(r.exit_code == 1);
    auto bad = verdicts(r);
    CHECK(bad["manifest"]["level"] == "fail");
    CHECK(bad["psk file"]["level"] == "fail");
    CHECK(bad["peer"]["level"] == "skip");
  }
}

}  // namespace noloco::test
