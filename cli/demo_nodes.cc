// The `noloco run` command lines of the demo's nodes.
#include "cli/demo_nodes.h"

#include <algorithm>
#include <cmath>
#include <system_error>

namespace noloco::cli {

namespace fs = std::filesystem;

std::string demo_node_name(int i) { return "node" + std::to_string(i); }

NodeLaunch demo_node_launch(const DemoNodes& nodes, int i) {
  const fs::path nd = nodes.dir / demo_node_name(i);
  std::error_code ec;
  fs::create_directories(nd, ec);  // a failure shows up as the log file that cannot be created
  NodeLaunch l;
  l.name = demo_node_name(i);
  l.exe = nodes.exe;
  l.log = nd / "log.txt";
  l.cpu = nodes.pin ? pin_cpu_for(i) : -1;
  l.args = {"run", "--db", (nd / "db").string(), "--key", (nd / "key").string(),
            "--json", "--threads", "1", "--linger", "5", "--join-wait", "20",
            "--min-peers", std::to_string(nodes.peers - 1),
            // The tiny model's outer phase is a fraction of a second, so processes sharing a few
            // cores drift several outer steps apart: allow that before passing a partner over or
            // re-syncing.
            "--max-staleness", "10", "--resync-behind", "20"};
  const double slowdown = demo_node_slowdown(nodes, i);
  if (slowdown > 1.0) {
    l.args.push_back("--slowdown");
    l.args.push_back(std::to_string(slowdown));
  }
  if (nodes.eval_every > 0) l.args.insert(l.args.end(), {"--eval-every", std::to_string(nodes.eval_every)});
  if (nodes.eval_windows > 0) l.args.insert(l.args.end(), {"--eval-windows", std::to_string(nodes.eval_windows)});
  if (nodes.timed_outer > 0) {
    const double budget = static_cast<double>(nodes.timed_outer) * demo_max_slowdown(nodes) / slowdown;
    l.args.push_back("--stop-after-outer");
    l.args.push_back(std::to_string(std::llround(budget)));
  }
  return l;
}

double demo_node_slowdown(const DemoNodes& nodes, int i) {
  if (!nodes.slowdowns.empty()) return nodes.slowdowns[static_cast<size_t>(i) % nodes.slowdowns.size()];
  return i == nodes.peers - 1 ? nodes.slowdown_last : 1.0;
}

double demo_max_slowdown(const DemoNodes& nodes) {
  double worst = 1.0;
  for (int i = 0; i < nodes.peers; ++i) worst = std::max(worst, demo_node_slowdown(nodes, i));
  return worst;
}

NodeLaunch first_node_launch(const DemoNodes& nodes, const fs::path& manifest) {
  NodeLaunch l = demo_node_launch(nodes, 0);
  l.args.insert(l.args.end(), {"--manifest", manifest.string()});
  return l;
}

NodeLaunch joining_node_launch(const DemoNodes& nodes, int i, const std::string& run_id, const std::string& addr) {
  NodeLaunch l = demo_node_launch(nodes, i);
  l.args.insert(l.args.end(), {"--run-id", run_id, "--join", addr});
  return l;
}

}  // namespace noloco::cli
