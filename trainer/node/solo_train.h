// Single-node training that checkpoints into a Store and resumes from it by itself
// (`noloco train`, docs/checkpoints.md). One replica, shard 0 of 1. Every H inner steps it takes
// a solo NoLoCo outer step: with a group of one, mean φ = φ and mean Δ = Δ, so the rule reduces
// to δ ← α·δ + β·(θ − φ); φ ← φ + δ; θ ← φ. H = 0 turns outer steps off (plain Adam).
//
// Torch-free API for the CLI.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>

#include "common/status.h"

namespace noloco::node {

struct SoloTrainOptions {
  std::string db;                  // the store directory (created when missing)
  int64_t steps = 600;             // total inner steps of the run (also the LR schedule length)
  int64_t checkpoint_every = 50;   // inner steps between async checkpoints; 0: only at the end
  int64_t H = 25;                  // inner steps between solo outer steps; 0: none
  double alpha = 0.5, beta = 0.7;  // outer momentum and step size
  uint64_t seed = 1;
  std::string preset = "tiny";
  std::string data = "/usr/share/games/fortunes";
  double lr = 3e-3;
  int64_t warmup = 50;
  int64_t batch = 16;
  int threads = 0;  // torch intra-op threads; 0: trainer::default_threads (1 below 2M parameters, else torch's)
  std::string device = "cpu";
  uint32_t keep_last = 3;
  int64_t log_every = 10;  // inner steps between progress lines; 0: none

  Status validate() const;
  // The run config text stored in every checkpoint; resume refuses a different one.
  // (The replica's own config lines come from trainer/core; these are the node's.)
  std::string node_config_lines() const;
};

struct SoloTrainResult {
  int64_t start_step = 0;  // where this process began (0 for a fresh run)
  int64_t end_step = 0;
  bool resumed = false;
  bool interrupted = false;  // stopped by *stop before reaching `steps`
  std::string run_id;
  std::string theta_sha256;  // hex SHA-256 of θ's little-endian fp32 bytes at the end
  std::string phi_sha256;
};

struct SoloTrainSinks {
  std::function<void(const std::string&)> line;  // progress lines (one per log_every steps)
};

// Opens the store read-write, resumes from its newest valid checkpoint (if any), trains to
// `steps`, checkpointing every `checkpoint_every` steps through the async writer, and writes a
// final checkpoint synchronously at the end or when *stop becomes true.
Result<SoloTrainResult> run_solo_training(const SoloTrainOptions& options, const SoloTrainSinks& sinks,
                                          const std::atomic<bool>* stop);

}  // namespace noloco::node
