// The swarm simulator's trace and counters (swarm_sim.h): JSON lines with times in integer
// microseconds (no floating-point formatting, so the bytes are the same everywhere), hashed with
// FNV-1a 64 as they are written.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "trainer/node/node_core.h"
#include "trainer/node/swarm_sim.h"

namespace noloco::node {

class SimTrace {
 public:
  explicit SimTrace(std::function<void(const std::string&)> sink) : sink_(std::move(sink)) {}

  // {"t":<µs>,"node":<i>,"ev":"<what>"[,<fields>]}
  void line(double t, int node, const char* what, const std::string& fields);
  void notice(double t, int node, const Notice& n);
  void outer(double t, int node, const OuterReport& r);
  uint64_t hash() const { return hash_; }

 private:
  std::function<void(const std::string&)> sink_;
  uint64_t hash_ = 0xcbf29ce484222325ULL;
};

// A node's counters from its core (current and before its last restart) and the simulator's
// own measurements.
SimNodeStats sim_stats(const CoreCounters& now, const CoreCounters& before, std::vector<double> blocked,
                       const std::vector<int64_t>& staleness_hist, size_t distinct_partners, int crashes,
                       int64_t mixed_callers, int64_t final_outer, bool finished);

}  // namespace noloco::node
