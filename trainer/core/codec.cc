// Tensor codec: see codec.h for the contract and docs/codec.md for the byte layout and error bounds.
#include "trainer/core/codec.h"

#include <zstd.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <limits>
#include <memory>
#include <string>

#include "common/hash.h"
#include "trainer/core/codec_internal.h"

namespace noloco::codec {
namespace detail {

// Index of the first NaN/Inf, or values.size() if all are finite. The first pass is a plain
// vectorisable OR-scan; the index is only looked up when something was found.
size_t first_non_finite(std::span<const float> v) {
  bool bad = false;
  for (float f : v) bad |= !finite_bits(float_bits(f));
  if (!bad) return v.size();
  for (size_t i = 0; i < v.size(); ++i)
    if (!finite_bits(float_bits(v[i]))) return i;
  return v.size();
}

// ---- building the raw (pre-zstd) payload ----

void quantize_blocks(Mode mode, std::span<const float> x, uint32_t block, uint8_t* raw) {
  const uint64_t n = x.size();
  const uint64_t nb = block_count(n, block);
  uint8_t* scales = raw;
  uint8_t* codes = raw + 4 * nb;
  const int q = qmax(mode);
  if (n == 0) return;  // raw may be null for an empty tensor
  if (mode == Mode::kInt4) std::memset(codes, 0, (n + 1) / 2);
  for (uint64_t b = 0; b < nb; ++b) {
    const uint64_t begin = b * block;
    const uint64_t end = std::min<uint64_t>(n, begin + block);
    float amax = 0.0f;
    for (uint64_t i = begin; i < end; ++i) amax = std::max(amax, std::fabs(x[i]));
    std::memcpy(scales + 4 * b, &amax, 4);
    // amax >= 2^-149 when non-zero, so inv <= 127 * 2^149: no overflow in double.
    const double inv = amax > 0.0f ? q / static_cast<double>(amax) : 0.0;
    if (mode == Mode::kInt8) {
      for (uint64_t i = begin; i < end; ++i) {
        double r = round_even(static_cast<double>(x[i]) * inv);
        r = std::clamp(r, -127.0, 127.0);
        codes[i] = static_cast<uint8_t>(static_cast<int8_t>(r));
      }
    } else {
      for (uint64_t i = begin; i < end; ++i) {
        double r = round_even(static_cast<double>(x[i]) * inv);
        r = std::clamp(r, -7.0, 7.0);
        auto nib = static_cast<uint8_t>(static_cast<int>(r) & 0xF);
        codes[i >> 1] |= static_cast<uint8_t>(nib << (4 * (i & 1)));
      }
    }
  }
}

void build_raw(Mode mode, std::span<const float> x, uint32_t block, uint8_t* raw) {
  switch (mode) {
    case Mode::kFp32:
      if (!x.empty()) std::memcpy(raw, x.data(), 4 * x.size());
      return;
    case Mode::kBf16:
      for (size_t i = 0; i < x.size(); ++i) {
        uint16_t h = to_bf16(x[i]);
        std::memcpy(raw + 2 * i, &h, 2);
      }
      return;
    case Mode::kInt8:
    case Mode::kInt4:
      quantize_blocks(mode, x, block, raw);
      return;
  }
}

// ---- reading a raw payload back ----

// Every check the raw payload needs before any value is written out. Sizes were checked already.
Status validate_raw(Mode mode, uint64_t n, uint32_t block, const uint8_t* raw) {
  switch (mode) {
    case Mode::kFp32:
      for (uint64_t i = 0; i < n; ++i) {
        uint32_t b;
        std::memcpy(&b, raw + 4 * i, 4);
        if (!finite_bits(b)) return corrupt("non-finite fp32 value at index " + std::to_string(i));
      }
      return Status::Ok();
    case Mode::kBf16:
      for (uint64_t i = 0; i < n; ++i)
        if ((load_u16(raw + 2 * i) & 0x7F80u) == 0x7F80u)
          return corrupt("non-finite bf16 value at index " + std::to_string(i));
      return Status::Ok();
    case Mode::kInt8:
    case Mode::kInt4: {
      const uint64_t nb = block_count(n, block);
      for (uint64_t b = 0; b < nb; ++b) {
        uint32_t s;
        std::memcpy(&s, raw + 4 * b, 4);
        // Scales are block absmaxes: finite and >= +0 (the sign bit is never set).
        if (!finite_bits(s) || (s >> 31) != 0)
          return corrupt("bad scale in block " + std::to_string(b));
      }
      const uint8_t* codes = raw + 4 * nb;
      if (mode == Mode::kInt8) {
        bool bad = false;
        for (uint64_t i = 0; i < n; ++i) bad |= codes[i] == 0x80;
        if (bad) return corrupt("int8 code -128 is not produced by the encoder");
      } else {
        const uint64_t bytes = (n + 1) / 2;
        bool bad = false;
        for (uint64_t i = 0; i < bytes; ++i) bad |= (codes[i] & 0x0F) == 0x08 || (codes[i] & 0xF0) == 0x80;
        if (bad) return corrupt("int4 code -8 is not produced by the encoder");
        if ((n & 1) && (codes[bytes - 1] & 0xF0) != 0) return corrupt("int4 padding nibble is not zero");
      }
      return Status::Ok();
    }
  }
  return unsupported("unknown mode");
}

// Decodes a raw payload already validated (or just built by the encoder) into out[0..n).
void dequantize(Mode mode, uint64_t n, uint32_t block, const uint8_t* raw, float* out) {
  switch (mode) {
    case Mode::kFp32:
      if (n) std::memcpy(out, raw, 4 * n);
      return;
    case Mode::kBf16:
      for (uint64_t i = 0; i < n; ++i) out[i] = from_bf16(load_u16(raw + 2 * i));
      return;
    case Mode::kInt8:
    case Mode::kInt4: {
      const uint64_t nb = block_count(n, block);
      const uint8_t* codes = raw + 4 * nb;
      const double q = qmax(mode);
      for (uint64_t b = 0; b < nb; ++b) {
        // The step in double so that a subnormal scale keeps its precision (see docs/codec.md).
        const double step = static_cast<double>(load_f32(raw + 4 * b)) / q;
        const uint64_t begin = b * block;
        const uint64_t end = std::min<uint64_t>(n, begin + block);
        if (mode == Mode::kInt8) {
          for (uint64_t i = begin; i < end; ++i)
            out[i] = static_cast<float>(static_cast<int8_t>(codes[i]) * step);
        } else {
          for (uint64_t i = begin; i < end; ++i) {
            int nib = (codes[i >> 1] >> (4 * (i & 1))) & 0xF;
            int v = nib >= 8 ? nib - 16 : nib;
            out[i] = static_cast<float>(v * step);
          }
        }
      }
      return;
    }
  }
}

uint64_t compute_checksum(ByteView header_without_checksum, ByteView payload) {
  return xxh3_64(payload, xxh3_64(header_without_checksum));
}

void write_header(uint8_t* p, const EncodeOptions& opt, const std::vector<int64_t>& shape, uint32_t block,
                  uint64_t n, uint64_t payload_bytes, ByteView payload) {
  write_header_fields(p, opt, shape, block, n, payload_bytes);
  const size_t checked_header = header_size(shape.size()) - kChecksumBytes;
  put_u64_at(p + checked_header, compute_checksum(ByteView(p, checked_header), payload));
}

void write_header_fields(uint8_t* p, const EncodeOptions& opt, const std::vector<int64_t>& shape, uint32_t block,
                         uint64_t n, uint64_t payload_bytes) {
  std::memcpy(p, kMagic, 4);
  p[4] = kFormatVersion;
  p[5] = static_cast<uint8_t>(opt.mode);
  p[6] = opt.zstd ? kFlagZstd : 0;
  p[7] = static_cast<uint8_t>(opt.source_dtype);
  p[8] = static_cast<uint8_t>(shape.size());
  p[9] = p[10] = p[11] = 0;
  put_u32_at(p + 12, block);
  put_u64_at(p + 16, n);
  put_u64_at(p + 24, payload_bytes);
  for (size_t i = 0; i < shape.size(); ++i) put_u64_at(p + kFixedHeaderBytes + 8 * i, static_cast<uint64_t>(shape[i]));
}

Status check_shape(const std::vector<int64_t>& shape, size_t count) {
  if (shape.size() > kMaxDims)
    return invalid_argument("tensor has " + std::to_string(shape.size()) + " dims, at most " +
                            std::to_string(kMaxDims) + " are supported");
  uint64_t product = 1;
  bool zero = false;
  for (int64_t d : shape) {
    if (d < 0) return invalid_argument("negative dimension " + std::to_string(d));
    if (static_cast<uint64_t>(d) > kHardMaxElements) return invalid_argument("dimension too large");
    if (d == 0) zero = true;
    if (!zero) {
      // Divide instead of multiplying first: 2^40 * 2^40 would wrap.
      if (static_cast<uint64_t>(d) > kHardMaxElements / product)
        return invalid_argument("tensor has too many elements");
      product *= static_cast<uint64_t>(d);
    }
  }
  if (zero) product = 0;
  if (product != count)
    return invalid_argument("shape has " + std::to_string(product) + " elements but " +
                            std::to_string(count) + " values were given");
  return Status::Ok();
}

// Encodes x; if `dequant` is non-null it receives decode(result) (computed from the raw payload,
// so the feedback path does not pay for a second zstd pass).
Result<Bytes> encode_impl(std::span<const float> x, const std::vector<int64_t>& shape,
                          const EncodeOptions& opt, std::vector<float>* dequant) {
  NOLOCO_RETURN_IF_ERROR(opt.validate());
  NOLOCO_RETURN_IF_ERROR(check_shape(shape, x.size()));
  if (size_t bad = first_non_finite(x); bad != x.size())
    return invalid_argument("non-finite value at index " + std::to_string(bad) + " cannot be encoded");

  const uint64_t n = x.size();
  const uint32_t block = is_block_mode(opt.mode) ? opt.block_size : 0;
  const uint64_t raw_size = raw_payload_size(opt.mode, n, block);
  const uint64_t hdr = header_size(shape.size());

  Bytes out;
  Bytes raw_buffer;
  uint8_t* raw = nullptr;
  if (opt.zstd) {
    raw_buffer.resize(raw_size);
    raw = raw_buffer.data();
  } else {
    out.resize(hdr + raw_size);
    raw = out.data() + hdr;
  }
  build_raw(opt.mode, x, block, raw);
  if (dequant) {
    dequant->resize(n);
    dequantize(opt.mode, n, block, raw, dequant->data());
  }

  if (opt.zstd) {
    const size_t bound = ZSTD_compressBound(raw_size);
    out.resize(hdr + bound);
    std::unique_ptr<ZSTD_CCtx, ZstdCCtxFree> cctx(ZSTD_createCCtx());
    if (!cctx) return internal_error("ZSTD_createCCtx failed");
    // The decoder requires the frame to state its content size; it is on by default, set it anyway.
    ZSTD_CCtx_setParameter(cctx.get(), ZSTD_c_contentSizeFlag, 1);
    ZSTD_CCtx_setParameter(cctx.get(), ZSTD_c_compressionLevel, opt.zstd_level);
    size_t z = ZSTD_compress2(cctx.get(), out.data() + hdr, bound, raw, raw_size);
    if (ZSTD_isError(z)) return internal_error(std::string("zstd: ") + ZSTD_getErrorName(z));
    out.resize(hdr + z);
  }
  const uint64_t payload = out.size() - hdr;

  write_header(out.data(), opt, shape, block, n, payload, ByteView(out.data() + hdr, payload));
  return out;
}

}  // namespace detail

using namespace detail;

const char* mode_name(Mode mode) {
  switch (mode) {
    case Mode::kFp32: return "fp32";
    case Mode::kBf16: return "bf16";
    case Mode::kInt8: return "int8";
    case Mode::kInt4: return "int4";
  }
  return "unknown";
}

Status EncodeOptions::validate() const {
  if (static_cast<uint8_t>(mode) > static_cast<uint8_t>(Mode::kInt4))
    return invalid_argument("unknown codec mode");
  if (static_cast<uint8_t>(source_dtype) > static_cast<uint8_t>(SourceDtype::kFloat16))
    return invalid_argument("unknown source dtype");
  if (zstd && (zstd_level < 1 || zstd_level > ZSTD_maxCLevel()))
    return invalid_argument("zstd level must be in 1.." + std::to_string(ZSTD_maxCLevel()));
  if (is_block_mode(mode) && (block_size < kMinBlockSize || block_size > kMaxBlockSize))
    return invalid_argument("block size must be in " + std::to_string(kMinBlockSize) + ".." +
                            std::to_string(kMaxBlockSize));
  return Status::Ok();
}

Result<Bytes> encode(std::span<const float> values, const std::vector<int64_t>& shape,
                     const EncodeOptions& options) {
  return encode_impl(values, shape, options, nullptr);
}

Result<Bytes> encode_with_feedback(std::span<const float> values, const std::vector<int64_t>& shape,
                                   const EncodeOptions& options, std::span<float> residual) {
  if (residual.size() != values.size())
    return invalid_argument("residual has " + std::to_string(residual.size()) + " entries, expected " +
                            std::to_string(values.size()));
  std::vector<float> y(values.size());
  for (size_t i = 0; i < y.size(); ++i) y[i] = values[i] + residual[i];
  std::vector<float> sent;
  NOLOCO_ASSIGN_OR_RETURN(Bytes out, encode_impl(y, shape, options, &sent));
  for (size_t i = 0; i < y.size(); ++i) residual[i] = y[i] - sent[i];
  return out;
}

Result<Header> parse_header(ByteView in, const DecodeLimits& limits) {
  if (in.size() < kFixedHeaderBytes) return truncated("codec header needs 32 bytes");
  const uint8_t* p = in.data();
  if (std::memcmp(p, kMagic, 4) != 0) return corrupt("bad codec magic");
  Header h;
  h.version = p[4];
  if (h.version < kFormatVersion)
    return unsupported("codec format version " + std::to_string(h.version) + " (this build reads " +
                       std::to_string(kFormatVersion) +
                       "): the sender runs an older noloco, whose tensor checksums this build does not "
                       "compute; it must upgrade");
  if (h.version > kFormatVersion)
    return unsupported("codec format version " + std::to_string(h.version) + " is newer than this build's " +
                       std::to_string(kFormatVersion) + ": upgrade noloco");
  if (p[5] > static_cast<uint8_t>(Mode::kInt4)) return unsupported("codec mode " + std::to_string(p[5]));
  h.mode = static_cast<Mode>(p[5]);
  if ((p[6] & ~kFlagZstd) != 0) return unsupported("unknown codec flags");
  h.zstd = (p[6] & kFlagZstd) != 0;
  if (p[7] > static_cast<uint8_t>(SourceDtype::kFloat16))
    return unsupported("source dtype " + std::to_string(p[7]));
  h.source_dtype = static_cast<SourceDtype>(p[7]);
  h.ndim = p[8];
  if (h.ndim > kMaxDims) return corrupt("codec header has " + std::to_string(h.ndim) + " dims");
  if (p[9] != 0 || p[10] != 0 || p[11] != 0) return corrupt("reserved header bytes are not zero");
  h.block_size = get_u32_le(p + 12);
  if (is_block_mode(h.mode)) {
    if (h.block_size < kMinBlockSize || h.block_size > kMaxBlockSize) return corrupt("bad block size");
  } else if (h.block_size != 0) {
    return corrupt("block size set for a mode without blocks");
  }
  h.element_count = get_u64_le(p + 16);
  h.payload_bytes = get_u64_le(p + 24);
  const uint64_t max_elements = std::min(limits.max_elements, kHardMaxElements);
  if (h.element_count > max_elements)
    return too_large("tensor claims " + std::to_string(h.element_count) + " elements, limit " +
                     std::to_string(max_elements));
  h.header_bytes = header_size(h.ndim);
  // Subtract instead of adding: payload_bytes near 2^64 would wrap the sum.
  if (limits.max_encoded_bytes < h.header_bytes || h.payload_bytes > limits.max_encoded_bytes - h.header_bytes)
    return too_large("message claims " + std::to_string(h.payload_bytes) + " payload bytes, limit " +
                     std::to_string(limits.max_encoded_bytes));
  h.total_bytes = h.header_bytes + h.payload_bytes;
  if (in.size() < h.header_bytes) return truncated("codec header cut short in its dims");

  uint64_t product = 1;
  bool zero = false;
  for (size_t i = 0; i < h.ndim; ++i) {
    h.dims[i] = get_u64_le(p + kFixedHeaderBytes + 8 * i);
    if (h.dims[i] > max_elements) return too_large("dimension " + std::to_string(h.dims[i]) + " over limit");
    if (h.dims[i] == 0) zero = true;
    if (!zero) {
      // Divide instead of multiplying first: 2^40 * 2^40 would wrap.
      if (h.dims[i] > max_elements / product) return too_large("dims multiply past the element limit");
      product *= h.dims[i];
    }
  }
  if (zero) product = 0;
  if (product != h.element_count) return corrupt("dims do not multiply to the element count");

  h.raw_payload_bytes = raw_payload_size(h.mode, h.element_count, h.block_size);
  if (!h.zstd) {
    if (h.payload_bytes != h.raw_payload_bytes) return corrupt("payload length does not match the mode");
  } else if (h.payload_bytes > ZSTD_compressBound(h.raw_payload_bytes)) {
    return corrupt("zstd payload longer than any frame of its content size");
  }
  h.checksum = get_u64_le(p + h.header_bytes - kChecksumBytes);
  return h;
}

namespace {

// A message that passed every check; `raw` points into the caller's input or into `inflated`.
struct Verified {
  Header header;
  Bytes inflated;
  bool use_inflated = false;
  const uint8_t* raw(ByteView in) const {
    return use_inflated ? inflated.data() : in.data() + header.header_bytes;
  }
};

// Every check, in order of cost, before any output is allocated: sizes, checksum, the zstd
// frame's stated size, then (after inflating) every scale and value.
Result<Verified> verify(ByteView in, const DecodeLimits& limits) {
  if (in.size() > limits.max_encoded_bytes) return too_large("encoded tensor over the byte limit");
  Verified v;
  NOLOCO_ASSIGN_OR_RETURN(v.header, parse_header(in, limits));
  const Header& h = v.header;
  if (in.size() < h.total_bytes) return truncated("codec payload cut short");
  if (in.size() > h.total_bytes) return corrupt("trailing bytes after the codec payload");

  const ByteView payload = in.subspan(h.header_bytes);
  if (compute_checksum(in.first(h.header_bytes - kChecksumBytes), payload) != h.checksum)
    return corrupt("codec checksum mismatch");

  if (h.zstd) {
    // The frame must say how big it inflates to, and that must be exactly what the header's
    // element count implies (already capped), so a small frame cannot make us allocate a lot.
    unsigned long long content = ZSTD_getFrameContentSize(payload.data(), payload.size());
    if (content == ZSTD_CONTENTSIZE_ERROR) return corrupt("not a zstd frame");
    if (content == ZSTD_CONTENTSIZE_UNKNOWN) return corrupt("zstd frame without a content size");
    if (content != h.raw_payload_bytes) return corrupt("zstd content size does not match the header");
    size_t frame = ZSTD_findFrameCompressedSize(payload.data(), payload.size());
    if (ZSTD_isError(frame) || frame != payload.size()) return corrupt("zstd payload is not exactly one frame");
    v.inflated.resize(h.raw_payload_bytes);
    std::unique_ptr<ZSTD_DCtx, ZstdDCtxFree> dctx(ZSTD_createDCtx());
    if (!dctx) return internal_error("ZSTD_createDCtx failed");
    size_t got = ZSTD_decompressDCtx(dctx.get(), v.inflated.data(), v.inflated.size(), payload.data(),
                                     payload.size());
    if (ZSTD_isError(got)) return corrupt(std::string("zstd: ") + ZSTD_getErrorName(got));
    if (got != h.raw_payload_bytes) return corrupt("zstd frame inflated to the wrong size");
    v.use_inflated = true;
  }
  NOLOCO_RETURN_IF_ERROR(validate_raw(h.mode, h.element_count, h.block_size, v.raw(in)));
  return v;
}

}  // namespace

Status decode_into(ByteView in, const DecodeLimits& limits, std::span<float> out) {
  NOLOCO_ASSIGN_OR_RETURN(Verified v, verify(in, limits));
  const Header& h = v.header;
  if (out.size() != h.element_count)
    return invalid_argument("output has " + std::to_string(out.size()) + " entries, message has " +
                            std::to_string(h.element_count));
  dequantize(h.mode, h.element_count, h.block_size, v.raw(in), out.data());
  return Status::Ok();
}

Result<Decoded> decode(ByteView in, const DecodeLimits& limits) {
  NOLOCO_ASSIGN_OR_RETURN(Verified v, verify(in, limits));
  Decoded d;
  d.header = v.header;
  d.values.resize(v.header.element_count);
  dequantize(v.header.mode, v.header.element_count, v.header.block_size, v.raw(in), d.values.data());
  return d;
}

uint64_t raw_payload_bytes(Mode mode, uint64_t n, uint32_t block_size) {
  return raw_payload_size(mode, n, is_block_mode(mode) ? block_size : 0);
}

void encode_raw(Mode mode, std::span<const float> x, uint32_t block_size, uint8_t* out) {
  build_raw(mode, x, is_block_mode(mode) ? block_size : 0, out);
}

Status decode_raw(Mode mode, uint32_t block_size, ByteView raw, std::span<float> out) {
  if (static_cast<uint8_t>(mode) > static_cast<uint8_t>(Mode::kInt4)) return unsupported("unknown codec mode");
  const uint32_t block = is_block_mode(mode) ? block_size : 0;
  if (block != 0 && (block < kMinBlockSize || block > kMaxBlockSize)) return invalid_argument("bad block size");
  if (out.size() > kHardMaxElements) return too_large("too many values");
  if (raw.size() != raw_payload_size(mode, out.size(), block))
    return corrupt("raw payload of " + std::to_string(raw.size()) + " bytes for " + std::to_string(out.size()) +
                   " " + mode_name(mode) + " values");
  NOLOCO_RETURN_IF_ERROR(validate_raw(mode, out.size(), block, raw.data()));
  dequantize(mode, out.size(), block, raw.data(), out.data());
  return Status::Ok();
}

double error_bound(Mode mode, double x, double block_absmax) {
  switch (mode) {
    case Mode::kFp32: return 0.0;
    case Mode::kBf16: return std::max(std::fabs(x) * 0x1p-8, 0x1p-134);
    case Mode::kInt8:
    case Mode::kInt4: {
      const double q = qmax(mode);
      return block_absmax / (2 * q) + block_absmax * 0x1p-23 + 0x1p-149;
    }
  }
  return 0.0;
}

}  // namespace noloco::codec
