// Runs one training node in the foreground with the CLI's sinks (cmd_run.cc): address on the
// first stdout line, then human lines or --json events, optional --metrics; SIGINT/SIGTERM stop
// it with a checkpoint. `noloco run` and `noloco join` both end here.
#pragma once

#include <string>

#include <CLI/CLI.hpp>

#include "trainer/node/node_run.h"

namespace noloco::cli {

// The process exit code: 0, 2 for a refusal of the options or the run (kInvalidArgument), else 1.
// `verb` prefixes its error lines ("noloco <verb>: ...").
int run_node_command(const char* verb, const node::NodeOptions& options, bool json, const std::string& metrics_addr);

// The flags both verbs share that tune a node (threads, checkpoints, exchange, waits, --json,
// --metrics, ...), bound to `o`, `json` and `metrics`.
void add_node_tuning_flags(CLI::App* app, node::NodeOptions& o, bool& json, std::string& metrics);

}  // namespace noloco::cli
