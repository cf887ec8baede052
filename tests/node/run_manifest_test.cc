// The run manifest: canonical JSON, run id, strict parsing and the manifest file.
#include "trainer/node/run_manifest.h"

#include <catch2/catch.hpp>
#include <cmath>
#include <fstream>
#include <functional>
#include <limits>
#include <nlohmann/json.hpp>
#include <set>

#include "common/encoding.h"
#include "common/hash.h"
#include "node_test_util.h"

using namespace noloco;
using namespace noloco::node;
using json = nlohmann::json;

namespace {

const std::vector<std::string> kKeys = {
    "H",     "alpha", "batch", "beta",   "codec", "data", "data_sha256", "gamma", "lr",
    "name",  "preset", "private_network", "seed", "steps", "version", "warmup", "wire_form", "zstd"};

json canonical_json(const RunManifest& m) { return json::parse(manifest_to_json(m)); }

bool message_has(const Status& st, const std::string& needle) {
  return st.message().find(needle) != std::string::npos;
}

}  // namespace

TEST_CASE("default manifest is valid and survives a JSON round trip", "[wire][manifest]") {
  RunManifest m;
  REQUIRE(m.validate().ok());
  const std::string text = manifest_to_json(m);
  auto back = manifest_from_json(text);
  REQUIRE(back.ok());
  CHECK(manifest_to_json(*back) == text);
  CHECK(back->preset == "tiny");
  CHECK(back->steps == 600);
  CHECK(back->H == 20);
  CHECK(back->alpha == 0.5);
  CHECK(back->lr == 3e-3);
  CHECK(back->seed == 1);
  CHECK(back->codec == "bf16");
  CHECK(back->zstd);
  CHECK_FALSE(back->private_network);

  // Values that stress number formatting come back bit-exact.
  m.lr = 1.0 / 3.0;
  m.alpha = 0.1;
  m.seed = std::numeric_limits<uint64_t>::max();
  m.steps = (int64_t{1} << 40);
  m.name = "run \"quoted\" \\ émoji 🚀";
  auto back2 = manifest_from_json(manifest_to_json(m));
  REQUIRE(back2.ok());
  CHECK(back2->lr == m.lr);
  CHECK(back2->alpha == m.alpha);
  CHECK(back2->seed == m.seed);
  CHECK(back2->steps == m.steps);
  CHECK(back2->name == m.name);
  CHECK(run_id_of(*back2) == run_id_of(m));
}

TEST_CASE("canonical JSON: sorted keys, compact, every field, stable", "[wire][manifest]") {
  RunManifest m;
  const std::string text = manifest_to_json(m);
  CHECK(text.find(' ') == std::string::npos);  // compact (the default strings have no spaces)
  CHECK(text.find('\n') == std::string::npos);
  // Keys in byte order ("H" sorts before lowercase).
  std::vector<std::string> keys;
  const json parsed = canonical_json(m);  // named: items() only borrows it
  for (auto& [k, v] : parsed.items()) keys.push_back(k);
  CHECK(keys == kKeys);
  size_t last = 0;
  for (const auto& k : kKeys) {
    const size_t at = text.find("\"" + k + "\":");
    REQUIRE(at != std::string::npos);
    CHECK(at >= last);
    last = at;
  }
  CHECK(manifest_to_json(m) == text);
  // Parsing a pretty, reordered form gives back the same canonical text and run id.
  json reordered = json::parse(text);
  std::string pretty = reordered.dump(4);
  auto back = manifest_from_json(pretty);
  REQUIRE(back.ok());
  CHECK(manifest_to_json(*back) == text);
  CHECK(run_id_of(*back) == run_id_of(m));
}

TEST_CASE("run id is the first 32 hex chars of sha256 of the canonical JSON", "[wire][manifest]") {
  RunManifest m;
  const std::string id = run_id_of(m);
  REQUIRE(id.size() == 32);
  for (char c : id) CHECK(((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')));
  const std::string canonical = manifest_to_json(m);
  const Sha256Digest d = sha256(as_bytes(canonical));
  CHECK(id == hex_encode(ByteView(d.data(), d.size())).substr(0, 32));
}

TEST_CASE("changing any field changes the run id", "[wire][manifest]") {
  const RunManifest base;
  std::vector<std::pair<std::string, std::function<void(RunManifest&)>>> edits = {
      {"name", [](RunManifest& m) { m.name = "other"; }},
      {"preset", [](RunManifest& m) { m.preset = "small"; }},
      {"steps", [](RunManifest& m) { m.steps = 601; }},
      {"H", [](RunManifest& m) { m.H = 21; }},
      {"alpha", [](RunManifest& m) { m.alpha = 0.5000000001; }},
      {"beta", [](RunManifest& m) { m.beta = 0.6; }},
      {"gamma", [](RunManifest& m) { m.gamma = 0.6; }},
      {"lr", [](RunManifest& m) { m.lr = 3.0001e-3; }},
      {"warmup", [](RunManifest& m) { m.warmup = 51; }},
      {"batch", [](RunManifest& m) { m.batch = 17; }},
      {"codec", [](RunManifest& m) { m.codec = "int8"; }},
      {"zstd", [](RunManifest& m) { m.zstd = false; }},
      {"wire_form", [](RunManifest& m) { m.wire_form = "theta"; }},  // gamma == beta by default
      {"data", [](RunManifest& m) { m.data = "/tmp/corpus"; }},
      {"data_sha256", [](RunManifest& m) { m.data_sha256 = std::string(64, 'a'); }},
      {"seed", [](RunManifest& m) { m.seed = 2; }},
      {"private_network", [](RunManifest& m) { m.private_network = true; }},
      {"method", [](RunManifest& m) { m.method = "diloco"; }},
  };
  std::set<std::string> ids = {run_id_of(base)};
  for (const auto& [field, edit] : edits) {
    INFO(field);
    RunManifest m = base;
    edit(m);
    REQUIRE(m.validate().ok());
    CHECK(ids.insert(run_id_of(m)).second);
    // And the change survives the canonical round trip.
    auto back = manifest_from_json(manifest_to_json(m));
    REQUIRE(back.ok());
    CHECK(run_id_of(*back) == run_id_of(m));
  }
  CHECK(ids.size() == edits.size() + 1);
}

TEST_CASE("a noloco manifest keeps the canonical text and run id it had before the method field", "[wire][manifest]") {
  // Pinned from the default manifest as main wrote it before 'method' existed.
  const std::string before =
      R"({"H":20,"alpha":0.5,"batch":16,"beta":0.7,"codec":"bf16","data":"/usr/share/games/fortunes",)"
      R"("data_sha256":"","gamma":0.7,"lr":0.003,"name":"noloco-run","preset":"tiny",)"
      R"("private_network":false,"seed":1,"steps":600,"version":1,"warmup":50,)"
      R"("wire_form":"delta_phi","zstd":true})";
  const RunManifest m;
  CHECK(m.method == "noloco");
  CHECK(manifest_to_json(m) == before);
  CHECK(run_id_of(m) == "46d62b01d9249932a089541279244a70");
  auto back = manifest_from_json(before);  // no "method" key: read as noloco
  REQUIRE(back.ok());
  CHECK(back->method == "noloco");
  CHECK(run_id_of(*back) == run_id_of(m));
  // Written out, "noloco" means the same run: the canonical form leaves it out again.
  json explicit_noloco = json::parse(before);
  explicit_noloco["method"] = "noloco";
  auto spelled = manifest_from_json(explicit_noloco.dump());
  REQUIRE(spelled.ok());
  CHECK(manifest_to_json(*spelled) == before);
}

TEST_CASE("a diloco manifest round-trips with its method and a run id of its own", "[wire][manifest]") {
  RunManifest m;
  m.method = "diloco";
  m.alpha = 0.3;
  REQUIRE(m.validate().ok());
  const std::string text = manifest_to_json(m);
  CHECK(canonical_json(m).at("method") == "diloco");
  auto back = manifest_from_json(text);
  REQUIRE(back.ok());
  CHECK(back->method == "diloco");
  CHECK(back->alpha == 0.3);
  CHECK(manifest_to_json(*back) == text);
  CHECK(run_id_of(*back) == run_id_of(m));
  CHECK(run_id_of(m) != run_id_of(RunManifest{}));
}

TEST_CASE("an unknown or mistyped method is refused, naming the key", "[wire][manifest]") {
  RunManifest m;
  m.method = "sync";
  CHECK(message_has(m.validate(), "'method' must be noloco or diloco"));
  json j = canonical_json(RunManifest{});
  j["method"] = "DiLoCo";
  auto r = manifest_from_json(j.dump());
  REQUIRE_FALSE(r.ok());
  CHECK(message_has(r.status(), "'method' must be noloco or diloco"));
  j["method"] = 1;
  auto t = manifest_from_json(j.dump());
  REQUIRE_FALSE(t.ok());
  CHECK(message_has(t.status(), "'method' must be a string"));
}

TEST_CASE("validate refuses every out-of-range field, naming it", "[wire][manifest]") {
  std::vector<std::pair<std::string, std::function<void(RunManifest&)>>> bad = {
      {"version", [](RunManifest& m) { m.version = 2; }},
      {"name", [](RunManifest& m) { m.name = ""; }},
      {"name", [](RunManifest& m) { m.name = std::string(129, 'x'); }},
      {"name", [](RunManifest& m) { m.name = "tab\there"; }},
      {"name", [](RunManifest& m) { m.name = "\xff\xfe"; }},
      {"preset", [](RunManifest& m) { m.preset = "huge"; }},
      {"steps", [](RunManifest& m) { m.steps = 0; }},
      {"steps", [](RunManifest& m) { m.steps = -5; }},
      {"H", [](RunManifest& m) { m.H = 0; }},
      {"H", [](RunManifest& m) { m.H = 601; }},
      {"alpha", [](RunManifest& m) { m.alpha = 1.0; }},
      {"alpha", [](RunManifest& m) { m.alpha = -0.1; }},
      {"alpha", [](RunManifest& m) { m.alpha = std::nan(""); }},
      {"beta", [](RunManifest& m) { m.beta = 0.0; }},
      {"beta", [](RunManifest& m) { m.beta = std::numeric_limits<double>::infinity(); }},
      {"gamma", [](RunManifest& m) { m.gamma = -1.0; }},
      {"lr", [](RunManifest& m) { m.lr = 0.0; }},
      {"lr", [](RunManifest& m) { m.lr = std::nan(""); }},
      {"warmup", [](RunManifest& m) { m.warmup = 601; }},
      {"warmup", [](RunManifest& m) { m.warmup = -1; }},
      {"batch", [](RunManifest& m) { m.batch = 0; }},
      {"batch", [](RunManifest& m) { m.batch = 65537; }},
      {"codec", [](RunManifest& m) { m.codec = "fp16"; }},
      {"wire_form", [](RunManifest& m) { m.wire_form = "phi"; }},
      {"wire_form", [](RunManifest& m) { m.wire_form = "theta"; m.gamma = 0.5; }},
      {"data", [](RunManifest& m) { m.data = ""; }},
      {"data_sha256", [](RunManifest& m) { m.data_sha256 = "abc"; }},
      {"data_sha256", [](RunManifest& m) { m.data_sha256 = std::string(64, 'A'); }},
  };
  for (const auto& [field, edit] : bad) {
    INFO(field);
    RunManifest m;
    edit(m);
    Status st = m.validate();
    CHECK(st.code() == StatusCode::kInvalidArgument);
    CHECK(message_has(st, "'" + field + "'"));
    // manifest_to_json never throws, and the text is refused again on the way in (except
    // invalid UTF-8, which the writer replaces by U+FFFD: that text is another, valid manifest).
    const std::string text = manifest_to_json(m);
    if (m.name != "\xff\xfe") CHECK_FALSE(manifest_from_json(text).ok());
  }
  RunManifest theta;
  theta.wire_form = "theta";
  theta.gamma = theta.beta = 0.9;
  CHECK(theta.validate().ok());
}

TEST_CASE("manifest_from_json refuses missing, unknown, duplicate and mistyped keys", "[wire][manifest]") {
  const json good = canonical_json(RunManifest{});
  for (const auto& key : kKeys) {
    INFO(key);
    json j = good;
    j.erase(key);
    auto r = manifest_from_json(j.dump());
    REQUIRE_FALSE(r.ok());
    CHECK(message_has(r.status(), "'" + key + "' is missing"));

    // A value of the wrong JSON type for every key.
    json wrong = good;
    if (good[key].is_string()) wrong[key] = 5;
    else if (good[key].is_boolean()) wrong[key] = 1;
    else wrong[key] = "1";
    auto w = manifest_from_json(wrong.dump());
    REQUIRE_FALSE(w.ok());
    CHECK(message_has(w.status(), "'" + key + "'"));

    json nested = good;
    nested[key] = json::array({1, 2});
    CHECK_FALSE(manifest_from_json(nested.dump()).ok());
  }
  json extra = good;
  extra["learning_rate"] = 0.1;
  auto r = manifest_from_json(extra.dump());
  REQUIRE_FALSE(r.ok());
  CHECK(message_has(r.status(), "'learning_rate' is not a known key"));

  // Duplicate key: nlohmann would keep the last one silently.
  std::string text = good.dump();
  text.insert(1, "\"steps\":700,");
  auto d = manifest_from_json(text);
  REQUIRE_FALSE(d.ok());
  CHECK(message_has(d.status(), "'steps' appears more than once"));

  // Integers must be integers; a seed must be non-negative and fit in 64 bits.
  json f = good;
  f["steps"] = 600.0;
  CHECK(message_has(manifest_from_json(f.dump()).status(), "'steps' must be an integer"));
  json s = good;
  s["seed"] = -1;
  CHECK(message_has(manifest_from_json(s.dump()).status(), "'seed'"));
  std::string big = good.dump();
  big.replace(big.find("\"seed\":1"), 8, "\"seed\":18446744073709551616");
  CHECK(message_has(manifest_from_json(big).status(), "'seed'"));
  std::string huge_steps = good.dump();
  huge_steps.replace(huge_steps.find("\"steps\":600"), 11, "\"steps\":9223372036854775808");
  CHECK(message_has(manifest_from_json(huge_steps).status(), "'steps'"));
  // A number for a double field may be written as an integer.
  json i = good;
  i["lr"] = 1;
  CHECK(manifest_from_json(i.dump()).ok());
}

TEST_CASE("manifest_from_json refuses malformed and oversized text", "[wire][manifest]") {
  const std::string good = manifest_to_json(RunManifest{});
  for (const std::string& text :
       {std::string(), std::string("null"), std::string("[]"), std::string("\"x\""),
        std::string("{"), good + "x", good + "{}", good.substr(0, good.size() - 1),
        std::string(100000, '['), std::string("{\"a\":") + std::string(60000, '[')}) {
    CHECK_FALSE(manifest_from_json(text).ok());
  }
  // Every truncation of the canonical text is refused.
  for (size_t n = 0; n < good.size(); ++n) CHECK_FALSE(manifest_from_json(good.substr(0, n)).ok());
  // Over the cap: refused by size before parsing, even if it would be valid JSON.
  std::string padded = good;
  padded.insert(1, std::string(kMaxManifestBytes, ' '));
  auto r = manifest_from_json(padded);
  REQUIRE_FALSE(r.ok());
  CHECK(r.status().code() == StatusCode::kTooLarge);
  // Invalid UTF-8 inside a string.
  std::string bad_utf8 = good;
  bad_utf8.replace(bad_utf8.find("noloco-run"), 10, "noloco-\xc3(n");
  CHECK_FALSE(manifest_from_json(bad_utf8).ok());
  // A control character smuggled in through an escape.
  std::string ctl = good;
  ctl.replace(ctl.find("noloco-run"), 10, "noloco\\u0000run");
  CHECK(message_has(manifest_from_json(ctl).status(), "'name'"));
}

TEST_CASE("check_run_id accepts the manifest's own id and names both ids otherwise", "[wire][manifest]") {
  RunManifest m;
  CHECK(check_run_id(m, run_id_of(m)).ok());
  RunManifest other = m;
  other.seed = 99;
  const std::string wrong = run_id_of(other);
  Status st = check_run_id(m, wrong);
  CHECK(st.code() == StatusCode::kInvalidArgument);
  CHECK(message_has(st, "the manifest hashes to " + run_id_of(m) + ", not to the run id " + wrong +
                            " you gave: "));
  CHECK_FALSE(check_run_id(m, "").ok());
  CHECK_FALSE(check_run_id(m, run_id_of(m).substr(0, 31)).ok());
}

TEST_CASE("manifest files: atomic write, load, clear errors", "[wire][manifest]") {
  test::TempDir dir;
  RunManifest m;
  m.name = "file-test";
  m.steps = 1000;
  const std::string path = dir.sub("run.json");
  REQUIRE(write_manifest_file(path, m).ok());
  // Pretty (human-readable), and no temporary file left behind.
  std::ifstream in(path);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  CHECK(text.find('\n') != text.rfind('\n'));
  size_t files = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir.path)) (void)e, ++files;
  CHECK(files == 1);
  auto back = load_manifest_file(path);
  REQUIRE(back.ok());
  CHECK(run_id_of(*back) == run_id_of(m));
  CHECK(manifest_to_json(*back) == manifest_to_json(m));

  // Overwrite in place.
  m.steps = 2000;
  REQUIRE(write_manifest_file(path, m).ok());
  CHECK(load_manifest_file(path)->steps == 2000);

  auto missing = load_manifest_file(dir.sub("nope.json"));
  CHECK(missing.status().code() == StatusCode::kNotFound);
  CHECK(message_has(missing.status(), "nope.json"));

  auto isdir = load_manifest_file(dir.path.string());
  CHECK_FALSE(isdir.ok());

  const std::string corrupt_path = dir.sub("corrupt.json");
  std::ofstream(corrupt_path) << text.substr(0, text.size() / 2);
  auto c = load_manifest_file(corrupt_path);
  REQUIRE_FALSE(c.ok());
  CHECK(message_has(c.status(), "corrupt.json"));

  const std::string big_path = dir.sub("big.json");
  std::ofstream(big_path) << std::string(kMaxManifestBytes + 10, ' ');
  CHECK(load_manifest_file(big_path).status().code() == StatusCode::kTooLarge);

  // An invalid manifest is not written.
  RunManifest bad = m;
  bad.H = 0;
  CHECK_FALSE(write_manifest_file(dir.sub("bad.json"), bad).ok());
  CHECK_FALSE(std::filesystem::exists(dir.sub("bad.json")));
  // Nor into a directory that does not exist.
  CHECK(write_manifest_file(dir.sub("no/such/dir/run.json"), m).code() == StatusCode::kIoError);
}
