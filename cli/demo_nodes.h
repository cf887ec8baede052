// What each `noloco run` process of `noloco demo` is started with: node0 from the run's manifest,
// the others joining it by run id. Each node gets a NodeLaunch that callers may extend (extra
// arguments or environment per node) before handing it to the Swarm (cli/demo_swarm.h).
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "cli/demo_swarm.h"

namespace noloco::cli {

struct DemoNodes {
  std::filesystem::path dir;   // node i keeps its store, key and log in dir/node<i>
  std::string exe;             // the `noloco` binary
  int peers = 4;
  double slowdown_last = 1.0;  // > 1: the last node's inner steps take this many times longer
  bool pin = false;            // pin node i to CPU pin_cpu_for(i)
  // Speed factors cycled over the nodes (node i gets slowdowns[i % size]); overrides
  // slowdown_last when not empty. "1,1,2,4": a mix of fast and slow machines.
  std::vector<double> slowdowns = {};
  // > 0: every node trains for about the same wall-clock instead of the same inner steps: the
  // slowest node stops after this many outer steps, a node s times faster after s times as many
  // (the manifest's steps must cover the fastest). 0: every node runs the manifest's steps.
  int64_t timed_outer = 0;
  // Validation: every eval_every outer steps on eval_windows held-out windows (0: the node's
  // defaults). An evaluation costs about as much as eval_windows / (3 x batch) inner steps, so
  // methods with different H compare fairly only when they evaluate equally often in inner steps.
  int64_t eval_every = 0;
  int64_t eval_windows = 0;
};

// Node i's speed factor (>= 1) and, with timed_outer, its outer-step budget.
double demo_node_slowdown(const DemoNodes& nodes, int i);
double demo_max_slowdown(const DemoNodes& nodes);

std::string demo_node_name(int i);

// Node i's launch with the arguments every node shares (creates its folder).
NodeLaunch demo_node_launch(const DemoNodes& nodes, int i);

// The first node, which starts the run from the manifest file and prints its address first.
NodeLaunch first_node_launch(const DemoNodes& nodes, const std::filesystem::path& manifest);

// Node i > 0, joining run `run_id` through the first node's address.
NodeLaunch joining_node_launch(const DemoNodes& nodes, int i, const std::string& run_id, const std::string& addr);

}  // namespace noloco::cli
