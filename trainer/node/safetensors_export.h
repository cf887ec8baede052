// Writes a checkpoint's weights in the safetensors format (docs/export.md): an 8-byte
// little-endian header length N, N bytes of JSON header (padded with spaces to a multiple of 8),
// then the raw little-endian tensor data. One "F32" tensor per named model parameter, shapes from
// trainer/core's parameter layout (model.h). Torch-free.
#pragma once

#include <string>

#include "common/bytes.h"
#include "common/status.h"
#include "storage/records.h"

namespace noloco::node {

enum class ExportWhich {
  kPhi,   // slow weights φ under the plain parameter names ("wte", "h.0.ln1.weight", ...)
  kTheta, // fast weights θ under the plain names
  kBoth,  // "phi.<name>" and "theta.<name>"
};
Result<ExportWhich> parse_export_which(const std::string& s);  // "phi" | "theta" | "both"

// The safetensors file bytes for `checkpoint` (which must hold "config" and the chosen blobs).
// __metadata__ records the run id, step and format.
Result<Bytes> safetensors_from_checkpoint(const storage::Checkpoint& checkpoint, ExportWhich which);

}  // namespace noloco::node
