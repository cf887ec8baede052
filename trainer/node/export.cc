// Checkpoint -> safetensors file (export.h). Format facts from the safetensors spec
// (huggingface/safetensors README, "Format"): u64 LE header size, JSON header mapping each
// tensor name to dtype, shape and data_offsets [begin, end) relative to the byte buffer after
// the header, an optional "__metadata__" map of strings to strings; the header may be padded
// with spaces.
#include "trainer/node/export.h"

#include <filesystem>
#include <sstream>

#include <nlohmann/json.hpp>

#include "common/durable_file.h"
#include "trainer/core/model.h"
#include "trainer/node/checkpointing.h"

namespace noloco::node {
namespace {

const char* which_name(ExportWhich w) {
  switch (w) {
    case ExportWhich::kPhi: return "phi";
    case ExportWhich::kTheta: return "theta";
    case ExportWhich::kBoth: return "both";
  }
  return "?";
}

// "node.preset=tiny" from the run config text in the manifest; empty when absent.
std::string config_value(const std::string& config, const std::string& key) {
  std::istringstream in(config);
  std::string line;
  const std::string want = key + "=";
  while (std::getline(in, line))
    if (line.rfind(want, 0) == 0) return line.substr(want.size());
  return {};
}

}  // namespace

Result<ExportWhich> parse_export_which(const std::string& s) {
  if (s == "phi") return ExportWhich::kPhi;
  if (s == "theta") return ExportWhich::kTheta;
  if (s == "both") return ExportWhich::kBoth;
  return invalid_argument("--weights must be phi, theta or both, not '" + s + "'");
}

Result<SafetensorsParts> safetensors_parts(const storage::Checkpoint& cp, ExportWhich which) {
  NOLOCO_ASSIGN_OR_RETURN(trainer::ModelConfig mc, model_config_of(cp));
  const std::vector<trainer::ParameterInfo> layout = trainer::parameter_layout(mc);
  const uint64_t total_bytes = static_cast<uint64_t>(trainer::parameter_count(mc)) * 4;

  SafetensorsParts out;
  std::vector<std::string> prefixes;
  auto add = [&](const char* blob_name, std::string prefix) -> Status {
    const storage::NamedBlob* b = cp.find(blob_name);
    if (b == nullptr) return corrupt(std::string("checkpoint has no '") + blob_name + "' blob");
    if (b->data.size() != total_bytes)
      return corrupt(std::string(blob_name) + " holds " + std::to_string(b->data.size()) +
                     " bytes, the model in its config needs " + std::to_string(total_bytes));
    out.data.push_back(b);
    prefixes.push_back(std::move(prefix));
    return Status::Ok();
  };
  if (which == ExportWhich::kPhi) NOLOCO_RETURN_IF_ERROR(add("phi", ""));
  if (which == ExportWhich::kTheta) NOLOCO_RETURN_IF_ERROR(add("theta", ""));
  if (which == ExportWhich::kBoth) {
    NOLOCO_RETURN_IF_ERROR(add("phi", "phi."));
    NOLOCO_RETURN_IF_ERROR(add("theta", "theta."));
  }

  // safetensors metadata values must be strings.
  std::string preset = config_value(cp.manifest.config, "node.preset");
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  header["__metadata__"] = {{"format", kExportFormat},
                            {"run_id", cp.manifest.run_id},
                            {"step", std::to_string(cp.manifest.step)},
                            {"outer_step", std::to_string(cp.manifest.outer_step)},
                            {"created_unix_ms", std::to_string(cp.manifest.created_unix_ms)},
                            {"preset", preset.empty() ? std::string("custom") : preset},
                            {"vocab_size", std::to_string(mc.vocab_size)},
                            {"d_model", std::to_string(mc.d_model)},
                            {"n_layer", std::to_string(mc.n_layer)},
                            {"n_head", std::to_string(mc.n_head)},
                            {"context", std::to_string(mc.context)},
                            {"weights", which_name(which)}};
  uint64_t offset = 0;
  for (const std::string& prefix : prefixes) {
    for (const auto& info : layout) {
      const uint64_t n = static_cast<uint64_t>(info.numel) * 4;
      nlohmann::ordered_json t = nlohmann::ordered_json::object();
      t["dtype"] = "F32";
      t["shape"] = info.shape;
      t["data_offsets"] = nlohmann::ordered_json::array({offset, offset + n});
      header[prefix + info.name] = std::move(t);
      offset += n;
    }
  }
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');  // keeps the data 8-byte aligned
  put_u64_le(out.header, text.size());
  out.header.insert(out.header.end(), text.begin(), text.end());
  out.data_bytes = offset;
  return out;
}

Result<Bytes> safetensors_from_checkpoint(const storage::Checkpoint& cp, ExportWhich which) {
  NOLOCO_ASSIGN_OR_RETURN(SafetensorsParts parts, safetensors_parts(cp, which));
  Bytes out = std::move(parts.header);
  out.reserve(out.size() + parts.data_bytes);
  // The stored blobs are already little-endian fp32 in layout order: each tensor is a slice.
  for (const storage::NamedBlob* b : parts.data) out.insert(out.end(), b->data.begin(), b->data.end());
  return out;
}

Result<uint64_t> write_safetensors_file(const storage::Checkpoint& cp, ExportWhich which, const std::string& path,
                                        bool overwrite) {
  namespace fs = std::filesystem;
  std::error_code ec;
  const fs::file_status st = fs::status(path, ec);
  if (fs::is_directory(st)) return invalid_argument("--out " + path + " is a directory");
  if (fs::exists(st) && !overwrite)
    return Status(StatusCode::kAlreadyExists, path + " exists (use --force to replace it)");
  NOLOCO_ASSIGN_OR_RETURN(SafetensorsParts parts, safetensors_parts(cp, which));

  // An export is meant to be shared: 0644. Without --force an existing file is never replaced,
  // also when it appeared after the check above.
  const DurableFileOptions how{.mode = 0644, .existing = overwrite ? Existing::kReplace : Existing::kKeep};
  Status written = write_file_durably(path, how, [&](DurableSink& out) -> Status {
    NOLOCO_RETURN_IF_ERROR(out.write(parts.header));
    for (const storage::NamedBlob* b : parts.data) NOLOCO_RETURN_IF_ERROR(out.write(b->data));
    return Status::Ok();
  });
  if (written.code() == StatusCode::kAlreadyExists)
    return Status(StatusCode::kAlreadyExists, path + " exists (use --force to replace it)");
  NOLOCO_RETURN_IF_ERROR(written);
  return static_cast<uint64_t>(parts.header.size() + parts.data_bytes);
}

}  // namespace noloco::node
