// Torch-free export and import of everything a replica needs to resume exactly: θ, φ, δ, Adam
// moments and step count, inner/outer step counters (the schedule position is the inner step),
// the seed every random draw derives from, the data cursor and the run config. The storage module
// stores the blobs as bytes; docs/training.md lists the blob names and layouts.
//
// Import is all-or-nothing: every blob is checked (names, sizes, finiteness, config equal to the
// replica's own, cursor in range) before anything is written.
#pragma once

#include <span>
#include <string>
#include <vector>

#include "common/bytes.h"
#include "common/status.h"

namespace noloco::trainer {

class Replica;

struct NamedBlob {
  std::string name;
  Bytes bytes;
};

inline constexpr char kReplicaStateFormat[] = "noloco-replica-state/1";

Result<std::vector<NamedBlob>> export_state(const Replica& replica);
Status import_state(Replica& replica, std::span<const NamedBlob> blobs);

// The config as canonical "key=value" lines (also the "config" blob).
std::string describe_config(const Replica& replica);

}  // namespace noloco::trainer
