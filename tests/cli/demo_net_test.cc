// `noloco demo --net`: the topology the demo writes for linkemu and the node flags that put each
// node behind it.
#include <catch2/catch.hpp>

#include <algorithm>
#include <fstream>

#include <nlohmann/json.hpp>

#include "cli/demo_net.h"
#include "demo_test_util.h"

using namespace noloco::cli;
using noloco::test::DemoTempDir;

namespace {

nlohmann::json read_json(const std::filesystem::path& p) {
  std::ifstream in(p);
  return nlohmann::json::parse(in);
}

bool has_args(const NodeLaunch& l, const std::string& flag, const std::string& value) {
  for (size_t i = 0; i + 1 < l.args.size(); ++i)
    if (l.args[i] == flag && l.args[i + 1] == value) return true;
  return false;
}

}  // namespace

TEST_CASE("demo --net hetero: each pair gets the worse end of its two access links", "[demo]") {
  DemoTempDir dir;
  auto net = plan_demo_net("hetero", 4, dir.path, "/nonexistent/cli/noloco", "/bin/true");
  REQUIRE(net.ok());
  CHECK(net->port > 0);
  const auto t = read_json(net->topology);
  REQUIRE(t["nodes"].size() == 4);
  const std::string port = std::to_string(net->port);
  CHECK(t["nodes"][2]["listen"] == "127.0.1.3:" + port);
  CHECK(t["nodes"][2]["proxy"] == "127.0.2.3:" + port);
  CHECK(t["links"].size() == 6);
  // n0 is class 0 (10 ms, 1 Gbit), n2 class 2 (150 ms, 20 Mbit), n3 class 0 again.
  CHECK(t["links"]["n0<->n2"]["delay_ms"] == 150.0);
  CHECK(t["links"]["n0<->n2"]["rate_mbit"] == 20.0);
  CHECK(t["links"]["n0<->n3"]["delay_ms"] == 10.0);
  CHECK(t["links"]["n0<->n1"]["rate_mbit"] == 100.0);

  NodeLaunch node;
  node.args = {"run"};
  put_behind_linkemu(node, *net, 2);
  CHECK(has_args(node, "--listen", "/ip4/127.0.1.3/tcp/" + port));
  CHECK(has_args(node, "--dial-from", "127.0.1.3"));
  CHECK(has_args(node, "--announce", "/ip4/127.0.2.3/tcp/" + port));
  const NodeLaunch emu = linkemu_launch(*net, dir.path);
  CHECK(emu.exe == "/bin/true");
  CHECK(has_args(emu, "--topology", net->topology.string()));
}

TEST_CASE("demo --net uniform: one default link, and bad profiles or a missing linkemu are refused", "[demo]") {
  DemoTempDir dir;
  auto net = plan_demo_net("uniform", 3, dir.path, "/x/cli/noloco", "/bin/true");
  REQUIRE(net.ok());
  const auto t = read_json(net->topology);
  CHECK(t["default"]["delay_ms"] == 50.0);
  CHECK(t["default"]["rate_mbit"] == 100.0);
  CHECK_FALSE(t.contains("links"));

  auto bad = plan_demo_net("wan", 3, dir.path, "/x/cli/noloco", "/bin/true");
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.status().message().find("uniform, hetero or lan") != std::string::npos);
  // Default location: next to the build's noloco, and it is not there.
  auto missing = plan_demo_net("lan", 3, dir.path, (dir.path / "cli" / "noloco").string(), "");
  REQUIRE_FALSE(missing.ok());
  CHECK(missing.status().message().find("tools/linkemu/linkemu") != std::string::npos);
}
