// The chunked codec (codec_stream.h): the pieces it writes are a message decode() reads (the same
// bytes as encode() without zstd), ChunkDecoder yields exactly decode()'s values in any chunking,
// and it refuses what decode() refuses before handing out a value of the bad part.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstring>
#include <random>

#include "trainer/core/codec.h"
#include "trainer/core/codec_internal.h"
#include "trainer/core/codec_stream.h"

using namespace noloco;
using namespace noloco::codec;

namespace {

std::vector<float> sample(size_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> normal(0.0f, 0.02f);
  std::vector<float> v(n);
  for (auto& x : v) x = normal(rng);
  if (n > 10) v[7] = 3.5f;  // an outlier
  return v;
}

ValueSource source_of(const std::vector<float>& v) {
  return [&v](uint64_t begin, std::span<float> out) {
    std::copy(v.begin() + static_cast<ptrdiff_t>(begin), v.begin() + static_cast<ptrdiff_t>(begin + out.size()),
              out.begin());
  };
}

Bytes join(const std::vector<Bytes>& pieces) {
  Bytes out;
  for (const auto& p : pieces) out.insert(out.end(), p.begin(), p.end());
  return out;
}

std::vector<float> read_all(ByteView msg, uint64_t chunk) {
  auto d = ChunkDecoder::open(msg, DecodeLimits{});
  REQUIRE(d.ok());
  std::vector<float> out((*d)->header().element_count);
  for (uint64_t b = 0; b < out.size(); b += chunk) {
    const uint64_t k = std::min<uint64_t>(chunk, out.size() - b);
    REQUIRE((*d)->next(std::span<float>(out.data() + b, k)).ok());
  }
  return out;
}

}  // namespace

TEST_CASE("codec stream: pieces decode like encode for every mode, and chunked reads match decode", "[codec]") {
  for (Mode mode : {Mode::kFp32, Mode::kBf16, Mode::kInt8, Mode::kInt4}) {
    for (bool zstd : {false, true}) {
      for (size_t n : {size_t{0}, size_t{1}, size_t{777}, size_t{600001}}) {
        CAPTURE(mode_name(mode), zstd, n);
        const auto v = sample(n, n + 3);
        EncodeOptions o;
        o.mode = mode;
        o.zstd = zstd;
        o.block_size = 100;  // not a power of two: chunk edges fall inside no block
        const std::vector<int64_t> shape{static_cast<int64_t>(n)};
        auto pieces = encode_pieces(source_of(v), n, shape, o, 4096);
        REQUIRE(pieces.ok());
        for (const auto& p : *pieces) CHECK(p.size() <= 4096);
        const Bytes msg = join(*pieces);
        auto whole = encode(v, shape, o);
        REQUIRE(whole.ok());
        if (!zstd) CHECK(msg == *whole);
        auto ref = decode(*whole, DecodeLimits{});
        auto got = decode(msg, DecodeLimits{});
        REQUIRE(ref.ok());
        REQUIRE(got.ok());
        CHECK(got->values == ref->values);
        CHECK(read_all(msg, 1 << 18) == ref->values);
        if (n > 2) CHECK(read_all(msg, 998) == ref->values);
      }
    }
  }
}

TEST_CASE("codec stream: a damaged message is refused at open or before its bad chunk is handed out", "[codec]") {
  const auto v = sample(5000, 9);
  for (Mode mode : {Mode::kBf16, Mode::kInt8, Mode::kInt4}) {
    for (bool zstd : {false, true}) {
      CAPTURE(mode_name(mode), zstd);
      EncodeOptions o;
      o.mode = mode;
      o.zstd = zstd;
      auto msg = encode(v, {5000}, o);
      REQUIRE(msg.ok());
      // Any flipped payload byte fails the checksum at open.
      Bytes bad = *msg;
      bad[bad.size() / 2] ^= 0x10;
      CHECK(ChunkDecoder::open(bad, DecodeLimits{}).status().code() == StatusCode::kCorrupt);
      Bytes cut(msg->begin(), msg->end() - 1);
      CHECK_FALSE(ChunkDecoder::open(cut, DecodeLimits{}).ok());
      DecodeLimits small;
      small.max_elements = 4999;
      CHECK(ChunkDecoder::open(*msg, small).status().code() == StatusCode::kTooLarge);
    }
  }
  // A non-finite value behind a valid checksum (the encoder refuses to write one, so a forger's
  // message is built by hand): open() passes, the chunk before it is handed out, its own is refused.
  auto msg = encode(v, {5000}, EncodeOptions{Mode::kFp32});
  REQUIRE(msg.ok());
  const float inf = INFINITY;
  std::memcpy(msg->data() + msg->size() - 4 * 10, &inf, 4);  // value 4990
  const size_t hdr = detail::header_size(1);
  detail::put_u64_at(msg->data() + hdr - 8,
                     detail::compute_checksum(ByteView(msg->data(), hdr - 8), ByteView(*msg).subspan(hdr)));
  auto d = ChunkDecoder::open(*msg, DecodeLimits{});
  REQUIRE(d.ok());
  std::vector<float> out(4000);
  CHECK((*d)->next(out).ok());
  out.assign(1000, 0.0f);
  const Status st = (*d)->next(out);
  CHECK(st.code() == StatusCode::kCorrupt);
  CHECK(st.message().find("4990") != std::string::npos);
  std::vector<float> bad_src = v;
  bad_src[4990] = NAN;
  auto refused = encode_pieces(source_of(bad_src), 5000, {5000}, EncodeOptions{Mode::kInt8}, 1 << 20);
  CHECK(refused.status().code() == StatusCode::kInvalidArgument);
  CHECK(refused.status().message().find("4990") != std::string::npos);
}

TEST_CASE("codec stream: reading past the end and odd int4 chunks are refused", "[codec]") {
  const auto v = sample(1001, 4);
  EncodeOptions o;
  o.mode = Mode::kInt4;
  auto msg = encode(v, {1001}, o);
  REQUIRE(msg.ok());
  auto d = ChunkDecoder::open(*msg, DecodeLimits{});
  REQUIRE(d.ok());
  std::vector<float> buf(1002);
  CHECK((*d)->next(std::span<float>(buf.data(), 1002)).code() == StatusCode::kInvalidArgument);
  CHECK((*d)->next(std::span<float>(buf.data(), 3)).code() == StatusCode::kInvalidArgument);
  CHECK((*d)->next(std::span<float>(buf.data(), 1000)).ok());
  CHECK((*d)->next(std::span<float>(buf.data(), 1)).ok());
  CHECK((*d)->position() == 1001);
}
