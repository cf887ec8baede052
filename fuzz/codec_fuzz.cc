// libFuzzer target for trainer/core/codec. The first input byte picks what the rest is:
//   0: a message, decoded as is (the checksum stops most mutations early);
//   1: a message whose checksum this harness recomputes first, so the fuzzer reaches the size,
//      zstd-frame and value checks behind the checksum;
//   2: encoder options + float values: encode, decode, and check the documented error bound.
// Any crash, sanitizer report or broken invariant (__builtin_trap) is a bug.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

#include "common/hash.h"
#include "trainer/core/codec.h"
#include "trainer/core/codec_stream.h"

using namespace noloco;
using namespace noloco::codec;

namespace {

constexpr DecodeLimits kLimits{uint64_t{1} << 20, uint64_t{1} << 22};

void check(bool ok) {
  if (!ok) __builtin_trap();
}

void reseal(Bytes& msg) {
  if (msg.size() < kFixedHeaderBytes) return;
  const size_t at = kFixedHeaderBytes + 8 * size_t{msg[8]};
  if (at + 8 > msg.size()) return;
  const uint64_t h = xxh3_64(ByteView(msg).subspan(at + 8), xxh3_64(ByteView(msg).first(at)));
  for (int s = 0; s < 8; ++s) msg[at + s] = static_cast<uint8_t>(h >> (8 * s));
}

// The chunked decoder (codec_stream.h), read in chunks of 6 values: it accepts exactly what
// decode accepts and yields the same values.
Result<std::vector<float>> decode_chunked(const Bytes& msg) {
  NOLOCO_ASSIGN_OR_RETURN(auto dec, ChunkDecoder::open(msg, kLimits));
  std::vector<float> out(dec->header().element_count);
  for (size_t b = 0; b < out.size(); b += 6)
    NOLOCO_RETURN_IF_ERROR(dec->next(std::span<float>(out.data() + b, std::min<size_t>(6, out.size() - b))));
  return out;
}

void decode_and_check(const Bytes& msg) {
  auto header = parse_header(msg, kLimits);
  auto d = decode(msg, kLimits);
  auto chunked = decode_chunked(msg);
  check(chunked.ok() == d.ok());
  if (!d.ok()) return;
  check(std::memcmp(chunked->data(), d->values.data(), 4 * d->values.size()) == 0);
  check(header.ok());
  check(header->total_bytes == msg.size());
  check(d->values.size() == d->header.element_count);
  for (float v : d->values) check(std::isfinite(v));
  // decode_into agrees with decode, and refuses a wrongly sized output.
  std::vector<float> out(d->values.size());
  check(decode_into(msg, kLimits, out).ok());
  check(std::memcmp(out.data(), d->values.data(), 4 * out.size()) == 0);
  std::vector<float> wrong(d->values.size() + 1);
  check(!decode_into(msg, kLimits, wrong).ok());
  // fp32 and bf16 without zstd are canonical: re-encoding gives back the same bytes.
  const Header& h = d->header;
  if (!h.zstd && (h.mode == Mode::kFp32 || h.mode == Mode::kBf16)) {
    EncodeOptions opt;
    opt.mode = h.mode;
    opt.source_dtype = h.source_dtype;
    auto again = encode(d->values, h.shape(), opt);
    check(again.ok());
    check(*again == msg);
  }
}

void round_trip(const uint8_t* data, size_t size) {
  if (size < 3) return;
  EncodeOptions opt;
  opt.mode = static_cast<Mode>(data[0] % 4);
  opt.zstd = (data[0] & 4) != 0;
  opt.zstd_level = 1;
  opt.block_size = kMinBlockSize + (data[1] | (data[2] << 8)) % 300;
  data += 3;
  size -= 3;
  std::vector<float> x(size / 4);
  if (!x.empty()) std::memcpy(x.data(), data, 4 * x.size());
  bool finite = true;
  for (float v : x) finite &= std::isfinite(v);
  auto msg = encode(x, {static_cast<int64_t>(x.size())}, opt);
  check(msg.ok() == finite);
  if (!msg.ok()) return;
  auto d = decode(*msg, kLimits);
  check(d.ok());
  check(d->values.size() == x.size());
  for (size_t b0 = 0; b0 < x.size(); b0 += opt.block_size) {
    const size_t b1 = std::min(x.size(), b0 + opt.block_size);
    double amax = 0;
    for (size_t j = b0; j < b1; ++j) amax = std::max(amax, std::fabs(double(x[j])));
    for (size_t i = b0; i < b1; ++i)
      check(std::fabs(double(x[i]) - double(d->values[i])) <= error_bound(opt.mode, x[i], amax));
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1 || size > (size_t{1} << 20)) return 0;
  const uint8_t kind = data[0] % 3;
  if (kind == 2) {
    round_trip(data + 1, size - 1);
    return 0;
  }
  Bytes msg(data + 1, data + size);
  if (kind == 1) reseal(msg);
  decode_and_check(msg);
  return 0;
}
