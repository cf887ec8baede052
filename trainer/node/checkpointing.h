// A replica's full state <-> a storage checkpoint. trainer/core exports the state as named blobs
// (replica_state.h); this file wraps them in a storage::Checkpoint with a manifest (run id, run
// config, step counters) and checks the manifest against the blobs on the way back.
// docs/checkpoints.md lists every field.
//
// Torch-free: the replica is only passed through to export_state/import_state.
#pragma once

#include <cstdint>
#include <map>
#include <string>

#include "common/status.h"
#include "storage/records.h"
#include "trainer/core/model.h"

namespace noloco::trainer {
class Replica;
}

namespace noloco::node {

inline constexpr char kNodeCheckpointFormat[] = "noloco-node-checkpoint/1";

// The step counters stored in a replica state's "counters" blob.
struct StateCounters {
  uint64_t optimizer_step = 0;
  uint64_t inner_step = 0;
  uint64_t outer_step = 0;
};
Result<StateCounters> read_counters(const storage::Checkpoint& checkpoint);

// Exports the replica and wraps it. `run_config` is the whole run's config text (the replica's
// config plus whatever the caller adds, e.g. the outer method); resume refuses a different one.
// The blobs are slices of one snapshot buffer taken from `pool` (the checkpoint writer's, so
// the previous checkpoint's buffer is reused), or of a fresh one without a pool.
Result<storage::Checkpoint> make_checkpoint(const trainer::Replica& replica, const std::string& run_id,
                                            const std::string& run_config,
                                            std::map<std::string, std::string> fields = {},
                                            storage::SnapshotPool* pool = nullptr);

// Has `pool` hold a snapshot buffer for this replica's state, its pages faulted in, so the first
// checkpoint costs the training thread a copy and no page faults (SnapshotPool::prepare). At the
// start of a run that writes checkpoints; the buffer is as resident as a checkpoint makes it.
// `in_background`: on a thread of the pool's, while the node starts (joins, syncs); the first
// checkpoint waits for it if it comes first.
Status prepare_snapshots(const trainer::Replica& replica, storage::SnapshotPool& pool, bool in_background = false);

// Checks the manifest (format, run config equal to `run_config`, step counters equal to the
// counters blob) and imports the blobs. All-or-nothing: on failure the replica is untouched.
Status restore_checkpoint(trainer::Replica& replica, const storage::Checkpoint& checkpoint,
                          const std::string& run_config);

// The model shape recorded in a checkpoint's "config" blob (for export without torch state).
Result<trainer::ModelConfig> model_config_of(const storage::Checkpoint& checkpoint);

// "first differing line" explanation of two config texts; empty when equal.
std::string config_difference(const std::string& saved, const std::string& running);

}  // namespace noloco::node
