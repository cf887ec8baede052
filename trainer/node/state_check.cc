#include "trainer/node/state_check.h"

#include <algorithm>
#include <cmath>
#include <cstring>

namespace noloco::node {

Result<std::pair<uint64_t, uint64_t>> state_value_region(ByteView blob) {
  // NLTC header (docs/codec.md): magic, version 2, mode at 5 (0 = fp32), flags at 6 (0 = no
  // zstd), ndim at 8; 40 + 8·ndim bytes, then n × f32.
  if (blob.size() < 40 || std::memcmp(blob.data(), "NLTC", 4) != 0)
    return corrupt("state: not a codec message");
  if (blob[5] != 0 || blob[6] != 0) return unsupported("state: not an uncompressed fp32 message");
  const uint64_t header = 40 + 8 * static_cast<uint64_t>(blob[8]);
  if (header > blob.size() || (blob.size() - header) % 4 != 0) return corrupt("state: bad value region");
  return std::make_pair(header, static_cast<uint64_t>(blob.size()));
}

std::vector<ByteRange> sample_state_ranges(uint64_t begin, uint64_t end, size_t count, uint32_t len,
                                           std::mt19937_64& rng) {
  std::vector<ByteRange> out;
  if (end <= begin || len < 4) return out;
  const uint64_t values = (end - begin) / 4;
  const uint64_t per = std::min<uint64_t>(len / 4, values);
  std::uniform_int_distribution<uint64_t> pick(0, values - per);
  for (size_t i = 0; i < count; ++i) out.emplace_back(begin + 4 * pick(rng), static_cast<uint32_t>(4 * per));
  std::sort(out.begin(), out.end());
  return out;
}

Result<StateComparison> compare_state(ByteView blob, const std::vector<ByteRange>& ranges,
                                      const std::vector<Bytes>& chunks) {
  if (chunks.size() != ranges.size()) return invalid_argument("state check: one chunk per range needed");
  double diff2 = 0, w2 = 0, a2 = 0, dot = 0;
  for (size_t i = 0; i < ranges.size(); ++i) {
    const auto [off, len] = ranges[i];
    if (chunks[i].size() != len || len % 4 != 0 || off + len > blob.size())
      return invalid_argument("state check: a chunk does not match its range");
    for (uint32_t k = 0; k < len; k += 4) {
      float a, w;
      std::memcpy(&a, blob.data() + off + k, 4);
      std::memcpy(&w, chunks[i].data() + k, 4);
      const double d = static_cast<double>(a) - w;
      diff2 += d * d;
      w2 += static_cast<double>(w) * w;
      a2 += static_cast<double>(a) * a;
      dot += static_cast<double>(a) * w;
    }
  }
  StateComparison c;
  const double scale = w2 > 0 ? w2 : a2;
  if (scale > 0) {
    const double r = std::sqrt(diff2 / scale);
    c.distance = std::isfinite(r) ? r : HUGE_VAL;
  }
  if (w2 > 0) {
    const double cos = a2 > 0 ? dot / std::sqrt(a2 * w2) : 0.0;
    c.cosine = std::isfinite(cos) ? cos : 0.0;  // a NaN or infinite value relates to nothing
  }
  return c;
}

Result<double> state_distance(ByteView blob, const std::vector<ByteRange>& ranges, const std::vector<Bytes>& chunks) {
  NOLOCO_ASSIGN_OR_RETURN(StateComparison c, compare_state(blob, ranges, chunks));
  return c.distance;
}

Result<WitnessVerdict> judge_witness(ByteView blob, const Bytes& blob_sha256, const std::vector<ByteRange>& ranges,
                                     const Bytes& witness_sha256, uint64_t witness_total,
                                     const std::vector<Bytes>& witness_chunks, const StateCheckOptions& opt) {
  if (!blob_sha256.empty() && witness_sha256 == blob_sha256) return WitnessVerdict::kAgrees;
  if (witness_total != blob.size()) return WitnessVerdict::kDisagrees;
  NOLOCO_ASSIGN_OR_RETURN(StateComparison c, compare_state(blob, ranges, witness_chunks));
  if (c.distance <= opt.max_rel_distance) return WitnessVerdict::kAgrees;
  return c.cosine < opt.min_related_cosine ? WitnessVerdict::kUnrelated : WitnessVerdict::kDisagrees;
}

bool adopt_after_witnesses(size_t agree, size_t disagree, bool anyone_to_ask) {
  if (agree == 0 && disagree == 0) return !anyone_to_ask;
  return agree > disagree;
}

}  // namespace noloco::node
