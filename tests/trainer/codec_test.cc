// Tensor codec: round trips within the documented bound (docs/codec.md), and hostile input
// (truncated, flipped, oversized, zstd bombs, bad scales) refused with nothing written.
#include "trainer/core/codec.h"

#include <zstd.h>

#include <algorithm>
#include <bit>
#include <catch2/catch.hpp>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "common/hash.h"

using namespace noloco;
using namespace noloco::codec;

namespace {

constexpr Mode kModes[] = {Mode::kFp32, Mode::kBf16, Mode::kInt8, Mode::kInt4};

// A mix that exercises every corner the bounds talk about: Gaussian bulk, large outliers, exact
// zeros (including whole zero blocks), negative values, subnormals and values near FLT_MAX.
std::vector<float> nasty_values(size_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::uniform_int_distribution<int> kind(0, 19);
  std::vector<float> v(n);
  for (size_t i = 0; i < n; ++i) {
    switch (kind(rng)) {
      case 0: v[i] = 0.0f; break;
      case 1: v[i] = normal(rng) * 1e4f; break;                            // outlier
      case 2: v[i] = normal(rng) * 1e-30f; break;                          // tiny
      case 3: v[i] = std::numeric_limits<float>::denorm_min() * (1 + (i % 5)); break;
      case 4: v[i] = -std::numeric_limits<float>::denorm_min() * 1000; break;
      default: v[i] = normal(rng) * 1e-3f; break;                          // gradient-like
    }
  }
  // A zero block and a block of only subnormals, wherever n allows.
  for (size_t i = 0; i < std::min<size_t>(n, 8); ++i) v[i] = 0.0f;
  return v;
}

std::vector<float> huge_values(size_t n) {
  std::vector<float> v(n);
  const float m = std::numeric_limits<float>::max();
  for (size_t i = 0; i < n; ++i) v[i] = (i % 2 ? -m : m) * (1.0f - 1e-7f * static_cast<float>(i % 7));
  return v;
}

DecodeLimits generous() { return {uint64_t{1} << 24, uint64_t{1} << 28}; }

// Checks every decoded value against error_bound with its block's absmax computed here.
void require_within_bound(Mode mode, uint32_t block, const std::vector<float>& x, const std::vector<float>& y) {
  REQUIRE(x.size() == y.size());
  for (size_t i = 0; i < x.size(); ++i) {
    double amax = 0;
    if (mode == Mode::kInt8 || mode == Mode::kInt4) {
      size_t b0 = i / block * block;
      for (size_t j = b0; j < std::min(x.size(), b0 + block); ++j) amax = std::max(amax, std::fabs(double(x[j])));
    }
    REQUIRE(std::isfinite(y[i]));
    const double err = std::fabs(double(x[i]) - double(y[i]));
    const double bound = error_bound(mode, x[i], amax);
    if (err > bound) {
      INFO("mode " << mode_name(mode) << " block " << block << " i " << i << " x " << x[i] << " y " << y[i]
                   << " err " << err << " bound " << bound);
      REQUIRE(err <= bound);
    }
  }
}

// Rewrites the checksum after a deliberate header/payload edit, so a test reaches the check
// behind the checksum instead of stopping at it.
void reseal(Bytes& msg) {
  const size_t ndim = msg[8];
  const size_t at = kFixedHeaderBytes + 8 * ndim;
  if (at + 8 > msg.size()) return;
  uint64_t h = xxh3_64(ByteView(msg).subspan(at + 8), xxh3_64(ByteView(msg).first(at)));
  for (int s = 0; s < 8; ++s) msg[at + s] = static_cast<uint8_t>(h >> (8 * s));
}

void put_u64(Bytes& msg, size_t at, uint64_t v) {
  for (int s = 0; s < 8; ++s) msg[at + s] = static_cast<uint8_t>(v >> (8 * s));
}

Bytes must_encode(const std::vector<float>& x, std::vector<int64_t> shape, EncodeOptions opt) {
  auto r = encode(x, shape, opt);
  INFO(r.status().to_string());
  REQUIRE(r.ok());
  return std::move(r).value();
}

StatusCode decode_code(ByteView msg, DecodeLimits limits = generous()) {
  auto r = decode(msg, limits);
  return r.ok() ? StatusCode::kOk : r.status().code();
}

}  // namespace

TEST_CASE("fp32 round trip is bit-exact, including -0, subnormals and FLT_MAX", "[codec]") {
  std::vector<float> x = nasty_values(1001, 1);
  x[10] = -0.0f;
  x[11] = std::numeric_limits<float>::max();
  x[12] = -std::numeric_limits<float>::max();
  x[13] = std::numeric_limits<float>::denorm_min();
  for (bool z : {false, true}) {
    EncodeOptions opt;
    opt.mode = Mode::kFp32;
    opt.zstd = z;
    Bytes msg = must_encode(x, {7, 11, 13}, opt);
    auto d = decode(msg, generous());
    REQUIRE(d.ok());
    REQUIRE(d->values.size() == x.size());
    for (size_t i = 0; i < x.size(); ++i) REQUIRE(std::bit_cast<uint32_t>(d->values[i]) == std::bit_cast<uint32_t>(x[i]));
    CHECK(d->header.shape() == std::vector<int64_t>{7, 11, 13});
    CHECK(d->header.mode == Mode::kFp32);
    CHECK(d->header.zstd == z);
  }
}

TEST_CASE("every lossy mode stays within its documented bound", "[codec]") {
  for (Mode mode : kModes) {
    for (uint32_t block : {4u, 7u, 64u, 128u, 1000u}) {
      for (size_t n : {size_t{1}, size_t{3}, size_t{127}, size_t{129}, size_t{1000}, size_t{4099}}) {
        for (bool z : {false, true}) {
          EncodeOptions opt;
          opt.mode = mode;
          opt.block_size = block;
          opt.zstd = z;
          const auto x = nasty_values(n, n * 31 + block);
          Bytes msg = must_encode(x, {static_cast<int64_t>(n)}, opt);
          auto d = decode(msg, generous());
          INFO(d.status().to_string());
          REQUIRE(d.ok());
          require_within_bound(mode, block, x, d->values);
        }
      }
    }
  }
}

TEST_CASE("values near FLT_MAX stay finite and within bound (bf16 saturates instead of overflowing)", "[codec]") {
  const auto x = huge_values(257);
  for (Mode mode : kModes) {
    EncodeOptions opt;
    opt.mode = mode;
    auto d = decode(must_encode(x, {257}, opt), generous());
    REQUIRE(d.ok());
    require_within_bound(mode, opt.block_size, x, d->values);
  }
}

TEST_CASE("bf16 is exact on bf16 values, int modes are exact on zero blocks and block maxima", "[codec]") {
  std::vector<float> x = nasty_values(512, 5);
  for (float& f : x) f = std::bit_cast<float>(std::bit_cast<uint32_t>(f) & 0xFFFF0000u);
  EncodeOptions opt;
  opt.mode = Mode::kBf16;
  opt.source_dtype = SourceDtype::kBFloat16;
  auto d = decode(must_encode(x, {512}, opt), generous());
  REQUIRE(d.ok());
  CHECK(d->header.source_dtype == SourceDtype::kBFloat16);
  for (size_t i = 0; i < x.size(); ++i) REQUIRE(d->values[i] == x[i]);

  std::vector<float> y(256, 0.0f);
  y[200] = -3.0f;  // the block [128, 256) has absmax 3, which must come back exactly
  for (Mode mode : {Mode::kInt8, Mode::kInt4}) {
    opt.mode = mode;
    auto e = decode(must_encode(y, {16, 16}, opt), generous());
    REQUIRE(e.ok());
    for (size_t i = 0; i < 128; ++i) REQUIRE(e->values[i] == 0.0f);
    CHECK(e->values[200] == -3.0f);
  }
}

TEST_CASE("scalars and empty tensors round trip", "[codec]") {
  for (Mode mode : kModes) {
    for (bool z : {false, true}) {
      EncodeOptions opt;
      opt.mode = mode;
      opt.zstd = z;
      auto s = decode(must_encode({2.5f}, {}, opt), generous());
      REQUIRE(s.ok());
      CHECK(s->header.ndim == 0);
      CHECK(s->values == std::vector<float>{2.5f});
      auto e = decode(must_encode({}, {3, 0, 5}, opt), generous());
      REQUIRE(e.ok());
      CHECK(e->values.empty());
      CHECK(e->header.shape() == std::vector<int64_t>{3, 0, 5});
    }
  }
}

TEST_CASE("encoding is deterministic and zstd is lossless on top of each mode", "[codec]") {
  const auto x = nasty_values(3000, 9);
  for (Mode mode : kModes) {
    EncodeOptions a;
    a.mode = mode;
    EncodeOptions b = a;
    b.zstd = true;
    b.zstd_level = 9;
    CHECK(must_encode(x, {3000}, a) == must_encode(x, {3000}, a));
    auto da = decode(must_encode(x, {3000}, a), generous());
    auto db = decode(must_encode(x, {3000}, b), generous());
    REQUIRE((da.ok() && db.ok()));
    for (size_t i = 0; i < x.size(); ++i)
      REQUIRE(std::bit_cast<uint32_t>(da->values[i]) == std::bit_cast<uint32_t>(db->values[i]));
  }
}

TEST_CASE("sizes follow the mode: 4, 2, 1 + 4/block, 1/2 + 4/block bytes per value", "[codec]") {
  const auto x = nasty_values(1024, 3);
  auto size_of = [&](Mode m) {
    EncodeOptions o;
    o.mode = m;
    o.block_size = 128;
    return must_encode(x, {1024}, o).size();
  };
  const size_t hdr = kFixedHeaderBytes + 8 + 8;  // one dim + checksum
  CHECK(size_of(Mode::kFp32) == hdr + 4096);
  CHECK(size_of(Mode::kBf16) == hdr + 2048);
  CHECK(size_of(Mode::kInt8) == hdr + 8 * 4 + 1024);
  CHECK(size_of(Mode::kInt4) == hdr + 8 * 4 + 512);
}

TEST_CASE("non-finite input and bad options are refused at encode", "[codec]") {
  std::vector<float> x(100, 1.0f);
  for (float bad : {std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity(),
                    -std::numeric_limits<float>::infinity()}) {
    x[42] = bad;
    for (Mode mode : kModes) {
      EncodeOptions opt;
      opt.mode = mode;
      auto r = encode(x, {100}, opt);
      REQUIRE_FALSE(r.ok());
      CHECK(r.status().code() == StatusCode::kInvalidArgument);
      CHECK(r.status().message().find("index 42") != std::string::npos);
    }
  }
  x[42] = 1.0f;
  EncodeOptions opt;
  opt.mode = Mode::kInt8;
  for (uint32_t b : {0u, 3u, 65537u}) {
    opt.block_size = b;
    CHECK(encode(x, {100}, opt).status().code() == StatusCode::kInvalidArgument);
  }
  opt.block_size = 64;
  opt.zstd = true;
  for (int level : {0, 99}) {
    opt.zstd_level = level;
    CHECK(encode(x, {100}, opt).status().code() == StatusCode::kInvalidArgument);
  }
  opt.zstd_level = 3;
  CHECK(encode(x, {10, 11}, opt).status().code() == StatusCode::kInvalidArgument);
  CHECK(encode(x, {-10, -10}, opt).status().code() == StatusCode::kInvalidArgument);
  CHECK(encode(x, {100, 1, 1, 1, 1, 1, 1, 1, 1}, opt).status().code() == StatusCode::kInvalidArgument);
  CHECK(encode(x, {100, 1, 1, 1, 1, 1, 1, 1}, opt).ok());
  opt.mode = static_cast<Mode>(9);
  CHECK(encode(x, {100}, opt).status().code() == StatusCode::kInvalidArgument);
}

TEST_CASE("every truncation point is refused and writes nothing", "[codec]") {
  const auto x = nasty_values(300, 4);
  for (Mode mode : kModes) {
    for (bool z : {false, true}) {
      EncodeOptions opt;
      opt.mode = mode;
      opt.zstd = z;
      opt.block_size = 64;
      Bytes msg = must_encode(x, {3, 100}, opt);
      for (size_t len = 0; len < msg.size(); ++len) {
        ByteView cut(msg.data(), len);
        std::vector<float> out(300, 7.0f);
        Status st = decode_into(cut, generous(), out);
        REQUIRE(st.code() == StatusCode::kTruncated);
        REQUIRE(decode_code(cut) == StatusCode::kTruncated);
        REQUIRE(std::all_of(out.begin(), out.end(), [](float f) { return f == 7.0f; }));
      }
      Bytes longer = msg;
      longer.push_back(0);
      CHECK(decode_code(longer) == StatusCode::kCorrupt);
      auto h = parse_header(longer, generous());
      REQUIRE(h.ok());
      CHECK(h->total_bytes == msg.size());
    }
  }
}

TEST_CASE("every single-byte corruption is refused and writes nothing", "[codec]") {
  const auto x = nasty_values(200, 6);
  std::mt19937 rng(77);
  for (Mode mode : kModes) {
    for (bool z : {false, true}) {
      EncodeOptions opt;
      opt.mode = mode;
      opt.zstd = z;
      opt.block_size = 32;
      const Bytes msg = must_encode(x, {200}, opt);
      for (size_t pos = 0; pos < msg.size(); ++pos) {
        for (uint8_t flip : {uint8_t{0x01}, uint8_t{0x80}, static_cast<uint8_t>(1 + rng() % 255)}) {
          Bytes bad = msg;
          bad[pos] ^= flip;
          std::vector<float> out(200, 7.0f);
          Status st = decode_into(bad, generous(), out);
          INFO("mode " << mode_name(mode) << " zstd " << z << " pos " << pos << " flip " << int(flip));
          REQUIRE_FALSE(st.ok());
          REQUIRE(std::all_of(out.begin(), out.end(), [](float f) { return f == 7.0f; }));
        }
      }
    }
  }
}

TEST_CASE("unknown magic, version, mode, flags, dtype and reserved bytes are refused", "[codec]") {
  EncodeOptions opt;
  opt.mode = Mode::kInt8;
  const Bytes msg = must_encode(nasty_values(64, 2), {64}, opt);
  struct Edit {
    size_t at;
    uint8_t value;
    StatusCode want;
  };
  for (Edit e : {Edit{0, 'X', StatusCode::kCorrupt}, Edit{4, 3, StatusCode::kUnsupported},
                 Edit{4, 1, StatusCode::kUnsupported},
                 Edit{4, 0, StatusCode::kUnsupported}, Edit{5, 4, StatusCode::kUnsupported},
                 Edit{6, 0x02, StatusCode::kUnsupported}, Edit{7, 3, StatusCode::kUnsupported},
                 Edit{8, 9, StatusCode::kCorrupt}, Edit{9, 1, StatusCode::kCorrupt},
                 Edit{11, 1, StatusCode::kCorrupt}}) {
    Bytes bad = msg;
    bad[e.at] = e.value;
    reseal(bad);  // no-op protection: these must fail on their own merits, not the checksum
    INFO("byte " << e.at << " = " << int(e.value));
    CHECK(decode_code(bad) == e.want);
  }
}

// Version 1 differed only in its checksum (legacy_hash64). Such a message, exactly as a peer running
// the older build sends it, is refused with the reason, never decoded.
TEST_CASE("a version 1 message from an older peer is refused, naming the cause", "[codec]") {
  EncodeOptions opt;
  opt.mode = Mode::kBf16;
  Bytes old = must_encode(nasty_values(300, 3), {3, 100}, opt);
  REQUIRE(old[4] == kFormatVersion);
  REQUIRE(kFormatVersion == 2);
  old[4] = 1;
  const size_t at = kFixedHeaderBytes + 8 * size_t{old[8]};
  const uint64_t h = legacy_hash64(ByteView(old).subspan(at + 8), legacy_hash64(ByteView(old).first(at)));
  put_u64(old, at, h);
  auto d = decode(old, generous());
  REQUIRE_FALSE(d.ok());
  CHECK(d.status().code() == StatusCode::kUnsupported);
  CHECK(d.status().message().find("codec format version 1") != std::string::npos);
  CHECK(d.status().message().find("older noloco") != std::string::npos);
  CHECK(d.status().message().find("upgrade") != std::string::npos);
  CHECK(parse_header(old, generous()).status().code() == StatusCode::kUnsupported);
  std::vector<float> out(300, -7.0f);
  CHECK(decode_into(old, generous(), out).code() == StatusCode::kUnsupported);
  CHECK(out == std::vector<float>(300, -7.0f));

  Bytes newer = must_encode(nasty_values(300, 3), {3, 100}, opt);
  newer[4] = 3;
  reseal(newer);
  auto n = decode(newer, generous());
  CHECK(n.status().code() == StatusCode::kUnsupported);
  CHECK(n.status().message().find("newer than this build") != std::string::npos);
}

TEST_CASE("oversized claims are refused before allocating", "[codec]") {
  EncodeOptions opt;
  opt.mode = Mode::kFp32;
  const Bytes msg = must_encode(std::vector<float>(16, 1.0f), {16}, opt);

  SECTION("2^40 elements") {
    Bytes bad = msg;
    put_u64(bad, 16, uint64_t{1} << 40);
    put_u64(bad, 32, uint64_t{1} << 40);
    put_u64(bad, 24, uint64_t{1} << 42);
    reseal(bad);
    // Even with limits that would allow it, the payload length cannot match: refused, not allocated.
    CHECK(decode_code(bad, {uint64_t{1} << 40, uint64_t{1} << 62}) != StatusCode::kOk);
    CHECK(decode_code(bad) == StatusCode::kTooLarge);
    CHECK(parse_header(bad, generous()).status().code() == StatusCode::kTooLarge);
  }
  SECTION("2^64-1 elements and a dim product that overflows") {
    Bytes bad = msg;
    put_u64(bad, 16, ~uint64_t{0});
    reseal(bad);
    CHECK(decode_code(bad, {~uint64_t{0}, ~uint64_t{0}}) == StatusCode::kTooLarge);
    EncodeOptions o2;
    o2.mode = Mode::kFp32;
    Bytes two = must_encode(std::vector<float>(16, 1.0f), {4, 4}, o2);
    put_u64(two, 32, uint64_t{1} << 32);
    put_u64(two, 40, uint64_t{1} << 32);
    reseal(two);
    CHECK(decode_code(two, {uint64_t{1} << 40, ~uint64_t{0}}) == StatusCode::kTooLarge);
  }
  SECTION("caller limits on elements and bytes") {
    CHECK(decode_code(msg, {15, 1 << 20}) == StatusCode::kTooLarge);
    CHECK(decode_code(msg, {16, msg.size() - 1}) == StatusCode::kTooLarge);
    CHECK(decode_code(msg, {16, msg.size()}) == StatusCode::kOk);
  }
  SECTION("payload length claims") {
    Bytes bad = msg;
    put_u64(bad, 24, ~uint64_t{0} - 20);  // header + payload would wrap past 2^64
    reseal(bad);
    CHECK(decode_code(bad, {1 << 20, ~uint64_t{0}}) == StatusCode::kTooLarge);
    CHECK(parse_header(bad, {1 << 20, ~uint64_t{0}}).status().code() == StatusCode::kTooLarge);
    put_u64(bad, 24, 60);
    reseal(bad);
    CHECK(decode_code(bad) == StatusCode::kCorrupt);  // fp32 of 16 values must be 64 bytes
  }
  SECTION("dims that disagree with the element count") {
    Bytes bad = msg;
    put_u64(bad, 32, 17);
    reseal(bad);
    CHECK(decode_code(bad) == StatusCode::kCorrupt);
  }
}

TEST_CASE("a zstd bomb (small frame, huge content) is refused", "[codec]") {
  EncodeOptions opt;
  opt.mode = Mode::kInt8;
  opt.zstd = true;
  const Bytes msg = must_encode(std::vector<float>(64, 1.0f), {64}, opt);
  const size_t hdr = kFixedHeaderBytes + 8 + 8;

  // 64 MiB of zeros compresses to a few KiB; splice it in as the payload.
  const size_t big = size_t{1} << 26;
  std::vector<uint8_t> zeros(big, 0);
  Bytes frame(ZSTD_compressBound(big));
  size_t fz = ZSTD_compress(frame.data(), frame.size(), zeros.data(), big, 1);
  REQUIRE_FALSE(ZSTD_isError(fz));
  frame.resize(fz);
  zeros = {};

  Bytes bad(msg.begin(), msg.begin() + hdr);
  bad.insert(bad.end(), frame.begin(), frame.end());
  put_u64(bad, 24, frame.size());
  reseal(bad);
  CHECK(decode_code(bad) == StatusCode::kCorrupt);  // content size disagrees with 64 elements

  // The same frame with a header claiming the matching element count is over the caller's cap.
  Bytes claim = bad;
  const uint64_t n = (big * 128) / 132;  // int8, block 128: 132 bytes per 128 values
  put_u64(claim, 16, n);
  put_u64(claim, 32, n);
  reseal(claim);
  CHECK(decode_code(claim) == StatusCode::kTooLarge);

  // A frame that does not state its content size is refused too.
  std::vector<uint8_t> raw(64 * 1 + 4, 0);
  ZSTD_CCtx* c = ZSTD_createCCtx();
  ZSTD_CCtx_setParameter(c, ZSTD_c_contentSizeFlag, 0);
  Bytes f2(ZSTD_compressBound(raw.size()));
  ZSTD_outBuffer out{f2.data(), f2.size(), 0};
  ZSTD_inBuffer in{raw.data(), raw.size(), 0};
  size_t rem = ZSTD_compressStream2(c, &out, &in, ZSTD_e_end);
  ZSTD_freeCCtx(c);
  REQUIRE(rem == 0);
  f2.resize(out.pos);
  REQUIRE(ZSTD_getFrameContentSize(f2.data(), f2.size()) == ZSTD_CONTENTSIZE_UNKNOWN);
  Bytes unknown(msg.begin(), msg.begin() + hdr);
  unknown.insert(unknown.end(), f2.begin(), f2.end());
  put_u64(unknown, 24, f2.size());
  reseal(unknown);
  CHECK(decode_code(unknown) == StatusCode::kCorrupt);

  // Two frames back to back: refused even though the first one is valid.
  Bytes twice = msg;
  twice.insert(twice.end(), msg.begin() + hdr, msg.end());
  put_u64(twice, 24, 2 * (msg.size() - hdr));
  reseal(twice);
  CHECK(decode_code(twice) == StatusCode::kCorrupt);
}

TEST_CASE("checks behind the checksum: non-finite values, bad scales, codes never encoded", "[codec]") {
  const size_t hdr = kFixedHeaderBytes + 8 + 8;
  EncodeOptions opt;
  auto refused_after = [&](Mode mode, auto edit) {
    opt.mode = mode;
    opt.block_size = 16;
    Bytes msg = must_encode(nasty_values(33, 8), {33}, opt);
    edit(msg);
    reseal(msg);
    std::vector<float> out(33, 7.0f);
    Status st = decode_into(msg, generous(), out);
    CHECK(st.code() == StatusCode::kCorrupt);
    CHECK(std::all_of(out.begin(), out.end(), [](float f) { return f == 7.0f; }));
  };
  refused_after(Mode::kFp32, [&](Bytes& m) { std::memset(&m[hdr + 4 * 20], 0xFF, 4); });            // NaN
  refused_after(Mode::kFp32, [&](Bytes& m) { put_u64(m, hdr + 4 * 31, 0x7F800000u); });            // +Inf at 31
  refused_after(Mode::kBf16, [&](Bytes& m) { m[hdr + 2 * 5] = 0x80; m[hdr + 2 * 5 + 1] = 0x7F; });  // Inf
  refused_after(Mode::kInt8, [&](Bytes& m) { m[hdr + 4 * 1 + 3] = 0x7F; m[hdr + 4 * 1 + 2] = 0xC0; });  // NaN scale
  refused_after(Mode::kInt8, [&](Bytes& m) { m[hdr + 4 * 2 + 3] |= 0x80; });                       // negative scale
  refused_after(Mode::kInt8, [&](Bytes& m) { m[hdr + 3 * 4 + 10] = 0x80; });                        // code -128
  refused_after(Mode::kInt4, [&](Bytes& m) { m[hdr + 3 * 4 + 3] = 0x08; });                         // code -8 low
  refused_after(Mode::kInt4, [&](Bytes& m) { m[hdr + 3 * 4 + 4] = 0x80; });                         // code -8 high
  refused_after(Mode::kInt4, [&](Bytes& m) { m[hdr + 3 * 4 + 16] |= 0x10; });                       // padding nibble
}

TEST_CASE("decode_into refuses a wrongly sized output without writing", "[codec]") {
  EncodeOptions opt;
  opt.mode = Mode::kInt8;
  Bytes msg = must_encode(nasty_values(50, 1), {5, 10}, opt);
  std::vector<float> out(49, 7.0f);
  CHECK(decode_into(msg, generous(), out).code() == StatusCode::kInvalidArgument);
  CHECK(std::all_of(out.begin(), out.end(), [](float f) { return f == 7.0f; }));
}

TEST_CASE("error feedback carries what quantization dropped into the next message", "[codec]") {
  const size_t n = 500;
  for (Mode mode : {Mode::kInt8, Mode::kInt4, Mode::kBf16}) {
    EncodeOptions opt;
    opt.mode = mode;
    opt.block_size = 64;
    std::vector<float> residual(n, 0.0f);
    std::vector<double> sent_sum(n, 0.0), true_sum(n, 0.0), slack(n, 0.0);
    std::mt19937_64 rng(42);
    std::normal_distribution<float> normal(0.0f, 1e-3f);
    std::vector<float> last_y(n);
    const int steps = 40;
    for (int step = 0; step < steps; ++step) {
      std::vector<float> x(n);
      for (size_t i = 0; i < n; ++i) x[i] = normal(rng) * (i % 50 == 0 ? 100.0f : 1.0f);
      const std::vector<float> before = residual;
      auto msg = encode_with_feedback(x, {static_cast<int64_t>(n)}, opt, residual);
      REQUIRE(msg.ok());
      auto d = decode(*msg, generous());
      REQUIRE(d.ok());
      for (size_t i = 0; i < n; ++i) {
        const float y = x[i] + before[i];
        REQUIRE(residual[i] == y - d->values[i]);  // r <- (x + r) - sent, in float
        sent_sum[i] += d->values[i];
        true_sum[i] += x[i];
        // Float rounding of x + r and of y - sent, the only places the identity is not exact.
        slack[i] += (std::fabs(double(y)) + std::fabs(double(y) - d->values[i])) * 0x1p-24;
        last_y[i] = y;
      }
    }
    // Telescoping: sum(sent) = sum(x) - final residual, so what was lost over forty messages is
    // the last message's quantization error (within its documented bound), not forty of them.
    for (size_t i = 0; i < n; ++i) {
      const double lost = true_sum[i] - sent_sum[i];
      REQUIRE(std::fabs(lost - residual[i]) <= 2 * slack[i] + 1e-12);
      double amax = 0;
      for (size_t j = i / 64 * 64; j < std::min(n, i / 64 * 64 + 64); ++j) amax = std::max(amax, std::fabs(double(last_y[j])));
      REQUIRE(std::fabs(residual[i]) <= error_bound(mode, last_y[i], amax) + std::fabs(last_y[i]) * 0x1p-24);
    }
  }
  // A failing encode leaves the residual alone.
  std::vector<float> r(4, 0.5f);
  std::vector<float> x = {1, 2, std::numeric_limits<float>::quiet_NaN(), 4};
  EncodeOptions opt;
  opt.mode = Mode::kInt8;
  CHECK_FALSE(encode_with_feedback(x, {4}, opt, r).ok());
  CHECK(r == std::vector<float>(4, 0.5f));
  std::vector<float> big = {std::numeric_limits<float>::max(), 1, 1, 1};
  r = {std::numeric_limits<float>::max(), 0, 0, 0};  // the sum overflows to Inf
  CHECK(encode_with_feedback(big, {4}, opt, r).status().code() == StatusCode::kInvalidArgument);
  CHECK(r[0] == std::numeric_limits<float>::max());
  std::vector<float> wrong(3);
  CHECK(encode_with_feedback(big, {4}, opt, wrong).status().code() == StatusCode::kInvalidArgument);
}
