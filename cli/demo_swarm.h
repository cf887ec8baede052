// The process side of `noloco demo`: starts child processes (each described by a NodeLaunch),
// reads their stdout line by line, forwards Ctrl-C / SIGTERM to them and reaps them. Knows nothing
// about what the children are or print; cli/demo_nodes.h says how node processes are started.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "common/status.h"

namespace noloco::cli {

// How to start one child. Everything per-child lives here so that a caller can add arguments or
// environment (an emulated network, say) without the swarm knowing.
struct NodeLaunch {
  std::string name;                                       // label in the output ("node3")
  std::string exe;                                        // program to execute
  std::vector<std::string> args;                          // argv[1..]
  std::vector<std::pair<std::string, std::string>> env;   // set in the child, over ours
  std::filesystem::path log;                              // the child's stderr goes here (truncated)
  int cpu = -1;                                           // >= 0: pin the child to this CPU
};

// Ctrl-C and SIGTERM set a flag instead of ending the demo (the swarm forwards them to the
// children, which checkpoint first); SIGPIPE is ignored.
void install_stop_signals();
bool stop_requested();

// The CPU that `--pin` gives node i: i modulo the CPUs online.
int pin_cpu_for(int i);

class Swarm {
 public:
  Swarm();
  Swarm(const Swarm&) = delete;
  Swarm& operator=(const Swarm&) = delete;
  ~Swarm();

  // Forks and executes one child; its stdout becomes readable here. Index = order of starting.
  Status start(const NodeLaunch& launch);
  size_t size() const { return kids_.size(); }
  const std::string& name(size_t i) const;

  // Waits for child i's first non-empty stdout line. nullopt when the child closed its stdout
  // first or a stop was requested. Lines read along with it are kept for pump().
  std::optional<std::string> first_line(size_t i);

  // Hands every stdout line of every child to on_line(index, line) until all have closed their
  // stdout. A stop request is forwarded to the children once ("stopping the nodes ...").
  void pump(const std::function<void(size_t, const std::string&)>& on_line);

  // SIGTERM to every child not yet reaped.
  void terminate_all();

  // Waits for every child; prints a line for each that did not exit with status 0 and returns
  // whether all did.
  bool reap_all();

 private:
  struct Child;
  std::vector<std::string> read_lines(Child& c);
  std::vector<std::unique_ptr<Child>> kids_;
};

}  // namespace noloco::cli
