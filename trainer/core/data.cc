// Corpus loading, split, sharding and the token-file reader (docs/training.md).
#include "trainer/core/data.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <system_error>
#include <vector>

namespace noloco::trainer {
namespace fs = std::filesystem;
namespace {

Result<Bytes> read_file(const fs::path& p, uint64_t budget) {
  std::error_code ec;
  const uint64_t size = fs::file_size(p, ec);
  if (ec) return io_error("cannot stat " + p.string() + ": " + ec.message());
  if (size > budget) return too_large(p.string() + ": corpus larger than 2 GiB cap");
  std::ifstream in(p, std::ios::binary);
  if (!in) return io_error("cannot open " + p.string());
  Bytes out(size);
  if (size > 0 && !in.read(reinterpret_cast<char*>(out.data()), static_cast<std::streamsize>(size)))
    return io_error("cannot read " + p.string());
  return out;
}

bool has_nul(const Bytes& b) { return std::memchr(b.data(), 0, b.size()) != nullptr; }

bool is_token_file(const fs::path& p) { return p.extension() == ".bin"; }

}  // namespace

uint64_t mix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

Result<Bytes> decode_token_bytes(ByteView raw, int64_t vocab_size) {
  if (raw.size() % 2 != 0)
    return corrupt("token file length " + std::to_string(raw.size()) +
                   " is odd (expected little-endian uint16 ids)");
  Bytes out(raw.size() / 2);
  for (size_t i = 0; i < out.size(); ++i) {
    const uint16_t id = static_cast<uint16_t>(raw[2 * i] | (raw[2 * i + 1] << 8));
    if (id >= vocab_size)
      return invalid_argument("token " + std::to_string(i) + " has id " + std::to_string(id) +
                              " >= vocab size " + std::to_string(vocab_size) +
                              " (the model is byte-level; re-tokenize to bytes)");
    out[i] = static_cast<uint8_t>(id);
  }
  return out;
}

Result<Bytes> read_token_file(const std::string& path, int64_t vocab_size) {
  NOLOCO_ASSIGN_OR_RETURN(Bytes raw, read_file(path, kMaxCorpusBytes));
  auto r = decode_token_bytes(raw, vocab_size);
  if (!r.ok()) return r.status().context(path);
  return r;
}

Result<Bytes> load_corpus(const std::string& path) {
  std::error_code ec;
  const fs::path root(path);
  if (!fs::exists(root, ec)) return not_found("data path does not exist: " + path);
  if (fs::is_regular_file(root, ec)) {
    if (is_token_file(root)) return read_token_file(path);
    NOLOCO_ASSIGN_OR_RETURN(Bytes b, read_file(root, kMaxCorpusBytes));
    if (has_nul(b)) return invalid_argument(path + " contains NUL bytes: not a text file");
    if (b.empty()) return invalid_argument(path + " is empty");
    return b;
  }
  if (!fs::is_directory(root, ec)) return invalid_argument(path + " is neither a file nor a folder");

  std::vector<fs::path> files;
  for (auto it = fs::recursive_directory_iterator(root, fs::directory_options::skip_permission_denied, ec);
       !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (it->is_regular_file(ec)) files.push_back(it->path());
    if (static_cast<int64_t>(files.size()) > kMaxCorpusFiles)
      return too_large(path + ": more than " + std::to_string(kMaxCorpusFiles) + " files");
  }
  if (ec) return io_error("cannot list " + path + ": " + ec.message());
  std::sort(files.begin(), files.end());

  Bytes out;
  std::set<fs::path> seen;  // canonical paths: a symlink to a file already read adds nothing
  for (const auto& f : files) {
    const fs::path canon = fs::canonical(f, ec);
    if (ec || !seen.insert(canon).second) continue;
    NOLOCO_ASSIGN_OR_RETURN(Bytes b, is_token_file(f) ? read_token_file(f.string())
                                                      : read_file(f, kMaxCorpusBytes - out.size()));
    if (!is_token_file(f) && has_nul(b)) continue;  // binary (e.g. fortune's .dat index)
    append(out, b);
  }
  if (out.empty()) return invalid_argument(path + " holds no text files");
  return out;
}

CorpusSplit split_corpus(ByteView corpus) {
  CorpusSplit s;
  s.val.reserve(corpus.size() / kValEvery + kSplitBlock);
  s.train.reserve(corpus.size());
  for (size_t off = 0, k = 0; off < corpus.size(); off += kSplitBlock, ++k) {
    const size_t n = std::min<size_t>(kSplitBlock, corpus.size() - off);
    Bytes& dst = (k % kValEvery == kValEvery - 1) ? s.val : s.train;
    dst.insert(dst.end(), corpus.begin() + off, corpus.begin() + off + n);
  }
  return s;
}

double unigram_entropy_bits(ByteView data) {
  if (data.empty()) return 0.0;
  std::array<uint64_t, 256> counts{};
  for (uint8_t b : data) ++counts[b];
  double h = 0.0;
  const double n = static_cast<double>(data.size());
  for (uint64_t c : counts) {
    if (c == 0) continue;
    const double p = static_cast<double>(c) / n;
    h -= p * std::log2(p);
  }
  return h;
}

Result<ShardReader> ShardReader::create(const Bytes* train, int shard, int num_shards,
                                        int64_t seq_len, int64_t batch, uint64_t seed) {
  if (num_shards <= 0 || shard < 0 || shard >= num_shards)
    return invalid_argument("shard index out of range");
  if (seq_len < 2 || batch <= 0) return invalid_argument("seq_len must be >= 2 and batch >= 1");
  ShardReader r;
  r.train_ = train;
  const int64_t total = static_cast<int64_t>(train->size());
  r.begin_ = total * shard / num_shards;
  r.end_ = total * (shard + 1) / num_shards;
  r.seq_len_ = seq_len;
  r.batch_ = batch;
  r.stride_ = seq_len - 1;  // consecutive windows share one byte: every byte is a target once
  r.span_ = r.end_ - r.begin_ - seq_len + 1;
  if (r.span_ < batch)
    return invalid_argument("training shard of " + std::to_string(r.end_ - r.begin_) +
                            " bytes is too small for windows of " + std::to_string(seq_len) +
                            " bytes (use more data or fewer replicas)");
  r.cursor_ = static_cast<int64_t>(mix64(seed ^ mix64(0xda7a0000ULL + static_cast<uint64_t>(shard))) %
                                   static_cast<uint64_t>(r.span_));
  return r;
}

void ShardReader::next_batch(uint8_t* out) {
  for (int64_t k = 0; k < batch_; ++k) {
    const int64_t start = begin_ + (cursor_ + k * (span_ / batch_)) % span_;
    std::memcpy(out + k * seq_len_, train_->data() + start, static_cast<size_t>(seq_len_));
  }
  cursor_ = (cursor_ + stride_) % span_;
}

Status ShardReader::set_cursor(int64_t cursor) {
  if (cursor < 0 || cursor >= span_) return corrupt("data cursor out of range for this shard");
  cursor_ = cursor;
  return Status::Ok();
}

Result<Bytes> eval_windows(const Bytes& val, int64_t count, int64_t seq_len) {
  const int64_t n = static_cast<int64_t>(val.size());
  if (count <= 0) return invalid_argument("need at least one evaluation window");
  if (n < seq_len) return invalid_argument("validation split shorter than one window");
  const int64_t step = count > 1 ? (n - seq_len) / (count - 1) : 0;
  Bytes out(static_cast<size_t>(count * seq_len));
  for (int64_t k = 0; k < count; ++k) {
    std::memcpy(out.data() + k * seq_len, val.data() + k * step, static_cast<size_t>(seq_len));
  }
  return out;
}

}  // namespace noloco::trainer
