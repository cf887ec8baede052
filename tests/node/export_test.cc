// `noloco export`: the safetensors bytes parse back with an independent reader (header length,
// JSON, contiguous offsets, sizes = numel·4, shapes from the parameter layout) and hold exactly
// the checkpoint's φ (or θ); bad stores, bad checkpoints and an existing --out are refused.
#include <catch2/catch.hpp>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>

#include "node_test_util.h"
#include "storage/store.h"
#include "trainer/core/model.h"
#include "trainer/node/checkpointing.h"
#include "trainer/node/export.h"

using noloco::Bytes;
using noloco::storage::Checkpoint;
using noloco::test::run_noloco;
using noloco::test::TempDir;
namespace fs = std::filesystem;

namespace {

struct Parsed {
  nlohmann::json header;
  Bytes data;
};

// A strict reader written from the format description (docs/export.md), independent of the writer.
Parsed parse_safetensors(const Bytes& file) {
  REQUIRE(file.size() >= 8);
  const uint64_t n = noloco::get_u64_le(file.data());
  REQUIRE(n % 8 == 0);
  REQUIRE(8 + n <= file.size());
  Parsed p;
  p.header = nlohmann::json::parse(file.begin() + 8, file.begin() + 8 + static_cast<long>(n));
  p.data.assign(file.begin() + 8 + static_cast<long>(n), file.end());
  return p;
}

// Checks every tensor of `p` under `prefix` against the layout and `expected` (fp32 LE bytes),
// and returns the end offset of the last one.
uint64_t check_tensors(const Parsed& p, const std::string& prefix,
                       const std::vector<noloco::trainer::ParameterInfo>& layout, noloco::ByteView expected,
                       uint64_t start) {
  uint64_t at = start;
  for (const auto& info : layout) {
    INFO(prefix + info.name);
    REQUIRE(p.header.contains(prefix + info.name));
    const auto& t = p.header[prefix + info.name];
    CHECK(t["dtype"] == "F32");
    CHECK(t["shape"].get<std::vector<int64_t>>() == info.shape);
    const auto off = t["data_offsets"].get<std::vector<uint64_t>>();
    REQUIRE(off.size() == 2);
    CHECK(off[0] == at);  // contiguous, in layout order
    REQUIRE(off[1] - off[0] == static_cast<uint64_t>(info.numel) * 4);
    REQUIRE(off[1] <= p.data.size());
    CHECK(std::memcmp(p.data.data() + off[0], expected.data() + info.offset * 4, off[1] - off[0]) == 0);
    at = off[1];
  }
  return at;
}

std::string tiny_config_blob() {
  return "format=noloco-replica-state/1\nmodel.vocab_size=256\nmodel.d_model=64\nmodel.n_layer=2\n"
         "model.n_head=4\nmodel.context=64\n";
}

Bytes pattern(int64_t numel, float base) {
  Bytes b(static_cast<size_t>(numel) * 4);
  for (int64_t i = 0; i < numel; ++i) {
    const float f = base + static_cast<float>(i % 1000) * 1e-3f;
    std::memcpy(b.data() + 4 * i, &f, 4);
  }
  return b;
}

// A tiny-model checkpoint with recognisable φ and θ.
Checkpoint tiny_checkpoint() {
  auto mc = noloco::trainer::model_preset("tiny");
  REQUIRE(mc.ok());
  const int64_t n = noloco::trainer::parameter_count(*mc);
  Checkpoint cp;
  cp.manifest.run_id = "run-x";
  cp.manifest.step = 12;
  cp.manifest.outer_step = 2;
  cp.manifest.config = tiny_config_blob() + "node.preset=tiny\n";
  cp.blobs.push_back({"config", noloco::to_bytes(tiny_config_blob())});
  cp.blobs.push_back({"phi", pattern(n, 1.0f)});
  cp.blobs.push_back({"theta", pattern(n, -2.0f)});
  return cp;
}

Bytes read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return Bytes(std::istreambuf_iterator<char>(f), {});
}

size_t files_in(const std::string& dir) {
  size_t n = 0;
  for ([[maybe_unused]] const auto& e : fs::directory_iterator(dir)) ++n;
  return n;
}

std::unique_ptr<noloco::storage::Store> open_rw(const std::string& path) {
  noloco::storage::StoreOptions so;
  so.path = path;
  auto s = noloco::storage::Store::open(so);
  REQUIRE(s.ok());
  return std::move(s).value();
}

bool mentions(const std::string& text, const std::string& what) { return text.find(what) != std::string::npos; }

}  // namespace

TEST_CASE("safetensors bytes parse back with the layout's names, shapes and the stored values") {
  auto mc = noloco::trainer::model_preset("tiny");
  REQUIRE(mc.ok());
  const auto layout = noloco::trainer::parameter_layout(*mc);
  const int64_t n = noloco::trainer::parameter_count(*mc);
  Checkpoint cp = tiny_checkpoint();

  SECTION("phi only, with the run's metadata") {
    auto bytes = noloco::node::safetensors_from_checkpoint(cp, noloco::node::ExportWhich::kPhi);
    REQUIRE(bytes.ok());
    Parsed p = parse_safetensors(*bytes);
    CHECK(p.header.size() == layout.size() + 1);  // + __metadata__
    const auto& meta = p.header["__metadata__"];
    CHECK(meta["format"] == "noloco-export/1");
    CHECK(meta["run_id"] == "run-x");
    CHECK(meta["step"] == "12");
    CHECK(meta["outer_step"] == "2");
    CHECK(meta["preset"] == "tiny");
    CHECK(meta["d_model"] == "64");
    CHECK(meta["weights"] == "phi");
    for (const auto& [k, v] : meta.items()) CHECK(v.is_string());  // safetensors: str -> str
    CHECK(check_tensors(p, "", layout, cp.find("phi")->data, 0) == p.data.size());
    CHECK(p.data.size() == static_cast<size_t>(n) * 4);
  }
  SECTION("both: phi.* then theta.*") {
    auto bytes = noloco::node::safetensors_from_checkpoint(cp, noloco::node::ExportWhich::kBoth);
    REQUIRE(bytes.ok());
    Parsed p = parse_safetensors(*bytes);
    const uint64_t mid = check_tensors(p, "phi.", layout, cp.find("phi")->data, 0);
    CHECK(check_tensors(p, "theta.", layout, cp.find("theta")->data, mid) == p.data.size());
  }
  SECTION("a phi blob of the wrong size is refused") {
    cp.blobs[1].data.resize(cp.blobs[1].data.size() - 4);
    auto bytes = noloco::node::safetensors_from_checkpoint(cp, noloco::node::ExportWhich::kPhi);
    CHECK(bytes.status().code() == noloco::StatusCode::kCorrupt);
  }
  SECTION("a checkpoint without phi is refused") {
    cp.blobs.erase(cp.blobs.begin() + 1);
    auto bytes = noloco::node::safetensors_from_checkpoint(cp, noloco::node::ExportWhich::kPhi);
    CHECK(bytes.status().code() == noloco::StatusCode::kCorrupt);
  }
  SECTION("a config blob without the model shape is refused") {
    cp.blobs[0].data = noloco::to_bytes("format=x\n");
    auto bytes = noloco::node::safetensors_from_checkpoint(cp, noloco::node::ExportWhich::kPhi);
    CHECK(bytes.status().code() == noloco::StatusCode::kCorrupt);
  }
}

TEST_CASE("noloco export writes the trained store's phi, and an existing file needs --force") {
  TempDir dir;
  const std::string db = dir.sub("db"), out = dir.sub("out"), file = out + "/w.safetensors";
  fs::create_directories(out);
  auto train = run_noloco(noloco::test::train_args(db, 12));
  INFO(train.out << train.err);
  REQUIRE(train.exit_code == 0);

  auto ex = run_noloco({"export", "--db", db, "--out", file});
  INFO(ex.out << ex.err);
  REQUIRE(ex.exit_code == 0);
  CHECK(mentions(ex.out, "step 12"));
  auto both = run_noloco({"export", "--db", db, "--out", out + "/both.safetensors", "--weights", "both"});
  REQUIRE(both.exit_code == 0);

  noloco::storage::StoreOptions so;
  so.path = db;
  so.mode = noloco::storage::OpenMode::kReadOnly;
  auto store = noloco::storage::Store::open(so);
  REQUIRE(store.ok());
  auto cp = (*store)->load_latest();
  REQUIRE(cp.ok());
  CHECK(cp->manifest.step == 12);
  auto mc = noloco::node::model_config_of(*cp);
  REQUIRE(mc.ok());
  const auto layout = noloco::trainer::parameter_layout(*mc);

  const Bytes first = read_file(file);
  Parsed p = parse_safetensors(first);
  CHECK(check_tensors(p, "", layout, cp->find("phi")->data, 0) == p.data.size());
  CHECK(p.header["__metadata__"]["run_id"] == train.field("run"));
  CHECK(p.header["__metadata__"]["step"] == "12");
  CHECK(p.header["__metadata__"]["preset"] == "tiny");
  Parsed pb = parse_safetensors(read_file(out + "/both.safetensors"));
  const uint64_t mid = check_tensors(pb, "phi.", layout, cp->find("phi")->data, 0);
  CHECK(check_tensors(pb, "theta.", layout, cp->find("theta")->data, mid) == pb.data.size());

  // An existing file is refused and left as it was; --force replaces it; no temporary is left.
  auto again = run_noloco({"export", "--db", db, "--out", file, "--weights", "theta"});
  CHECK(again.exit_code == 1);
  CHECK(mentions(again.err, "exists"));
  CHECK(read_file(file) == first);
  auto forced = run_noloco({"export", "--db", db, "--out", file, "--weights", "theta", "--force"});
  REQUIRE(forced.exit_code == 0);
  Parsed pt = parse_safetensors(read_file(file));
  CHECK(check_tensors(pt, "", layout, cp->find("theta")->data, 0) == pt.data.size());
  CHECK(files_in(out) == 2);
}

TEST_CASE("noloco export refuses missing, empty and corrupt stores and bad flags") {
  TempDir dir;
  const std::string out = dir.sub("w.safetensors");
  SECTION("no store") {
    auto r = run_noloco({"export", "--db", dir.sub("nothing"), "--out", out});
    CHECK(r.exit_code == 1);
    CHECK(mentions(r.err, "no store at"));
    CHECK_FALSE(fs::exists(dir.sub("nothing")));
  }
  SECTION("a store without a checkpoint") {
    REQUIRE(open_rw(dir.sub("db"))->set_run("run-x", noloco::to_bytes("m")).ok());
    auto r = run_noloco({"export", "--db", dir.sub("db"), "--out", out});
    CHECK(r.exit_code == 1);
    CHECK(mentions(r.err, "holds no checkpoint"));
  }
  SECTION("a damaged store directory") {
    REQUIRE(open_rw(dir.sub("db"))->write_checkpoint(tiny_checkpoint()).ok());
    std::ofstream(dir.sub("db") + "/CURRENT", std::ios::trunc) << "\x01garbage";
    auto r = run_noloco({"export", "--db", dir.sub("db"), "--out", out});
    CHECK(r.exit_code == 1);
    CHECK(mentions(r.err, "Corrupt"));
  }
  SECTION("the only checkpoint's tensor bytes damaged on disk") {
    {
      auto store = open_rw(dir.sub("db"));
      REQUIRE(store->write_checkpoint(tiny_checkpoint()).ok());
      REQUIRE(store->flush().ok());
    }
    // The tensor bytes sit in the checkpoint's data file (docs/storage.md), nothing but blobs.
    fs::path chunks;
    for (const auto& e : fs::directory_iterator(dir.sub("db") + "/checkpoint_data"))
      if (e.path().extension() == ".data") chunks = e.path();
    REQUIRE_FALSE(chunks.empty());
    REQUIRE(fs::file_size(chunks) > 100000);
    {
      std::fstream f(chunks, std::ios::in | std::ios::out | std::ios::binary);
      f.seekg(static_cast<std::streamoff>(fs::file_size(chunks) / 2));
      const char was = static_cast<char>(f.get());
      f.seekp(static_cast<std::streamoff>(fs::file_size(chunks) / 2));
      f.put(static_cast<char>(was ^ 0x5a));
    }
    auto r = run_noloco({"export", "--db", dir.sub("db"), "--out", out});
    CHECK(r.exit_code == 1);
    CHECK(mentions(r.err, "verifies"));
  }
  SECTION("a checkpoint whose phi does not fit its model config") {
    Checkpoint cp = tiny_checkpoint();
    cp.blobs[1].data.resize(400);
    REQUIRE(open_rw(dir.sub("db"))->write_checkpoint(cp).ok());
    auto r = run_noloco({"export", "--db", dir.sub("db"), "--out", out});
    CHECK(r.exit_code == 1);
    CHECK(mentions(r.err, "phi holds 400 bytes"));
  }
  SECTION("unknown format or weights") {
    REQUIRE(open_rw(dir.sub("db"))->write_checkpoint(tiny_checkpoint()).ok());
    auto f = run_noloco({"export", "--db", dir.sub("db"), "--out", out, "--format", "onnx"});
    CHECK(f.exit_code == 2);
    CHECK(mentions(f.err, "unknown --format"));
    auto w = run_noloco({"export", "--db", dir.sub("db"), "--out", out, "--weights", "delta"});
    CHECK(w.exit_code == 2);
  }
  SECTION("--out is a directory") {
    REQUIRE(open_rw(dir.sub("db"))->write_checkpoint(tiny_checkpoint()).ok());
    auto r = run_noloco({"export", "--db", dir.sub("db"), "--out", dir.path.string()});
    CHECK(r.exit_code == 1);
    CHECK(mentions(r.err, "is a directory"));
  }
  CHECK_FALSE(fs::exists(out));
}
