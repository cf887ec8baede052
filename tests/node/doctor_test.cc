// `noloco doctor` end to end (docs/doctor.md): the real binary on a tiny setup (a manifest, a key,
// a `noloco listen` peer on loopback), then the same setup broken one thing at a time.
#include <catch2/catch.hpp>

#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <map>

#include "cli/invite.h"
#include "cli/join_dir.h"
#include "node_proc.h"
#include "free_port.h"
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

  RunResult ok = run_noloco(with({"--join", peer_addr, "--listen", "/ip4/127.0.0.1/tcp/0", "--json"}));
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
  // noloco listen serves AutoNAT and the time protocol: the peer dials doctor's port back, sees it
  // at its own loopback address, and reports its clock.
  CHECK(v["reachability"]["level"] == "ok");
  CHECK(v["reachability"]["what"].get<std::string>().find("1 of 1 peer(s) asked dialled this machine back at /ip4/127.0.0.1/tcp/") !=
        std::string::npos);
  CHECK(v["nat"]["level"] == "ok");
  CHECK(v["nat"]["what"].get<std::string>().find("no NAT: 1 peer(s) see this machine at its own address 127.0.0.1:") !=
        std::string::npos);
  CHECK(v["clock"]["level"] == "ok");  // both ends read this machine's clock
  CHECK(v["clock"]["what"].get<std::string>().find("peers' clocks minus this machine's: ") == 0);
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
    CHECK(bad["reachability"]["level"] == "skip");
    CHECK(bad["clock"]["level"] == "skip");
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

TEST_CASE("doctor: inside a joined private run it takes the PSK and peers from the invite and reads the node's clock",
          "[doctor]") {
  TempDir t;
  const uint16_t port = free_loopback_port();
  REQUIRE(port != 0);
  RunResult init = run_noloco({"init-run", "--private", "--data-dir", t.sub("a"), "--steps", "400", "--H", "10",
                               "--batch", "8", "--listen", "/ip4/127.0.0.1/tcp/" + std::to_string(port)});
  INFO(init.out << init.err);
  REQUIRE(init.exit_code == 0);
  const size_t at = init.out.find("noloco1:");
  REQUIRE(at != std::string::npos);
  const std::string invite = init.out.substr(at, init.out.find_first_of(" '\n", at) - at);
  auto decoded = cli::decode_invite(invite);
  REQUIRE(decoded.ok());
  // Machine a: the run's first node, a real one.
  NodeProc a({"join", invite, "--data-dir", t.sub("a"), "--json", "--threads", "1", "--eval-windows", "16", "--linger", "120"},
             t.sub("a.log"));
  REQUIRE(!a.address().empty());
  // Machine b: what `noloco join` keeps after its first start (no node needed for doctor).
  const cli::RunDir b = cli::run_dir(t.sub("b"), decoded->run_id);
  std::filesystem::create_directories(b.dir);
  REQUIRE(cli::save_join_settings(b.settings(), {invite, "/ip4/127.0.0.1/tcp/0", ""}).ok());

  RunResult r = run_noloco({"doctor", "--data-dir", t.sub("b"), "--matmul-size", "64", "--timeout", "30", "--json"});
  INFO(r.out << r.err << "\na: " << t.sub("a.log"));
  auto v = verdicts(r);
  REQUIRE(v.count("joined run") == 1);
  CHECK(v["joined run"]["level"] == "ok");
  CHECK(v["joined run"]["what"].get<std::string>().find("run " + decoded->run_id + " (private)") == 0);
  // The newcomer findings: the PSK is the invite's, the manifest line speaks of the invite's run id.
  CHECK(v["psk file"]["level"] == "ok");
  CHECK(v["psk file"]["what"].get<std::string>().find("the PSK is in the invite saved in " + b.settings().string()) == 0);
  CHECK(v["manifest"]["level"] == "skip");
  CHECK(v["manifest"]["what"].get<std::string>().find("joined run " + decoded->run_id) != std::string::npos);
  CHECK(v["manifest"]["what"].get<std::string>().find("--run-id") == std::string::npos);
  CHECK(v["key file"]["level"] == "ok");  // node.key does not exist yet: join creates it
  // The invite's peer, dialled with the invite's PSK; the node serves /noloco/time/1.0.0.
  CHECK(v["peer"]["level"] == "ok");
  CHECK(v["clock"]["level"] == "ok");
  CHECK(v["nat"]["level"] == "ok");
  // A node answers dial-backs once the node's host serves AutoNAT; until then the line says it does not.
  const auto reach = v["reachability"];
  CHECK((reach["level"] == "ok" || reach["what"].get<std::string>().find("none offers AutoNAT") != std::string::npos));
}

}  // namespace noloco::test
