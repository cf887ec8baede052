// In-process simulation of N replicas trained with one outer method (docs/simulate.md).
// Torch-free API: the CLI fills SimulateOptions and receives JSON lines and progress text.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "common/status.h"

namespace noloco::trainer {

enum class Method { kSync, kDiloco, kDilocoNesterov, kNoloco, kNone };
Result<Method> parse_method(const std::string& name);
const char* method_name(Method m);

// Inner steps between synchronisations when --H is not given: NoLoCo uses h, DiLoCo 2h
// (the paper's 50 vs 100 ratio), so both exchange the same number of tensors.
inline constexpr int64_t kDefaultNolocoH = 10;

struct SimulateOptions {
  Method method = Method::kNoloco;
  int replicas = 8;
  int64_t steps = 300;                  // inner steps per replica
  std::optional<int64_t> H;             // default: method dependent (see kDefaultNolocoH)
  std::optional<double> alpha, beta, gamma;  // default: method dependent (docs/simulate.md)
  int group_size = 2;                   // NoLoCo group size n
  // Every replica reads the whole training stream from its own seeded offset (as `noloco run`
  // nodes do) instead of only its 1/N shard. Not for sync (one model fed by all shards).
  bool whole_stream = false;
  // NoLoCo: 1 = in each group, the member drawn first mixes the others' payloads from their
  // previous outer step (the asynchrony of a real swarm, where a caller's partner answers with
  // its last completed snapshot); 0 = everyone mixes current payloads (the paper's setting).
  int partner_lag = 0;
  std::string wire = "auto";            // NoLoCo payload: auto | delta-phi | theta
  std::string codec;                    // empty: raw fp32; else fp32|bf16|int8|int4[+zstd]
  uint64_t seed = 1;
  // Seed of the data offsets alone (with whole_stream); 0: derived from `seed`. Lets a run
  // vary what each replica reads while the initial weights stay those of `seed`.
  uint64_t data_seed = 0;
  std::string preset = "tiny";
  std::string data = "/usr/share/games/fortunes";
  double lr = 5e-3;
  int64_t warmup = 30;
  int64_t batch = 8;         // sequences per replica per inner step
  int64_t eval_every = 60;   // inner steps between evaluations (a multiple of 2h)
  int64_t eval_batches = 8;  // held-out set = eval_batches × batch windows
  int threads = 0;           // torch intra-op threads; 0 = hardware concurrency
  std::string device = "cpu";

  // Fills method-dependent defaults and checks ranges.
  Status resolve();
};

struct SimulateSinks {
  std::function<void(const std::string& json_line)> emit;  // one JSON object, no newline
  std::function<void(const std::string& text)> progress;   // human progress line
};

// NoLoCo's seeded random perfect matching for one outer step: a Fisher-Yates shuffle of 0..N-1
// keyed by (seed, outer_step), cut into consecutive groups of group_size (the last group is
// smaller when group_size does not divide N).
std::vector<std::vector<int>> noloco_groups(int n_replicas, int group_size, uint64_t seed,
                                            int64_t outer_step);

// Runs the whole simulation. Options must have been resolve()d (run_simulation does it again).
Status run_simulation(SimulateOptions options, const SimulateSinks& sinks);

}  // namespace noloco::trainer
