// Entry point of the `noloco` binary: parses the verb and hands over to its cmd_*.cc.
#include <CLI/CLI.hpp>

#include <cstdio>
#include <string>

#include "cli/commands.h"
#include "cli/openmp_policy.h"
#include "common/log.h"

int main(int argc, char** argv) {
  CLI::App app{"noloco: peer-to-peer NoLoCo training over a libp2p-compatible overlay"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "noloco 0.1.0");
  std::string log_level = "info";
  app.add_option("--log-level", log_level, "trace, debug, info, warn, error or off")
      ->capture_default_str();

  std::vector<noloco::cli::Command> commands = noloco::cli::all_commands(app);

  CLI11_PARSE(app, argc, argv);
  noloco::configure_logging(log_level);
  for (auto& cmd : commands) {
    if (!cmd.app->parsed()) continue;
    const std::string& verb = cmd.app->get_name();
    if (verb == "simulate" || verb == "train" || verb == "run" || verb == "join") noloco::cli::reexec_with_thread_policy(argv);
    return cmd.run();
  }
  return 2;
}
