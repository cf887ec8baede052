// Tensor codec for the wire: turns a float tensor into one self-describing byte message and back.
//
// Modes: fp32 (exact), bf16 (round to nearest even), int8 and int4 block-wise absmax quantization
// (one fp32 scale per block), each optionally followed by zstd. The byte layout, the limits and the
// worst-case error of every mode (with its derivation) are in docs/codec.md.
//
// Torch-free on purpose: it works on std::span<const float> + a shape, so it is cheap to include,
// to unit-test and to fuzz. trainer/core/codec_torch.h adapts torch::Tensor to it.
//
// Decoding treats its input as hostile: every length is checked against the caller's DecodeLimits
// before anything is allocated, the checksum and every scale/value are verified, and on any
// failure nothing is returned or written (decode_into leaves `out` untouched).
#pragma once

#include <array>
#include <cstdint>
#include <span>
#include <vector>

#include "common/bytes.h"
#include "common/status.h"

namespace noloco::codec {

enum class Mode : uint8_t {
  kFp32 = 0,  // 4 bytes/value, bit-exact
  kBf16 = 1,  // 2 bytes/value, |err| <= 2^-8 |x| (normal range)
  kInt8 = 2,  // 1 byte/value + 4 bytes/block, |err| <= absmax(block)/254 (+ rounding slack)
  kInt4 = 3,  // 1/2 byte/value + 4 bytes/block, |err| <= absmax(block)/14 (+ rounding slack)
};
const char* mode_name(Mode mode);

// The dtype the sender's tensor had. Decoding always yields fp32 values; the torch adapter casts
// back to this dtype, so a bf16 tensor sent in bf16 mode comes back bit-exact.
enum class SourceDtype : uint8_t { kFloat32 = 0, kBFloat16 = 1, kFloat16 = 2 };

// 2: checksum is xxh3_64 (version 1 used legacy_hash64 and is refused: docs/codec.md "Versioning").
inline constexpr uint8_t kFormatVersion = 2;
inline constexpr size_t kMaxDims = 8;
inline constexpr uint32_t kMinBlockSize = 4;
inline constexpr uint32_t kMaxBlockSize = 65536;
inline constexpr uint32_t kDefaultBlockSize = 128;  // why 128: docs/codec.md "Block size"
// Hard ceiling on elements whatever the caller's limits say: keeps every size computation far
// from uint64 overflow.
inline constexpr uint64_t kHardMaxElements = uint64_t{1} << 40;
inline constexpr size_t kFixedHeaderBytes = 32;  // before the dims; see docs/codec.md

struct EncodeOptions {
  Mode mode = Mode::kBf16;
  bool zstd = false;
  int zstd_level = 3;                       // 1..19; 3 is zstd's default speed/ratio trade-off
  uint32_t block_size = kDefaultBlockSize;  // used by int8/int4 only
  SourceDtype source_dtype = SourceDtype::kFloat32;

  Status validate() const;
};

// Caps the receiver sets (e.g. from the run manifest's parameter counts). Checked before any
// allocation: a message claiming more elements or bytes than this is refused with kTooLarge.
struct DecodeLimits {
  uint64_t max_elements = uint64_t{1} << 28;       // 1 GiB of fp32 output
  uint64_t max_encoded_bytes = uint64_t{1} << 30;  // whole message, header included
};

// What the header says, after it has been checked (parse_header / decode).
struct Header {
  uint8_t version = kFormatVersion;
  Mode mode = Mode::kFp32;
  bool zstd = false;
  SourceDtype source_dtype = SourceDtype::kFloat32;
  uint8_t ndim = 0;
  std::array<uint64_t, kMaxDims> dims{};
  uint32_t block_size = 0;     // 0 for fp32/bf16
  uint64_t element_count = 0;  // product of dims (1 for a scalar, ndim == 0)
  uint64_t payload_bytes = 0;  // stored payload length (after zstd when zstd is set)
  uint64_t raw_payload_bytes = 0;  // payload length before zstd, derived from mode/count/block
  uint64_t checksum = 0;
  uint64_t header_bytes = 0;   // kFixedHeaderBytes + 8*ndim + 8 (checksum)
  uint64_t total_bytes = 0;    // header_bytes + payload_bytes: the whole message

  std::vector<int64_t> shape() const { return {dims.begin(), dims.begin() + ndim}; }
};

struct Decoded {
  Header header;
  std::vector<float> values;  // header.element_count values, row-major
};

// Encodes `values` (row-major, values.size() == product(shape)). Refuses non-finite input
// (kInvalidArgument naming the first bad index), negative dims, more than kMaxDims dims, and
// a shape whose product differs from values.size().
Result<Bytes> encode(std::span<const float> values, const std::vector<int64_t>& shape,
                     const EncodeOptions& options);

// Error feedback: encodes x + residual, then sets residual <- (x + residual) - decode(result), so
// what quantization drops this time is sent next time. `residual` must have values.size() entries
// (start it at zeros). On failure the residual is left unchanged.
Result<Bytes> encode_with_feedback(std::span<const float> values, const std::vector<int64_t>& shape,
                                   const EncodeOptions& options, std::span<float> residual);

// Parses and checks the header only (magic, version, mode, flags, dims vs limits, sizes consistent
// with mode and element count). `in` may hold more than one message: header.total_bytes says
// where this one ends. kTruncated if `in` is too short for the header itself.
Result<Header> parse_header(ByteView in, const DecodeLimits& limits);

// Decodes exactly one message; `in` must be exactly header.total_bytes long.
Result<Decoded> decode(ByteView in, const DecodeLimits& limits);

// Same checks as decode, but writes into `out`, which must have exactly element_count entries.
// `out` is written only after the whole message has been verified.
Status decode_into(ByteView in, const DecodeLimits& limits, std::span<float> out);

// Header-less ("raw") payloads, the payload layout of docs/codec.md without header, checksum or
// zstd, for a protocol that frames and checks its messages itself (the ring all-reduce,
// docs/protocols/allreduce.md). block_size is used by int8/int4 only.
uint64_t raw_payload_bytes(Mode mode, uint64_t n, uint32_t block_size);
// Writes raw_payload_bytes(mode, x.size(), block_size) bytes to `out`. Every x must be finite
// (not checked here: the caller checks its input once); block_size must be valid for the mode.
void encode_raw(Mode mode, std::span<const float> x, uint32_t block_size, uint8_t* out);
// Checks `raw` the way decode does (exact length for out.size() values, finite non-negative
// scales, finite bf16/fp32 values, no code the encoder never writes), then fills `out`.
// kCorrupt (nothing written) when a check fails.
Status decode_raw(Mode mode, uint32_t block_size, ByteView raw, std::span<float> out);

// The documented worst-case |x - decode(encode(x))| for one value x whose block has absolute
// maximum `block_absmax` (ignored by fp32/bf16). zstd is lossless and does not change it.
double error_bound(Mode mode, double x, double block_absmax);

}  // namespace noloco::codec
