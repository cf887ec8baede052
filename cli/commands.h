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

Command register_simulate(CLI::App& app);  // cmd_simulate.cc
Command register_train(CLI::App& app);     // cmd_train.cc
Command register_status(CLI::App& app);    // cmd_status.cc

inline std::vector<Command> all_commands(CLI::App& app) {
  std::vector<Command> out;
  (void)app;  // verbs are added below as their modules land
  out.push_back(register_simulate(app));
  out.push_back(register_train(app));
  out.push_back(register_status(app));
  return out;
}

}  // namespace noloco::cli
