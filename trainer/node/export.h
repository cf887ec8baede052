// Writes a checkpoint's weights in the safetensors format (docs/export.md): an 8-byte
// little-endian header length N, N bytes of JSON header (padded with spaces to a multiple of 8),
// then the raw little-endian tensor data. One "F32" tensor per named model parameter, names and
// shapes from trainer/core's parameter layout (model.h). Torch-free.
#pragma once

#include <string>

#include "common/bytes.h"
#include "common/status.h"
#include "storage/records.h"

namespace noloco::node {

inline constexpr char kExportFormat[] = "noloco-export/1";

enum class ExportWhich {
  kPhi,    // slow weights φ under the plain parameter names ("wte", "h.0.ln1.weight", ...)
  kTheta,  // fast weights θ under the plain names
  kBoth,   // "phi.<name>" and "theta.<name>"
};
Result<ExportWhich> parse_export_which(const std::string& s);  // "phi" | "theta" | "both"

// The header (8-byte length + padded JSON) and the blobs whose bytes follow it, in order.
// Kept apart so a multi-gigabyte model is written straight from the checkpoint, not copied.
struct SafetensorsParts {
  Bytes header;
  std::vector<const storage::NamedBlob*> data;  // point into the checkpoint passed in
  uint64_t data_bytes = 0;
};

// Checks that `checkpoint` holds a "config" blob with the model shape and the chosen weight
// blobs of exactly parameter_count·4 bytes, and builds the header. __metadata__ records the
// export format, run id, step, outer step, preset, model shape and which weights.
Result<SafetensorsParts> safetensors_parts(const storage::Checkpoint& checkpoint, ExportWhich which);

// The whole file in memory (tests, small models).
Result<Bytes> safetensors_from_checkpoint(const storage::Checkpoint& checkpoint, ExportWhich which);

// Writes the file to a temporary file next to `path`, fsyncs it and renames it into place, so
// a reader never sees half a file. An existing `path` is refused (kAlreadyExists) unless
// `overwrite`. Returns the number of bytes written.
Result<uint64_t> write_safetensors_file(const storage::Checkpoint& checkpoint, ExportWhich which,
                                        const std::string& path, bool overwrite);

}  // namespace noloco::node
