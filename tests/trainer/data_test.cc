// Corpus loading, split, token files, entropy, shards, schedule.
#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <set>

#include "trainer/core/data.h"
#include "trainer/core/schedule.h"

using namespace noloco;
using namespace noloco::trainer;
namespace fs = std::filesystem;

namespace {
fs::path temp_dir(const std::string& name) {
  fs::path p = fs::temp_directory_path() / ("noloco_data_test_" + name + "_" + std::to_string(::getpid()));
  fs::remove_all(p);
  fs::create_directories(p);
  return p;
}
void write(const fs::path& p, const Bytes& b) {
  std::ofstream o(p, std::ios::binary);
  o.write(reinterpret_cast<const char*>(b.data()), static_cast<std::streamsize>(b.size()));
}
}  // namespace

TEST_CASE("split is deterministic, disjoint and covers the corpus", "[data]") {
  // Position-coded corpus: each 4-byte word holds its own index, so any byte's origin is known.
  Bytes corpus;
  for (uint32_t i = 0; i < 30000; ++i) put_u32_le(corpus, i);
  const CorpusSplit a = split_corpus(corpus), b = split_corpus(corpus);
  CHECK(a.train == b.train);
  CHECK(a.val == b.val);
  CHECK(a.train.size() + a.val.size() == corpus.size());
  std::set<uint32_t> train_words, val_words;
  for (size_t i = 0; i + 4 <= a.train.size(); i += 4) train_words.insert(get_u32_le(a.train.data() + i));
  for (size_t i = 0; i + 4 <= a.val.size(); i += 4) val_words.insert(get_u32_le(a.val.data() + i));
  for (uint32_t w : val_words) {
    CHECK(train_words.count(w) == 0);
    CHECK((w * 4 / kSplitBlock) % kValEvery == kValEvery - 1);
  }
  CHECK(val_words.size() > 0);
  // 120000 bytes = 29 full blocks + 1216 bytes: blocks 9 and 19 and the partial block 29 are held out.
  CHECK(a.val.size() == 2 * kSplitBlock + (corpus.size() - 29 * kSplitBlock));
}

TEST_CASE("uint16 token files: good, odd length, id too large", "[data]") {
  const fs::path dir = temp_dir("bin");
  write(dir / "good.bin", Bytes{65, 0, 66, 0, 255, 0});
  write(dir / "odd.bin", Bytes{65, 0, 66});
  write(dir / "big.bin", Bytes{65, 0, 0, 1});  // id 256
  auto good = read_token_file((dir / "good.bin").string());
  REQUIRE(good.ok());
  CHECK(*good == Bytes{65, 66, 255});
  auto odd = read_token_file((dir / "odd.bin").string());
  REQUIRE_FALSE(odd.ok());
  CHECK(odd.status().message().find("odd") != std::string::npos);
  auto big = read_token_file((dir / "big.bin").string());
  REQUIRE_FALSE(big.ok());
  CHECK(big.status().message().find("256") != std::string::npos);
  CHECK_FALSE(read_token_file((dir / "missing.bin").string()).ok());
  // load_corpus dispatches on the extension.
  auto via_corpus = load_corpus((dir / "good.bin").string());
  REQUIRE(via_corpus.ok());
  CHECK(*via_corpus == Bytes{65, 66, 255});
  fs::remove_all(dir);
}

TEST_CASE("folders: sorted, binary files and duplicate symlinks skipped", "[data]") {
  const fs::path dir = temp_dir("dir");
  write(dir / "b.txt", to_bytes("bravo"));
  write(dir / "a.txt", to_bytes("alpha"));
  write(dir / "a.dat", Bytes{0, 0, 0, 2, 1});
  fs::create_symlink(dir / "a.txt", dir / "a.u8");
  fs::create_directories(dir / "sub");
  write(dir / "sub" / "c", to_bytes("charlie"));
  auto c = load_corpus(dir.string());
  REQUIRE(c.ok());
  CHECK(to_string(*c) == "alphabravocharlie");
  // A single binary file named explicitly is an error, not silently empty.
  CHECK_FALSE(load_corpus((dir / "a.dat").string()).ok());
  CHECK_FALSE(load_corpus((dir / "nope").string()).ok());
  fs::remove_all(dir);
}

TEST_CASE("unigram entropy", "[data]") {
  CHECK(unigram_entropy_bits(as_bytes("abcdabcdabcd")) == Approx(2.0));
  CHECK(unigram_entropy_bits(as_bytes("aaaa")) == Approx(0.0));
  CHECK(bits_to_nats(1.0) == Approx(std::log(2.0)));
}

TEST_CASE("shard readers stay in their shard and are deterministic", "[data]") {
  Bytes train(100000);
  for (size_t i = 0; i < train.size(); ++i) train[i] = static_cast<uint8_t>(i * 7);
  auto a = ShardReader::create(&train, 1, 4, 65, 8, 42);
  auto b = ShardReader::create(&train, 1, 4, 65, 8, 42);
  auto other = ShardReader::create(&train, 1, 4, 65, 8, 43);
  REQUIRE(a.ok());
  REQUIRE(b.ok());
  REQUIRE(other.ok());
  CHECK(a->shard_begin() == 25000);
  CHECK(a->shard_end() == 50000);
  CHECK(a->cursor() == b->cursor());
  CHECK(a->cursor() != other->cursor());
  Bytes x(8 * 65), y(8 * 65);
  for (int s = 0; s < 500; ++s) {
    a->next_batch(x.data());
    b->next_batch(y.data());
    CHECK(x == y);
  }
  // Every window comes from inside the shard: fill each shard with its own byte value.
  Bytes coded(160000);
  for (size_t i = 0; i < coded.size(); ++i) coded[i] = static_cast<uint8_t>(1 + i / 40000);
  auto r = ShardReader::create(&coded, 2, 4, 64, 4, 5);  // shard [80000, 120000) holds 3s
  REQUIRE(r.ok());
  Bytes w(4 * 64);
  bool inside = true;
  std::set<int64_t> cursors;
  for (int s = 0; s < 2000; ++s) {
    cursors.insert(r->cursor());
    r->next_batch(w.data());
    for (uint8_t v : w) inside = inside && v == 3;
  }
  CHECK(inside);
  CHECK(cursors.size() > 100);  // the cursor moves
  CHECK_FALSE(ShardReader::create(&train, 0, 100000, 65, 8, 1).ok());  // shard too small
}

TEST_CASE("learning-rate schedule: linear warm-up, cosine to a tenth", "[schedule]") {
  LrSchedule s{1.0, 10, 110, 0.1};
  CHECK(s.at(0) == Approx(0.1));
  CHECK(s.at(4) == Approx(0.5));
  CHECK(s.at(9) == Approx(1.0));
  CHECK(s.at(10) == Approx(1.0));
  CHECK(s.at(60) == Approx(0.55));
  CHECK(s.at(110) == Approx(0.1));
  CHECK(s.at(500) == Approx(0.1));
  for (int t = 10; t < 110; ++t) CHECK(s.at(t + 1) <= s.at(t));
  for (int t = 0; t < 9; ++t) CHECK(s.at(t + 1) > s.at(t));
}

TEST_CASE("the default corpus loads without fortune's binary index files", "[data][corpus]") {
  const std::string path = "/usr/share/games/fortunes";
  if (!fs::exists(path)) {
    WARN("fortunes not installed; skipping");
    return;
  }
  auto c = load_corpus(path);
  REQUIRE(c.ok());
  CHECK(c->size() > 1000000);
  CHECK(std::find(c->begin(), c->end(), 0) == c->end());
  const double bits = unigram_entropy_bits(*c);
  CHECK(bits > 3.5);
  CHECK(bits < 6.0);
}
