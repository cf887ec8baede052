#include "trainer/node/run_manifest.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <nlohmann/json.hpp>
#include <set>

#include "common/durable_file.h"
#include "common/encoding.h"
#include "common/errno_text.h"
#include "common/hash.h"
#include "trainer/core/codec.h"
#include "trainer/core/model.h"

namespace noloco::node {

namespace {

using json = nlohmann::json;

constexpr size_t kMaxNameBytes = 128;
constexpr size_t kMaxPathBytes = 4096;
constexpr int64_t kMaxSteps = int64_t{1} << 40;

// Strings end up in logs and file names' neighbourhood: valid UTF-8 without control characters.
bool clean_utf8(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<uint8_t>(s[i]);
    if (c < 0x20 || c == 0x7f) return false;
    if (c < 0x80) {
      ++i;
      continue;
    }
    size_t n;
    uint32_t cp;
    if ((c & 0xe0) == 0xc0) n = 1, cp = c & 0x1f;
    else if ((c & 0xf0) == 0xe0) n = 2, cp = c & 0x0f;
    else if ((c & 0xf8) == 0xf0) n = 3, cp = c & 0x07;
    else return false;
    if (i + n >= s.size()) return false;
    for (size_t k = 1; k <= n; ++k) {
      const auto cc = static_cast<uint8_t>(s[i + k]);
      if ((cc & 0xc0) != 0x80) return false;
      cp = (cp << 6) | (cc & 0x3f);
    }
    // Overlong forms, surrogates and values past U+10FFFF.
    if ((n == 1 && cp < 0x80) || (n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) ||
        cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
      return false;
    i += n + 1;
  }
  return true;
}

bool is_lower_hex(std::string_view s) {
  for (char c : s)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  return true;
}

Status bad(const std::string& field, const std::string& why) {
  return invalid_argument("run manifest: '" + field + "' " + why);
}

bool known_codec(std::string_view name) {
  using codec::Mode;
  for (Mode m : {Mode::kFp32, Mode::kBf16, Mode::kInt8, Mode::kInt4})
    if (name == codec::mode_name(m)) return true;
  return false;
}

json to_json(const RunManifest& m) {
  json j = json::object();  // std::map underneath: keys come out sorted
  j["version"] = m.version;
  j["name"] = m.name;
  j["preset"] = m.preset;
  j["steps"] = m.steps;
  j["H"] = m.H;
  j["alpha"] = m.alpha;
  j["beta"] = m.beta;
  j["gamma"] = m.gamma;
  j["lr"] = m.lr;
  j["warmup"] = m.warmup;
  j["batch"] = m.batch;
  j["codec"] = m.codec;
  j["zstd"] = m.zstd;
  j["wire_form"] = m.wire_form;
  j["data"] = m.data;
  j["data_sha256"] = m.data_sha256;
  j["seed"] = m.seed;
  j["private_network"] = m.private_network;
  if (m.method != "noloco") j["method"] = m.method;  // absent = noloco: older run ids unchanged
  return j;
}

// Keys a manifest may leave out, with the meaning of their absence (RunManifest's default).
constexpr const char* kOptionalKey = "method";

// The keys every manifest has, exactly (kept in one place so parser and writer agree).
const std::set<std::string>& manifest_keys() {
  static const std::set<std::string> keys = [] {
    std::set<std::string> k;
    const json defaults = to_json(RunManifest{});  // a named object: items() only borrows it
    for (const auto& [key, value] : defaults.items()) k.insert(key);
    return k;
  }();
  return keys;
}

Status get_int(const json& j, const char* key, int64_t& out) {
  const json& v = j.at(key);
  if (v.is_number_unsigned()) {
    const auto u = v.get<uint64_t>();
    if (u > static_cast<uint64_t>(INT64_MAX)) return bad(key, "is too large");
    out = static_cast<int64_t>(u);
    return Status::Ok();
  }
  if (v.is_number_integer()) {
    out = v.get<int64_t>();
    return Status::Ok();
  }
  return bad(key, "must be an integer");
}

Status get_double(const json& j, const char* key, double& out) {
  const json& v = j.at(key);
  if (!v.is_number()) return bad(key, "must be a number");
  out = v.get<double>();
  return Status::Ok();
}

Status get_string(const json& j, const char* key, std::string& out) {
  const json& v = j.at(key);
  if (!v.is_string()) return bad(key, "must be a string");
  out = v.get<std::string>();
  return Status::Ok();
}

Status get_bool(const json& j, const char* key, bool& out) {
  const json& v = j.at(key);
  if (!v.is_boolean()) return bad(key, "must be true or false");
  out = v.get<bool>();
  return Status::Ok();
}

}  // namespace

Status RunManifest::validate() const {
  if (version != 1) return bad("version", "is " + std::to_string(version) + "; only 1 is known");
  if (name.empty() || name.size() > kMaxNameBytes || !clean_utf8(name))
    return bad("name", "must be 1.." + std::to_string(kMaxNameBytes) +
                           " bytes of UTF-8 without control characters");
  if (preset.size() > kMaxNameBytes || !trainer::model_preset(preset).ok()) {
    std::string known;
    for (const auto& p : trainer::model_preset_names()) known += (known.empty() ? "" : ", ") + p;
    return bad("preset", "is not a known model preset (known: " + known + ")");
  }
  if (steps < 1 || steps > kMaxSteps) return bad("steps", "must be in 1..2^40");
  if (H < 1 || H > steps) return bad("H", "must be in 1..steps");
  if (!(alpha >= 0.0 && alpha < 1.0)) return bad("alpha", "must be in [0, 1)");
  if (!(beta > 0.0 && beta <= 2.0)) return bad("beta", "must be in (0, 2]");
  if (!(gamma >= 0.0 && gamma <= 2.0)) return bad("gamma", "must be in [0, 2]");
  if (!(lr > 0.0 && lr <= 10.0)) return bad("lr", "must be in (0, 10]");
  if (warmup < 0 || warmup > steps) return bad("warmup", "must be in 0..steps");
  if (batch < 1 || batch > 65536) return bad("batch", "must be in 1..65536");
  if (!known_codec(codec)) return bad("codec", "must be one of fp32, bf16, int8, int4");
  if (wire_form != "delta_phi" && wire_form != "theta")
    return bad("wire_form", "must be delta_phi or theta");
  if (wire_form == "theta" && gamma != beta)
    return bad("wire_form", "theta is only valid when gamma == beta (docs/algorithm.md §2)");
  if (data.empty() || data.size() > kMaxPathBytes || !clean_utf8(data))
    return bad("data", "must be a path of 1..4096 bytes of UTF-8 without control characters");
  if (!data_sha256.empty() && (data_sha256.size() != 64 || !is_lower_hex(data_sha256)))
    return bad("data_sha256", "must be empty or 64 lowercase hex digits");
  if (method != "noloco" && method != "diloco") return bad("method", "must be noloco or diloco");
  return Status::Ok();
}

std::string manifest_to_json(const RunManifest& m) {
  // replace: never throws on bytes that are not UTF-8 (validate() refuses such manifests anyway).
  return to_json(m).dump(-1, ' ', false, json::error_handler_t::replace);
}

Result<RunManifest> manifest_from_json(std::string_view text) {
  if (text.size() > kMaxManifestBytes)
    return too_large("run manifest: " + std::to_string(text.size()) + " bytes, over the cap of " +
                     std::to_string(kMaxManifestBytes));
  // nlohmann keeps the last of duplicate keys; a manifest must say each thing once.
  std::string duplicate;
  std::set<std::string> seen_keys;
  json::parser_callback_t cb = [&](int depth, json::parse_event_t event, json& parsed) {
    if (event == json::parse_event_t::key && depth == 1 && parsed.is_string()) {
      const auto key = parsed.get<std::string>();
      if (!seen_keys.insert(key).second && duplicate.empty()) duplicate = key;
    }
    return true;
  };
  json j = json::parse(text.begin(), text.end(), cb, /*allow_exceptions=*/false);
  if (j.is_discarded()) return invalid_argument("run manifest: not valid JSON");
  if (!j.is_object()) return invalid_argument("run manifest: not a JSON object");
  if (!duplicate.empty()) return bad(duplicate, "appears more than once");
  const auto& keys = manifest_keys();
  for (const auto& [key, value] : j.items())
    if (!keys.count(key) && key != kOptionalKey) return bad(key, "is not a known key");
  for (const auto& key : keys)
    if (!j.contains(key)) return bad(key, "is missing");
  const bool has_method = j.contains(kOptionalKey);

  RunManifest m;
  int64_t version = 0;
  NOLOCO_RETURN_IF_ERROR(get_int(j, "version", version));
  if (version != 1) return bad("version", "is " + std::to_string(version) + "; only 1 is known");
  m.version = 1;
  NOLOCO_RETURN_IF_ERROR(get_string(j, "name", m.name));
  NOLOCO_RETURN_IF_ERROR(get_string(j, "preset", m.preset));
  NOLOCO_RETURN_IF_ERROR(get_int(j, "steps", m.steps));
  NOLOCO_RETURN_IF_ERROR(get_int(j, "H", m.H));
  NOLOCO_RETURN_IF_ERROR(get_double(j, "alpha", m.alpha));
  NOLOCO_RETURN_IF_ERROR(get_double(j, "beta", m.beta));
  NOLOCO_RETURN_IF_ERROR(get_double(j, "gamma", m.gamma));
  NOLOCO_RETURN_IF_ERROR(get_double(j, "lr", m.lr));
  NOLOCO_RETURN_IF_ERROR(get_int(j, "warmup", m.warmup));
  NOLOCO_RETURN_IF_ERROR(get_int(j, "batch", m.batch));
  NOLOCO_RETURN_IF_ERROR(get_string(j, "codec", m.codec));
  NOLOCO_RETURN_IF_ERROR(get_bool(j, "zstd", m.zstd));
  NOLOCO_RETURN_IF_ERROR(get_string(j, "wire_form", m.wire_form));
  NOLOCO_RETURN_IF_ERROR(get_string(j, "data", m.data));
  NOLOCO_RETURN_IF_ERROR(get_string(j, "data_sha256", m.data_sha256));
  const json& seed = j.at("seed");
  if (!seed.is_number_unsigned()) return bad("seed", "must be a non-negative integer");
  m.seed = seed.get<uint64_t>();
  NOLOCO_RETURN_IF_ERROR(get_bool(j, "private_network", m.private_network));
  // Written out as "noloco" it is accepted too: the run id hashes the canonical form, which
  // leaves the default out either way.
  if (has_method) NOLOCO_RETURN_IF_ERROR(get_string(j, kOptionalKey, m.method));
  NOLOCO_RETURN_IF_ERROR(m.validate());
  return m;
}

std::string run_id_of(const RunManifest& m) {
  const std::string canonical = manifest_to_json(m);
  const Sha256Digest d = sha256(as_bytes(canonical));
  return hex_encode(ByteView(d.data(), d.size())).substr(0, 32);
}

Status check_run_id(const RunManifest& m, std::string_view expected_run_id) {
  const std::string actual = run_id_of(m);
  if (actual == expected_run_id) return Status::Ok();
  return invalid_argument("the manifest hashes to " + actual + ", not to the run id " +
                          std::string(expected_run_id) +
                          " you gave: it describes a different run (or was edited); use the "
                          "manifest of that run, or the run id printed for this manifest");
}

Result<RunManifest> load_manifest_file(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return not_found("run manifest " + path + ": no such file");
    return io_error("run manifest " + path + ": cannot open: " + errno_text(errno));
  }
  std::string text;
  Status st;
  struct stat sb {};
  if (::fstat(fd, &sb) != 0) {
    st = io_error("run manifest " + path + ": cannot stat: " + errno_text(errno));
  } else if (!S_ISREG(sb.st_mode)) {
    st = io_error("run manifest " + path + ": not a regular file");
  } else {
    // Read at most one byte past the cap, so a huge (or growing) file is refused without
    // reading all of it.
    char buf[8192];
    while (st.ok()) {
      const ssize_t n = ::read(fd, buf, sizeof buf);
      if (n < 0) {
        if (errno == EINTR) continue;
        st = io_error("run manifest " + path + ": read failed: " + errno_text(errno));
      } else if (n == 0) {
        break;
      } else {
        text.append(buf, static_cast<size_t>(n));
        if (text.size() > kMaxManifestBytes)
          st = too_large("run manifest " + path + ": larger than " +
                         std::to_string(kMaxManifestBytes) + " bytes");
      }
    }
  }
  ::close(fd);
  NOLOCO_RETURN_IF_ERROR(st);
  auto m = manifest_from_json(text);
  if (!m.ok()) return m.status().context(path);
  return m;
}

Status write_manifest_file(const std::string& path, const RunManifest& m) {
  NOLOCO_RETURN_IF_ERROR(m.validate().context(path));
  const std::string text = to_json(m).dump(2, ' ', false, json::error_handler_t::replace) + "\n";
  return write_file_durably(path, as_bytes(text), {.mode = 0644}).context("run manifest " + path);
}

}  // namespace noloco::node
