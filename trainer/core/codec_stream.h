// The tensor codec a chunk at a time (format: docs/codec.md), so that a model-sized tensor never
// needs a second model-sized buffer: the encoder reads its values through a callback and hands the
// message out as pieces, the decoder checks the whole message first, then yields its values in
// chunks. Torch-free, like codec.h.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <vector>

#include "common/bytes.h"
#include "common/status.h"
#include "trainer/core/codec.h"

struct ZSTD_DCtx_s;

namespace noloco::codec {

// Fills `out` with the values [begin, begin + out.size()) of the tensor being encoded.
using ValueSource = std::function<void(uint64_t begin, std::span<float> out)>;

// Values per chunk of the chunked encoder (1 MiB of fp32); a good chunk size for callers too.
inline constexpr uint64_t kChunkValues = uint64_t{1} << 18;

// The message for `count` values read through `source`, as pieces of at most `piece_bytes` (>= 64)
// each; the first piece is the header. Each value is read once (fp32, bf16) or twice (int8, int4:
// block scales first, then codes). Without zstd the bytes are exactly encode()'s; with zstd it is
// the same format (one frame that states its content size) from zstd's streaming compressor.
// Memory: the pieces plus a few chunks. Refuses what encode() refuses (non-finite values, bad shape).
Result<std::vector<Bytes>> encode_pieces(const ValueSource& source, uint64_t count, const std::vector<int64_t>& shape,
                                         const EncodeOptions& options, size_t piece_bytes);

// Reads one message's values a chunk at a time. open() runs every check decode() runs before it
// writes a value: sizes against the limits, the checksum over the whole payload, the zstd frame's
// size and stated content size, and (int8/int4) every block scale. next() then checks each chunk's
// values as decode() does (finite, no code the encoder never writes) before handing them out, so a
// caller that reads every chunk has checked the whole message. `message` must outlive the decoder.
class ChunkDecoder {
 public:
  static Result<std::unique_ptr<ChunkDecoder>> open(ByteView message, const DecodeLimits& limits);
  ~ChunkDecoder();
  ChunkDecoder(const ChunkDecoder&) = delete;
  ChunkDecoder& operator=(const ChunkDecoder&) = delete;

  const Header& header() const { return h_; }
  uint64_t position() const { return pos_; }  // values handed out so far
  // The next out.size() values (no more than are left). For int4 every call but the last must
  // take an even number of values.
  Status next(std::span<float> out);

 private:
  ChunkDecoder() = default;
  Status pull(uint8_t* dst, size_t bytes);  // the next raw (inflated) payload bytes
  Status end_of_frame();
  Status check_chunk(uint64_t k) const;
  void dequantize_chunk(std::span<float> out) const;

  Header h_;
  ByteView payload_;
  size_t in_pos_ = 0;          // payload bytes consumed
  ZSTD_DCtx_s* dctx_ = nullptr;
  size_t last_zstd_ret_ = 1;   // 0 once zstd says the frame is complete
  Bytes scales_;               // int8/int4: every block's scale, checked at open
  Bytes buf_;                  // one chunk of raw payload
  uint64_t pos_ = 0;
};

}  // namespace noloco::codec
