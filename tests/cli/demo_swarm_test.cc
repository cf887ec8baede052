// The demo's process side with /bin/sh as the child: arguments, environment, stdout lines,
// stderr log, exit status; and the `noloco run` command lines the demo gives its nodes.
#include <catch2/catch.hpp>

#include <stdlib.h>

#include <algorithm>
#include <string>
#include <vector>

#include "cli/demo_nodes.h"
#include "cli/demo_swarm.h"
#include "demo_test_util.h"

using namespace noloco::cli;
using noloco::test::DemoTempDir;
using noloco::test::read_text;

namespace {

NodeLaunch shell(const DemoTempDir& t, const std::string& script) {
  NodeLaunch l;
  l.name = "sh";
  l.exe = "/bin/sh";
  l.args = {"-c", script, "sh", "arg1"};
  l.log = t.path / "log.txt";
  return l;
}

std::vector<std::string> all_lines(Swarm& swarm) {
  std::vector<std::string> lines;
  swarm.pump([&](size_t i, const std::string& line) { lines.push_back(std::to_string(i) + ":" + line); });
  return lines;
}

bool contains(const std::vector<std::string>& v, const std::string& s) {
  return std::find(v.begin(), v.end(), s) != v.end();
}

}  // namespace

TEST_CASE("demo swarm gives a child its launch's arguments and environment") {
  DemoTempDir t;
  NodeLaunch l = shell(t, "echo \"$DEMO_X $1\"; echo to-log >&2; printf 'second\\nno-newline'");
  l.env = {{"DEMO_X", "hello"}};
  Swarm swarm;
  REQUIRE(swarm.start(l).ok());
  REQUIRE(swarm.size() == 1);
  CHECK(swarm.name(0) == "sh");
  CHECK(swarm.first_line(0) == std::optional<std::string>("hello arg1"));
  CHECK(all_lines(swarm) == std::vector<std::string>{"0:second", "0:no-newline"});
  CHECK(swarm.reap_all());
  CHECK(read_text(t.path / "log.txt") == "to-log\n");
}

TEST_CASE("demo swarm sets passive OpenMP waiting unless the launch says otherwise") {
  DemoTempDir t;
  const char* before = ::getenv("OMP_WAIT_POLICY");
  const std::string saved = before ? before : "";
  ::unsetenv("OMP_WAIT_POLICY");
  Swarm swarm;
  REQUIRE(swarm.start(shell(t, "echo \"default=$OMP_WAIT_POLICY\"")).ok());
  NodeLaunch active = shell(t, "echo \"launch=$OMP_WAIT_POLICY\"");
  active.log = t.path / "log2.txt";
  active.env = {{"OMP_WAIT_POLICY", "ACTIVE"}};
  REQUIRE(swarm.start(active).ok());
  const auto lines = all_lines(swarm);
  if (before) ::setenv("OMP_WAIT_POLICY", saved.c_str(), 1);
  CHECK(contains(lines, "0:default=PASSIVE"));
  CHECK(contains(lines, "1:launch=ACTIVE"));
  CHECK(swarm.reap_all());
}

TEST_CASE("demo swarm reports a child that exits with an error and one that never prints") {
  DemoTempDir t;
  Swarm swarm;
  REQUIRE(swarm.start(shell(t, "exit 3")).ok());
  CHECK_FALSE(swarm.first_line(0).has_value());
  CHECK_FALSE(swarm.reap_all());
}

TEST_CASE("demo swarm refuses a launch whose log cannot be created") {
  DemoTempDir t;
  NodeLaunch l = shell(t, "echo never");
  l.log = t.path / "missing-dir" / "log.txt";
  Swarm swarm;
  const noloco::Status st = swarm.start(l);
  CHECK(st.code() == noloco::StatusCode::kIoError);
  CHECK(swarm.size() == 0);
}

TEST_CASE("demo node launches share the run flags and differ in how they join") {
  DemoTempDir t;
  const DemoNodes nodes{t.path, "/bin/noloco", 3, 4.0, false};
  const NodeLaunch first = first_node_launch(nodes, t.path / "manifest.json");
  CHECK(first.name == "node0");
  CHECK(first.exe == "/bin/noloco");
  CHECK(first.log == t.path / "node0" / "log.txt");
  CHECK(first.cpu == -1);
  CHECK(std::filesystem::is_directory(t.path / "node0"));
  const std::vector<std::string> shared = {"run", "--db", (t.path / "node0" / "db").string(), "--key",
                                           (t.path / "node0" / "key").string(), "--json", "--threads", "1",
                                           "--linger", "5", "--join-wait", "20", "--min-peers", "2",
                                           "--max-staleness", "10", "--resync-behind", "20"};
  std::vector<std::string> want = shared;
  want.insert(want.end(), {"--manifest", (t.path / "manifest.json").string()});
  CHECK(first.args == want);

  const NodeLaunch last = joining_node_launch(nodes, 2, "RUNID", "/ip4/127.0.0.1/tcp/1");
  CHECK(last.name == "node2");
  const std::vector<std::string> tail(last.args.end() - 6, last.args.end());
  CHECK(tail == std::vector<std::string>{"--slowdown", "4.000000", "--run-id", "RUNID", "--join", "/ip4/127.0.0.1/tcp/1"});
  const NodeLaunch middle = joining_node_launch(nodes, 1, "R", "A");
  CHECK(std::count(middle.args.begin(), middle.args.end(), "--slowdown") == 0);

  // A speed pattern cycles over the nodes and replaces --slowdown-last.
  const DemoNodes mixed{t.path, "/bin/noloco", 5, 8.0, false, {1, 2, 4}};
  auto slowdown_of = [&](int i) {
    const auto args = demo_node_launch(mixed, i).args;
    auto it = std::find(args.begin(), args.end(), "--slowdown");
    return it == args.end() ? std::string("none") : *(it + 1);
  };
  CHECK(slowdown_of(0) == "none");
  CHECK(slowdown_of(1) == "2.000000");
  CHECK(slowdown_of(2) == "4.000000");
  CHECK(slowdown_of(3) == "none");
  CHECK(slowdown_of(4) == "2.000000");  // not the last node's 8

  const DemoNodes pinned{t.path, "/bin/noloco", 2, 1.0, true};
  CHECK(demo_node_launch(pinned, 1).cpu == pin_cpu_for(1));
  CHECK(pin_cpu_for(0) == 0);
}
