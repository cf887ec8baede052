// The verbs of the `noloco` binary. Each cmd_<verb>.cc defines one register_<verb>() that adds
// its subcommand and flags to the app and returns the function that runs it.
#pragma once

#include <CLI/CLI.hpp>

#include <functional>
#include <vector>

namespace noloco::cli {

struct Command {
  CLI::App* app;             // the subcommand, to see whether it was chosen
  std::function<int()> run;  // returns the process exit code
};

// Training (cmd_simulate.cc).
Command register_simulate(CLI::App& app);
// p2p identity and connectivity tools (cmd_keygen.cc, cmd_id.cc, cmd_listen.cc, cmd_ping.cc).
Command register_keygen(CLI::App& app);
Command register_id(CLI::App& app);
Command register_listen(CLI::App& app);
Command register_ping(CLI::App& app);
// Single-node training with resume, and store inspection (cmd_train.cc, cmd_status.cc).
Command register_train(CLI::App& app);
Command register_status(CLI::App& app);
// The training node, run manifests and the local swarm (cmd_run.cc, cmd_init_run.cc, cmd_demo.cc).
Command register_run(CLI::App& app);
Command register_init_run(CLI::App& app);
Command register_join(CLI::App& app);  // cmd_join.cc: join (and resume) a run with its invite
Command register_demo(CLI::App& app);
Command register_export(CLI::App& app);  // cmd_export.cc: latest slow weights as safetensors
Command register_simulate_swarm(CLI::App& app);  // cmd_simulate_swarm.cc: the node core's swarm simulator
Command register_doctor(CLI::App& app);  // cmd_doctor.cc: checks of this machine and the run's setup

inline std::vector<Command> all_commands(CLI::App& app) {
  std::vector<Command> out;
  out.push_back(register_simulate(app));
  out.push_back(register_keygen(app));
  out.push_back(register_id(app));
  out.push_back(register_listen(app));
  out.push_back(register_ping(app));
  out.push_back(register_train(app));
  out.push_back(register_status(app));
  out.push_back(register_run(app));
  out.push_back(register_init_run(app));
  out.push_back(register_join(app));
  out.push_back(register_demo(app));
  out.push_back(register_export(app));
  out.push_back(register_simulate_swarm(app));
  out.push_back(register_doctor(app));
  return out;
}

}  // namespace noloco::cli
