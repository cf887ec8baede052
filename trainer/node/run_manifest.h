// The run manifest: every setting that must be identical on all nodes of one training run, and
// the run id derived from it. Torch-free (common/ and nlohmann-json only), so it can be parsed
// from untrusted bytes anywhere, including fuzz targets. Wire and file format:
// docs/protocols/run.md.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "common/status.h"

namespace noloco::node {

inline constexpr std::string_view kRunProtocolId = "/noloco/run/1.0.0";
inline constexpr size_t kMaxManifestBytes = 64 * 1024;

struct RunManifest {
  int version = 1;
  std::string name = "noloco-run";
  std::string preset = "tiny";      // trainer::model_preset name
  int64_t steps = 600;              // inner steps of the run (LR schedule length)
  int64_t H = 20;                   // inner steps per outer step
  double alpha = 0.5, beta = 0.7, gamma = 0.7;
  double lr = 3e-3;
  int64_t warmup = 50;
  int64_t batch = 16;
  std::string codec = "bf16";       // fp32|bf16|int8|int4 (codec::mode_name)
  bool zstd = true;
  std::string wire_form = "delta_phi";  // or "theta" (valid only when gamma == beta)
  std::string data = "/usr/share/games/fortunes";  // default corpus path (a node may override)
  std::string data_sha256;          // lowercase hex sha256 of the corpus bytes; empty = unchecked
  uint64_t seed = 1;
  bool private_network = false;     // nodes must run with a PSK
  // How nodes combine their work at each outer step: "noloco" (random pairs, no barrier) or
  // "diloco" (all-reduce among the live nodes, heavy-ball outer step). The canonical form carries
  // the key only when it is not "noloco", so manifests from before the field keep their run id.
  std::string method = "noloco";

  // kInvalidArgument naming the first field out of range (ranges: docs/protocols/run.md).
  Status validate() const;
};

// Canonical form: sorted keys, compact, every field present. This exact text is what
// run_id_of hashes and what /noloco/run/1.0.0 serves.
std::string manifest_to_json(const RunManifest& m);

// Strict: at most kMaxManifestBytes, one JSON object, every key present exactly once with the
// right type, no unknown keys (each refusal names the key), then validate().
Result<RunManifest> manifest_from_json(std::string_view text);

// First 32 hex chars (128 bits) of sha256(manifest_to_json(m)).
std::string run_id_of(const RunManifest& m);

// kInvalidArgument "the manifest hashes to <X>, not to the run id <Y> you gave: ..." on mismatch.
Status check_run_id(const RunManifest& m, std::string_view expected_run_id);

// Reads and parses a manifest file (pretty or canonical JSON). kNotFound when missing,
// kIoError when unreadable, kTooLarge over the cap, otherwise manifest_from_json's errors;
// every message names the path.
Result<RunManifest> load_manifest_file(const std::string& path);

// Writes pretty-printed JSON atomically (temporary file in the same directory, then rename).
Status write_manifest_file(const std::string& path, const RunManifest& m);

}  // namespace noloco::node
