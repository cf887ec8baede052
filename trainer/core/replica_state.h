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

// The same blobs, in the same order, without copying the tensors: the small ones as bytes, the
// tensor ones as views of the live tensors' memory (valid until the replica next changes or
// goes). For a snapshot into memory the caller chose (node::make_checkpoint); a tensor that is
// not CPU contiguous fp32 is copied into `bytes` instead.
struct BlobSource {
  std::string name;
  Bytes bytes;
  ByteView view;
  ByteView data() const { return view.data() != nullptr ? view : ByteView(bytes); }
};
Result<std::vector<BlobSource>> view_state(const Replica& replica);
Status import_state(Replica& replica, std::span<const NamedBlob> blobs);

// The config as canonical "key=value" lines (also the "config" blob).
std::string describe_config(const Replica& replica);

}  // namespace noloco::trainer
