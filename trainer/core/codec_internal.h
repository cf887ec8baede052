// Pieces of the tensor codec shared by the whole-message code (codec.cc) and the chunked code
// (codec_stream.cc). Not part of the codec's interface: include codec.h / codec_stream.h instead.
#pragma once

#include <zstd.h>

#include <bit>
#include <cstdint>
#include <cstring>
#include <span>
#include <vector>

#include "common/bytes.h"
#include "common/status.h"
#include "trainer/core/codec.h"

namespace noloco::codec::detail {

// Payload values are copied with memcpy as little-endian; a big-endian port would byte-swap here.
static_assert(std::endian::native == std::endian::little, "codec assumes a little-endian host");

inline constexpr uint8_t kMagic[4] = {'N', 'L', 'T', 'C'};
inline constexpr uint8_t kFlagZstd = 0x01;
inline constexpr size_t kChecksumBytes = 8;

inline bool is_block_mode(Mode m) { return m == Mode::kInt8 || m == Mode::kInt4; }

// Largest code magnitude: int8 uses [-127, 127] and int4 [-7, 7], symmetric so that zero is exact
// and the scale alone fixes the step. -128 / -8 never appear and are refused by the decoder.
inline int qmax(Mode m) { return m == Mode::kInt8 ? 127 : 7; }

inline uint64_t block_count(uint64_t n, uint32_t block) { return n == 0 ? 0 : (n - 1) / block + 1; }

// Payload size before zstd; n <= kHardMaxElements so nothing here can overflow.
inline uint64_t raw_payload_size(Mode m, uint64_t n, uint32_t block) {
  switch (m) {
    case Mode::kFp32: return 4 * n;
    case Mode::kBf16: return 2 * n;
    case Mode::kInt8: return 4 * block_count(n, block) + n;
    case Mode::kInt4: return 4 * block_count(n, block) + (n + 1) / 2;
  }
  return 0;
}

inline uint64_t header_size(size_t ndim) { return kFixedHeaderBytes + 8 * ndim + kChecksumBytes; }

inline uint32_t float_bits(float f) { return std::bit_cast<uint32_t>(f); }
inline bool finite_bits(uint32_t b) { return (b & 0x7F800000u) != 0x7F800000u; }

// Round half to even for |v| < 2^51 in the default FP environment: adding 1.5 * 2^52 pushes
// the fraction bits out of the double's mantissa. Branch-free and vectorisable, unlike libm.
inline double round_even(double v) {
  constexpr double kShift = 6755399441055744.0;
  return (v + kShift) - kShift;
}

// fp32 -> bf16 with round to nearest even. A finite value that would round up past the largest
// bf16 (0x7F7F) saturates to it instead of becoming Inf; the error stays within 2^-8 |x|.
inline uint16_t to_bf16(float f) {
  uint32_t b = float_bits(f);
  b += 0x7FFFu + ((b >> 16) & 1u);
  auto hi = static_cast<uint16_t>(b >> 16);
  if ((hi & 0x7F80u) == 0x7F80u) hi = static_cast<uint16_t>((hi & 0x8000u) | 0x7F7Fu);
  return hi;
}

inline float from_bf16(uint16_t h) { return std::bit_cast<float>(static_cast<uint32_t>(h) << 16); }

inline float load_f32(const uint8_t* p) {
  float f;
  std::memcpy(&f, p, 4);
  return f;
}
inline uint16_t load_u16(const uint8_t* p) {
  uint16_t v;
  std::memcpy(&v, p, 2);
  return v;
}

inline void put_u64_at(uint8_t* p, uint64_t v) {
  for (int s = 0; s < 64; s += 8) *p++ = static_cast<uint8_t>(v >> s);
}
inline void put_u32_at(uint8_t* p, uint32_t v) {
  for (int s = 0; s < 32; s += 8) *p++ = static_cast<uint8_t>(v >> s);
}

struct ZstdCCtxFree {
  void operator()(ZSTD_CCtx* c) const { ZSTD_freeCCtx(c); }
};
struct ZstdDCtxFree {
  void operator()(ZSTD_DCtx* d) const { ZSTD_freeDCtx(d); }
};

// Index of the first NaN/Inf, or v.size() if all are finite.
size_t first_non_finite(std::span<const float> v);
// Scales then codes of x (docs/codec.md "Payload rules") into raw.
void quantize_blocks(Mode mode, std::span<const float> x, uint32_t block, uint8_t* raw);
void build_raw(Mode mode, std::span<const float> x, uint32_t block, uint8_t* raw);
// The header's checksum: xxh3_64(payload, seed = xxh3_64(header bytes before the checksum)).
uint64_t compute_checksum(ByteView header_without_checksum, ByteView payload);
Status check_shape(const std::vector<int64_t>& shape, size_t count);
// Every header field but the checksum, into p[0, header_size(shape.size()) - kChecksumBytes).
void write_header_fields(uint8_t* p, const EncodeOptions& opt, const std::vector<int64_t>& shape, uint32_t block,
                         uint64_t n, uint64_t payload_bytes);
// The whole header, its checksum over `payload` included.
void write_header(uint8_t* p, const EncodeOptions& opt, const std::vector<int64_t>& shape, uint32_t block,
                  uint64_t n, uint64_t payload_bytes, ByteView payload);

}  // namespace noloco::codec::detail
