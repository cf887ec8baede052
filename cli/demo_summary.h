// The end of `noloco demo`: a table of every node (validation loss before/after, exchanges,
// partners, bytes on the wire compressed vs raw fp32), summary.json and the loss-curve PNG.
#pragma once

#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "cli/demo_progress.h"

namespace noloco::cli {

struct DemoSummaryInfo {
  std::string run_id;
  std::filesystem::path dir;          // summary.json and loss_curves.png go here
  int peers = 0;                      // named in the chart's title
  double unigram_entropy_nats = 0.0;  // of the corpus: the loss of a model that ignores context
  std::string method = "noloco";      // the run's method: named in the table, JSON and chart
};

// Prints the table and totals to `out`, writes dir/summary.json and dir/loss_curves.png (a chart
// that cannot be written is reported, not fatal). Returns whether every node's validation loss
// fell below its starting value.
bool finish_demo_summary(const std::vector<NodeState>& nodes, const Progress& progress,
                         const DemoSummaryInfo& info, std::FILE* out = stdout);

}  // namespace noloco::cli
