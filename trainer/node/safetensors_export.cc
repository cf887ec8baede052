// Checkpoint -> safetensors bytes (safetensors_export.h). Format facts from the safetensors spec
// (huggingface/safetensors README, "Format"): u64 LE header size, JSON header with dtype, shape and
// data_offsets [begin, end) relative to the byte buffer after the header, optional "__metadata__"
// string map; the header may be padded with spaces.
#include "trainer/node/safetensors_export.h"

#include <nlohmann/json.hpp>

#include "trainer/core/model.h"
#include "trainer/node/checkpointing.h"

namespace noloco::node {

Result<ExportWhich> parse_export_which(const std::string& s) {
  if (s == "phi") return ExportWhich::kPhi;
  if (s == "theta") return ExportWhich::kTheta;
  if (s == "both") return ExportWhich::kBoth;
  return invalid_argument("--weights must be phi, theta or both, not '" + s + "'");
}

Result<Bytes> safetensors_from_checkpoint(const storage::Checkpoint& cp, ExportWhich which) {
  NOLOCO_ASSIGN_OR_RETURN(trainer::ModelConfig mc, model_config_of(cp));
  const std::vector<trainer::ParameterInfo> layout = trainer::parameter_layout(mc);
  const uint64_t total_bytes = static_cast<uint64_t>(trainer::parameter_count(mc)) * 4;

  struct Part {
    std::string prefix;
    const storage::NamedBlob* blob;
  };
  std::vector<Part> parts;
  auto add = [&](const char* blob_name, std::string prefix) -> Status {
    const storage::NamedBlob* b = cp.find(blob_name);
    if (b == nullptr) return corrupt(std::string("checkpoint has no '") + blob_name + "' blob");
    if (b->data.size() != total_bytes)
      return corrupt(std::string(blob_name) + " holds " + std::to_string(b->data.size()) +
                     " bytes, the model needs " + std::to_string(total_bytes));
    parts.push_back({std::move(prefix), b});
    return Status::Ok();
  };
  if (which == ExportWhich::kPhi) NOLOCO_RETURN_IF_ERROR(add("phi", ""));
  if (which == ExportWhich::kTheta) NOLOCO_RETURN_IF_ERROR(add("theta", ""));
  if (which == ExportWhich::kBoth) {
    NOLOCO_RETURN_IF_ERROR(add("phi", "phi."));
    NOLOCO_RETURN_IF_ERROR(add("theta", "theta."));
  }

  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  header["__metadata__"] = {{"format", "noloco-export/1"},
                            {"run_id", cp.manifest.run_id},
                            {"step", std::to_string(cp.manifest.step)},
                            {"outer_step", std::to_string(cp.manifest.outer_step)},
                            {"weights", which == ExportWhich::kPhi     ? "phi"
                                        : which == ExportWhich::kTheta ? "theta"
                                                                       : "both"}};
  uint64_t offset = 0;
  for (const Part& p : parts) {
    for (const auto& info : layout) {
      const uint64_t n = static_cast<uint64_t>(info.numel) * 4;
      header[p.prefix + info.name] = {{"dtype", "F32"},
                                      {"shape", info.shape},
                                      {"data_offsets", {offset, offset + n}}};
      offset += n;
    }
  }
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');  // keeps the data 8-byte aligned

  Bytes out;
  out.reserve(8 + text.size() + offset);
  put_u64_le(out, text.size());
  out.insert(out.end(), text.begin(), text.end());
  // The stored blobs are already little-endian fp32 in layout order: each tensor is a slice.
  for (const Part& p : parts) out.insert(out.end(), p.blob->data.begin(), p.blob->data.end());
  return out;
}

}  // namespace noloco::node
