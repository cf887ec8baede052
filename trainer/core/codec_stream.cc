// Chunked encode and decode of one codec message (codec_stream.h; format: docs/codec.md).
#include "trainer/core/codec_stream.h"

#include <xxhash.h>
#include <zstd.h>

#include <algorithm>
#include <cmath>
#include <string>

#include "common/hash.h"
#include "trainer/core/codec_internal.h"

namespace noloco::codec {
namespace {

using namespace detail;

// Collects bytes into pieces of at most `cap`; piece 0 is kept for the header.
class PieceSink {
 public:
  PieceSink(size_t cap, size_t header_bytes) : cap_(cap) { pieces_.emplace_back(header_bytes, 0); }
  void append(const uint8_t* p, size_t n) {
    while (n > 0) {
      if (pieces_.size() == 1 || pieces_.back().size() == cap_) {
        pieces_.emplace_back();
        pieces_.back().reserve(cap_);
      }
      Bytes& b = pieces_.back();
      const size_t take = std::min(n, cap_ - b.size());
      b.insert(b.end(), p, p + take);
      p += take;
      n -= take;
      payload_ += take;
    }
  }
  uint64_t payload_bytes() const { return payload_; }
  std::vector<Bytes>& pieces() { return pieces_; }

 private:
  size_t cap_;
  uint64_t payload_ = 0;
  std::vector<Bytes> pieces_;
};

// The raw payload goes straight to the sink, or through zstd's streaming compressor.
class RawOut {
 public:
  RawOut(PieceSink& sink, const EncodeOptions& opt, uint64_t raw_size) : sink_(sink) {
    if (!opt.zstd) return;
    cctx_.reset(ZSTD_createCCtx());
    if (!cctx_) return;
    // The decoder requires the frame to state its content size: pledge it.
    ZSTD_CCtx_setParameter(cctx_.get(), ZSTD_c_contentSizeFlag, 1);
    ZSTD_CCtx_setParameter(cctx_.get(), ZSTD_c_compressionLevel, opt.zstd_level);
    ZSTD_CCtx_setPledgedSrcSize(cctx_.get(), raw_size);
    zbuf_.resize(ZSTD_CStreamOutSize());
  }
  bool ready(const EncodeOptions& opt) const { return !opt.zstd || cctx_ != nullptr; }
  Status emit(const uint8_t* p, size_t n) {
    if (!cctx_) {
      sink_.append(p, n);
      return Status::Ok();
    }
    ZSTD_inBuffer in{p, n, 0};
    while (in.pos < in.size) NOLOCO_RETURN_IF_ERROR(step(in, ZSTD_e_continue).status());
    return Status::Ok();
  }
  Status end() {
    if (!cctx_) return Status::Ok();
    ZSTD_inBuffer in{nullptr, 0, 0};
    for (;;) {
      NOLOCO_ASSIGN_OR_RETURN(size_t left, step(in, ZSTD_e_end));
      if (left == 0) return Status::Ok();
    }
  }

 private:
  Result<size_t> step(ZSTD_inBuffer& in, ZSTD_EndDirective mode) {
    ZSTD_outBuffer out{zbuf_.data(), zbuf_.size(), 0};
    const size_t r = ZSTD_compressStream2(cctx_.get(), &out, &in, mode);
    if (ZSTD_isError(r)) return internal_error(std::string("zstd: ") + ZSTD_getErrorName(r));
    sink_.append(zbuf_.data(), out.pos);
    return r;
  }
  PieceSink& sink_;
  std::unique_ptr<ZSTD_CCtx, ZstdCCtxFree> cctx_;
  Bytes zbuf_;
};

// Values per chunk: for int8/int4 a whole number of blocks and an even count, so that chunk
// scales and int4 nibble pairs line up with the whole tensor's.
uint64_t chunk_values(Mode mode, uint32_t block) {
  if (!is_block_mode(mode)) return kChunkValues;
  const uint64_t unit = 2 * static_cast<uint64_t>(block);
  return std::max<uint64_t>(unit, kChunkValues / unit * unit);
}

// One pass over the source. Block modes: part 0 writes the chunk's scales, part 1 its codes.
Status encode_pass(const ValueSource& src, uint64_t n, Mode mode, uint32_t block, int part, RawOut& out) {
  const uint64_t K = chunk_values(mode, block);
  std::vector<float> vals(static_cast<size_t>(std::min(K, n)));
  Bytes raw(static_cast<size_t>(raw_payload_size(mode, vals.size(), block)));
  for (uint64_t b = 0; b < n; b += K) {
    const uint64_t k = std::min(K, n - b);
    const std::span<float> chunk(vals.data(), static_cast<size_t>(k));
    src(b, chunk);
    if (size_t bad = first_non_finite(chunk); bad != chunk.size())
      return invalid_argument("non-finite value at index " + std::to_string(b + bad) + " cannot be encoded");
    build_raw(mode, chunk, block, raw.data());
    const uint64_t size = raw_payload_size(mode, k, block);
    if (!is_block_mode(mode)) {
      NOLOCO_RETURN_IF_ERROR(out.emit(raw.data(), static_cast<size_t>(size)));
      continue;
    }
    const uint64_t scale_bytes = 4 * block_count(k, block);
    if (part == 0) NOLOCO_RETURN_IF_ERROR(out.emit(raw.data(), static_cast<size_t>(scale_bytes)));
    else NOLOCO_RETURN_IF_ERROR(out.emit(raw.data() + scale_bytes, static_cast<size_t>(size - scale_bytes)));
  }
  return Status::Ok();
}

uint64_t checksum_of_pieces(const std::vector<Bytes>& pieces, ByteView header_without_checksum) {
  std::unique_ptr<XXH3_state_t, decltype(&XXH3_freeState)> st(XXH3_createState(), &XXH3_freeState);
  XXH3_64bits_reset_withSeed(st.get(), xxh3_64(header_without_checksum));
  for (size_t i = 1; i < pieces.size(); ++i) XXH3_64bits_update(st.get(), pieces[i].data(), pieces[i].size());
  return XXH3_64bits_digest(st.get());
}

}  // namespace

Result<std::vector<Bytes>> encode_pieces(const ValueSource& source, uint64_t count, const std::vector<int64_t>& shape,
                                         const EncodeOptions& opt, size_t piece_bytes) {
  NOLOCO_RETURN_IF_ERROR(opt.validate());
  if (piece_bytes < 64) return invalid_argument("codec pieces must hold at least 64 bytes");
  if (count > kHardMaxElements) return invalid_argument("tensor has too many elements");
  NOLOCO_RETURN_IF_ERROR(check_shape(shape, static_cast<size_t>(count)));
  const uint32_t block = is_block_mode(opt.mode) ? opt.block_size : 0;
  const uint64_t hdr = header_size(shape.size());
  PieceSink sink(piece_bytes, static_cast<size_t>(hdr));
  RawOut out(sink, opt, raw_payload_size(opt.mode, count, block));
  if (!out.ready(opt)) return internal_error("ZSTD_createCCtx failed");
  NOLOCO_RETURN_IF_ERROR(encode_pass(source, count, opt.mode, block, 0, out));
  if (is_block_mode(opt.mode)) NOLOCO_RETURN_IF_ERROR(encode_pass(source, count, opt.mode, block, 1, out));
  NOLOCO_RETURN_IF_ERROR(out.end());
  std::vector<Bytes>& pieces = sink.pieces();
  uint8_t* h = pieces[0].data();
  write_header_fields(h, opt, shape, block, count, sink.payload_bytes());
  const size_t checked = static_cast<size_t>(hdr - kChecksumBytes);
  put_u64_at(h + checked, checksum_of_pieces(pieces, ByteView(h, checked)));
  return std::move(pieces);
}

// ---- ChunkDecoder ----

ChunkDecoder::~ChunkDecoder() { ZSTD_freeDCtx(dctx_); }

Result<std::unique_ptr<ChunkDecoder>> ChunkDecoder::open(ByteView in, const DecodeLimits& limits) {
  if (in.size() > limits.max_encoded_bytes) return too_large("encoded tensor over the byte limit");
  std::unique_ptr<ChunkDecoder> d(new ChunkDecoder());
  NOLOCO_ASSIGN_OR_RETURN(d->h_, parse_header(in, limits));
  const Header& h = d->h_;
  if (in.size() < h.total_bytes) return truncated("codec payload cut short");
  if (in.size() > h.total_bytes) return corrupt("trailing bytes after the codec payload");
  d->payload_ = in.subspan(static_cast<size_t>(h.header_bytes));
  if (compute_checksum(in.first(static_cast<size_t>(h.header_bytes - kChecksumBytes)), d->payload_) != h.checksum)
    return corrupt("codec checksum mismatch");
  if (h.zstd) {
    const ByteView p = d->payload_;
    unsigned long long content = ZSTD_getFrameContentSize(p.data(), p.size());
    if (content == ZSTD_CONTENTSIZE_ERROR) return corrupt("not a zstd frame");
    if (content == ZSTD_CONTENTSIZE_UNKNOWN) return corrupt("zstd frame without a content size");
    if (content != h.raw_payload_bytes) return corrupt("zstd content size does not match the header");
    size_t frame = ZSTD_findFrameCompressedSize(p.data(), p.size());
    if (ZSTD_isError(frame) || frame != p.size()) return corrupt("zstd payload is not exactly one frame");
    d->dctx_ = ZSTD_createDCtx();
    if (!d->dctx_) return internal_error("ZSTD_createDCtx failed");
  }
  if (is_block_mode(h.mode)) {
    const uint64_t nb = block_count(h.element_count, h.block_size);
    d->scales_.resize(static_cast<size_t>(4 * nb));
    NOLOCO_RETURN_IF_ERROR(d->pull(d->scales_.data(), d->scales_.size()));
    for (uint64_t b = 0; b < nb; ++b) {
      const uint32_t s = get_u32_le(d->scales_.data() + 4 * b);
      // Scales are block absmaxes: finite and >= +0 (the sign bit is never set).
      if (!finite_bits(s) || (s >> 31) != 0) return corrupt("bad scale in block " + std::to_string(b));
    }
  }
  if (h.raw_payload_bytes == 0) NOLOCO_RETURN_IF_ERROR(d->end_of_frame());
  return d;
}

Status ChunkDecoder::pull(uint8_t* dst, size_t bytes) {
  if (bytes == 0) return Status::Ok();  // an empty tensor: dst may be null, and memcpy must not see it
  if (!dctx_) {
    // Sizes were checked against the header: the plain payload holds exactly the raw bytes.
    std::memcpy(dst, payload_.data() + in_pos_, bytes);
    in_pos_ += bytes;
    return Status::Ok();
  }
  ZSTD_outBuffer out{dst, bytes, 0};
  while (out.pos < out.size) {
    ZSTD_inBuffer in{payload_.data(), payload_.size(), in_pos_};
    const size_t before_in = in.pos, before_out = out.pos;
    last_zstd_ret_ = ZSTD_decompressStream(dctx_, &out, &in);
    in_pos_ = in.pos;
    if (ZSTD_isError(last_zstd_ret_)) return corrupt(std::string("zstd: ") + ZSTD_getErrorName(last_zstd_ret_));
    if (out.pos < out.size && (last_zstd_ret_ == 0 || (in.pos == before_in && out.pos == before_out)))
      return corrupt("zstd frame inflated to less than its content size");
  }
  return Status::Ok();
}

// After the last raw byte: the frame must be complete, with nothing left to inflate.
Status ChunkDecoder::end_of_frame() {
  if (!dctx_) return Status::Ok();
  uint8_t extra = 0;
  for (int i = 0; last_zstd_ret_ != 0 && i < 4; ++i) {
    ZSTD_outBuffer out{&extra, 1, 0};
    ZSTD_inBuffer in{payload_.data(), payload_.size(), in_pos_};
    last_zstd_ret_ = ZSTD_decompressStream(dctx_, &out, &in);
    in_pos_ = in.pos;
    if (ZSTD_isError(last_zstd_ret_)) return corrupt(std::string("zstd: ") + ZSTD_getErrorName(last_zstd_ret_));
    if (out.pos != 0) return corrupt("zstd frame inflated past its content size");
  }
  if (last_zstd_ret_ != 0 || in_pos_ != payload_.size()) return corrupt("zstd frame does not end with the payload");
  return Status::Ok();
}

Status ChunkDecoder::check_chunk(uint64_t k) const {
  const uint8_t* raw = buf_.data();
  switch (h_.mode) {
    case Mode::kFp32:
      for (uint64_t i = 0; i < k; ++i)
        if (!finite_bits(get_u32_le(raw + 4 * i)))
          return corrupt("non-finite fp32 value at index " + std::to_string(pos_ + i));
      return Status::Ok();
    case Mode::kBf16:
      for (uint64_t i = 0; i < k; ++i)
        if ((load_u16(raw + 2 * i) & 0x7F80u) == 0x7F80u)
          return corrupt("non-finite bf16 value at index " + std::to_string(pos_ + i));
      return Status::Ok();
    case Mode::kInt8: {
      bool bad = false;
      for (uint64_t i = 0; i < k; ++i) bad |= raw[i] == 0x80;
      return bad ? corrupt("int8 code -128 is not produced by the encoder") : Status::Ok();
    }
    case Mode::kInt4: {
      const uint64_t bytes = (k + 1) / 2;
      bool bad = false;
      for (uint64_t i = 0; i < bytes; ++i) bad |= (raw[i] & 0x0F) == 0x08 || (raw[i] & 0xF0) == 0x80;
      if (bad) return corrupt("int4 code -8 is not produced by the encoder");
      if ((k & 1) && (raw[bytes - 1] & 0xF0) != 0) return corrupt("int4 padding nibble is not zero");
      return Status::Ok();
    }
  }
  return unsupported("unknown mode");
}

void ChunkDecoder::dequantize_chunk(std::span<float> out) const {
  const uint8_t* raw = buf_.data();
  const uint64_t k = out.size();
  if (h_.mode == Mode::kFp32) {
    std::memcpy(out.data(), raw, 4 * k);
    return;
  }
  if (h_.mode == Mode::kBf16) {
    for (uint64_t i = 0; i < k; ++i) out[i] = from_bf16(load_u16(raw + 2 * i));
    return;
  }
  const double q = qmax(h_.mode);
  const uint64_t B = h_.block_size;
  for (uint64_t i = 0; i < k;) {
    const uint64_t g = pos_ + i;
    // The step in double so that a subnormal scale keeps its precision (as codec.cc's dequantize).
    const double step = static_cast<double>(load_f32(scales_.data() + 4 * (g / B))) / q;
    const uint64_t end = std::min(k, i + (B - g % B));
    if (h_.mode == Mode::kInt8) {
      for (; i < end; ++i) out[i] = static_cast<float>(static_cast<int8_t>(raw[i]) * step);
    } else {
      for (; i < end; ++i) {
        const int nib = (raw[i >> 1] >> (4 * (i & 1))) & 0xF;
        out[i] = static_cast<float>((nib >= 8 ? nib - 16 : nib) * step);
      }
    }
  }
}

Status ChunkDecoder::next(std::span<float> out) {
  const uint64_t k = out.size();
  const uint64_t n = h_.element_count;
  if (k > n - pos_) return invalid_argument("chunk runs past the tensor's " + std::to_string(n) + " values");
  if (k == 0) return Status::Ok();
  if (h_.mode == Mode::kInt4 && ((pos_ & 1) || ((k & 1) && pos_ + k != n)))
    return invalid_argument("int4 chunks must start at an even value");
  const uint64_t bytes = h_.mode == Mode::kFp32 ? 4 * k
                         : h_.mode == Mode::kBf16 ? 2 * k
                         : h_.mode == Mode::kInt8 ? k
                                                  : (k + 1) / 2;
  if (buf_.size() < bytes) buf_.resize(static_cast<size_t>(bytes));
  NOLOCO_RETURN_IF_ERROR(pull(buf_.data(), static_cast<size_t>(bytes)));
  NOLOCO_RETURN_IF_ERROR(check_chunk(k));
  dequantize_chunk(out);
  pos_ += k;
  if (pos_ == n) return end_of_frame();
  return Status::Ok();
}

}  // namespace noloco::codec
