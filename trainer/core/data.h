// Training data for the byte-level model (torch-free).
//
// Sources: a UTF-8 text file, a folder of text files (walked recursively, sorted by path, files
// containing a NUL byte skipped as binary, symlinks to files already read skipped), or a `.bin`
// token file of little-endian uint16 ids (each must be < 256: the model's vocabulary is bytes).
//
// Split: the corpus is cut into blocks of kSplitBlock bytes; block k is validation when
// k % kValEvery == kValEvery - 1, training otherwise. Training and validation bytes never overlap
// and the split depends only on the corpus bytes.
//
// Sharding: the training stream is cut into `num_shards` contiguous shards; replica r reads only
// shard r. Each batch takes `batch` windows from `batch` lanes spread evenly over the shard; the
// cursor starts at a position drawn from (seed, shard) and moves by one context per batch.
#pragma once

#include <cstdint>
#include <string>

#include "common/bytes.h"
#include "common/status.h"

namespace noloco::trainer {

inline constexpr int64_t kSplitBlock = 4096;
inline constexpr int64_t kValEvery = 10;
// Caps for hostile or accidental input (a whole disk given as --data).
inline constexpr uint64_t kMaxCorpusBytes = uint64_t{2} << 30;
inline constexpr int64_t kMaxCorpusFiles = 100000;

// Loads PATH as described above. Errors name the file and the problem.
Result<Bytes> load_corpus(const std::string& path);
// A `.bin` of little-endian uint16 token ids; fails on odd length or any id >= vocab_size.
Result<Bytes> read_token_file(const std::string& path, int64_t vocab_size = 256);
// Same check on bytes already in memory (used by read_token_file and tests).
Result<Bytes> decode_token_bytes(ByteView raw, int64_t vocab_size = 256);

struct CorpusSplit {
  Bytes train;
  Bytes val;
};
CorpusSplit split_corpus(ByteView corpus);

// Byte unigram entropy: the loss of the best model that ignores context. Every trained model's
// validation loss must fall well below it.
double unigram_entropy_bits(ByteView data);
inline double bits_to_nats(double bits) { return bits * 0.6931471805599453; }

// Reads windows of `seq_len` bytes (context + 1) from one shard of the training stream.
class ShardReader {
 public:
  // Fails when the shard is shorter than seq_len + batch.
  static Result<ShardReader> create(const Bytes* train, int shard, int num_shards, int64_t seq_len,
                                    int64_t batch, uint64_t seed);
  // Writes batch × seq_len bytes to out and advances the cursor.
  void next_batch(uint8_t* out);

  int64_t cursor() const { return cursor_; }
  // Restore a saved cursor (from a checkpoint): fails when out of range.
  Status set_cursor(int64_t cursor);
  int64_t shard_begin() const { return begin_; }
  int64_t shard_end() const { return end_; }
  int64_t seq_len() const { return seq_len_; }
  int64_t batch() const { return batch_; }

 private:
  const Bytes* train_ = nullptr;
  int64_t begin_ = 0, end_ = 0;  // [begin, end) of the shard in train
  int64_t span_ = 0;             // number of valid window starts: shard length - seq_len + 1
  int64_t seq_len_ = 0, batch_ = 0, stride_ = 0;
  int64_t cursor_ = 0;  // in [0, span)
};

// `count` validation windows of seq_len bytes at evenly spaced positions (the same for every
// model), concatenated. Fails when val is shorter than seq_len.
Result<Bytes> eval_windows(const Bytes& val, int64_t count, int64_t seq_len);

// splitmix64: the project's small deterministic mixer for seeds (data offsets, pairings).
uint64_t mix64(uint64_t x);

}  // namespace noloco::trainer
