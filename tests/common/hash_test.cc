#include <catch2/catch.hpp>

#include "common/encoding.h"
#include "common/hash.h"

using namespace noloco;

// Test vectors from FIPS 180-4 examples (NIST CSRC "SHA256.pdf" example values).
TEST_CASE("sha256 matches the FIPS examples", "[hash]") {
  CHECK(hex_encode(sha256(as_bytes(""))) ==
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  CHECK(hex_encode(sha256(as_bytes("abc"))) ==
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  CHECK(hex_encode(sha256(as_bytes("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"))) ==
        "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  std::string million(1000000, 'a');
  CHECK(hex_encode(sha256(as_bytes(million))) ==
        "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

TEST_CASE("sha256 is the same when fed in pieces", "[hash]") {
  std::string msg(1000, 'x');
  for (size_t i = 0; i < msg.size(); ++i) msg[i] = static_cast<char>(i * 7);
  auto whole = sha256(as_bytes(msg));
  for (size_t step : {1, 3, 63, 64, 65, 500}) {
    Sha256 h;
    for (size_t i = 0; i < msg.size(); i += step) h.update(as_bytes(std::string_view(msg).substr(i, step)));
    CHECK(h.finish() == whole);
  }
}

namespace {

// The buffer of xxHash's own sanity test (cli/xsum_sanity_check.c, XSUM_fillTestBuffer):
// byte i is the top byte of PRIME32 * PRIME64^i (mod 2^64).
Bytes xxhash_sanity_buffer(size_t n) {
  constexpr uint64_t kPrime32 = 2654435761U;
  constexpr uint64_t kPrime64 = 11400714785074694797ULL;
  Bytes out(n);
  uint64_t gen = kPrime32;
  for (size_t i = 0; i < n; ++i) {
    out[i] = static_cast<uint8_t>(gen >> 56);
    gen *= kPrime64;
  }
  return out;
}

Bytes pattern(size_t n) {
  Bytes data(n);
  for (size_t i = 0; i < n; ++i) data[i] = static_cast<uint8_t>(i * 31 + 7);
  return data;
}

}  // namespace

// XXH3_64bits_withSeed vectors published by xxHash itself: the XSUM_XXH3_testdata table of
// cli/xsum_sanity_check.c (github.com/Cyan4973/xxHash, v0.8.x), on the buffer above. They cover
// each of XXH3's length classes (0, 1-3, 4-8, 9-16, 17-128, 129-240, one and several blocks).
TEST_CASE("xxh3_64 matches xxHash's published sanity vectors", "[hash]") {
  constexpr uint64_t kPrime64 = 11400714785074694797ULL;
  const Bytes buf = xxhash_sanity_buffer(4096 + 64 + 1);
  struct Vector {
    size_t len;
    uint64_t seed;
    uint64_t want;
  };
  const Vector vectors[] = {
      {0, 0, 0x2D06800538D394C2ULL},       {0, kPrime64, 0xA8A6B918B2F0364AULL},
      {1, 0, 0xC44BDFF4074EECDBULL},       {1, kPrime64, 0x032BE332DD766EF8ULL},
      {6, 0, 0x27B56A84CD2D7325ULL},       {6, kPrime64, 0x84589C116AB59AB9ULL},
      {12, 0, 0xA713DAF0DFBB77E7ULL},      {12, kPrime64, 0xE7303E1B2336DE0EULL},
      {24, 0, 0xA3FE70BF9D3510EBULL},      {24, kPrime64, 0x850E80FC35BDD690ULL},
      {48, 0, 0x397DA259ECBA1F11ULL},      {48, kPrime64, 0xADC2CBAA44ACC616ULL},
      {80, 0, 0xBCDEFBBB2C47C90AULL},      {80, kPrime64, 0xC6DD0CB699532E73ULL},
      {195, 0, 0xCD94217EE362EC3AULL},     {195, kPrime64, 0xBA68003D370CB3D9ULL},
      {403, 0, 0xCDEB804D65C6DEA4ULL},     {403, kPrime64, 0x6259F6ECFD6443FDULL},
      {512, 0, 0x617E49599013CB6BULL},     {512, kPrime64, 0x3CE457DE14C27708ULL},
      {2048, 0, 0xDD59E2C3A5F038E0ULL},    {2048, kPrime64, 0x66F81670669ABABCULL},
      {2240, 0, 0x6E73A90539CF2948ULL},    {2240, kPrime64, 0x757BA8487D1B5247ULL},
      {2367, 0, 0xCB37AEB9E5D361EDULL},    {2367, kPrime64, 0xD2DB3415B942B42AULL},
  };
  for (const auto& v : vectors) {
    INFO("len " << v.len << " seed " << v.seed);
    CHECK(xxh3_64(ByteView(buf).first(v.len), v.seed) == v.want);
  }
}

// Computed with Debian 12's xxhsum 0.8.1 (package xxhash): `printf '%s' TEXT | xxhsum -H3`,
// which is XXH3_64bits, i.e. seed 0.
TEST_CASE("xxh3_64 with seed 0 matches xxhsum -H3", "[hash]") {
  CHECK(xxh3_64(as_bytes("")) == 0x2d06800538d394c2ULL);
  CHECK(xxh3_64(as_bytes("a")) == 0xe6c632b61e964e1fULL);
  CHECK(xxh3_64(as_bytes("abc")) == 0x78af5f94892f3950ULL);
  CHECK(xxh3_64(as_bytes("hello world")) == 0xd447b1ea40e6988bULL);
  CHECK(xxh3_64(as_bytes("The quick brown fox jumps over the lazy dog")) == 0xce7d19a5418fb365ULL);
}

// legacy_hash64 must never change: stores of schema version 1 are verified with it. These values
// are what the function (then called hash64) returned at commit bab0d13, the last build that
// wrote it, computed by compiling that commit's common/hash.cc; the seeds are the store's record
// ("nolocor1") and blob ("nolocob1") seeds.
TEST_CASE("legacy_hash64 keeps returning what old stores were written with", "[hash]") {
  CHECK(legacy_hash64({}) == 0xC8167590E3A5CBEBULL);
  CHECK(legacy_hash64(as_bytes("abc")) == 0xD8FAD67435804C5CULL);
  const Bytes data = pattern(4099);
  CHECK(legacy_hash64(data) == 0x881A9092DCE937A4ULL);
  CHECK(legacy_hash64(data, 0x6e6f6c6f636f7231ULL) == 0x0F7D4C1B2AD9CEC9ULL);
  CHECK(legacy_hash64(data, 0x6e6f6c6f636f6231ULL) == 0xFAE6836BAAF4B2BAULL);
  CHECK(legacy_hash64(ByteView(data).first(31), 0x6e6f6c6f636f7231ULL) == 0x6EE3F8CB36B4D82AULL);
}

TEST_CASE("xxh3_64 notices a single flipped bit anywhere", "[hash]") {
  const Bytes data = pattern(4099);
  uint64_t h = xxh3_64(data);
  CHECK(xxh3_64(data) == h);
  CHECK(xxh3_64(data, 1) != h);
  for (size_t pos : {size_t{0}, size_t{17}, size_t{2048}, size_t{4096}, size_t{4098}}) {
    Bytes flipped = data;
    flipped[pos] ^= 0x10;
    CHECK(xxh3_64(flipped) != h);
  }
  Bytes shorter(data.begin(), data.end() - 1);
  CHECK(xxh3_64(shorter) != h);
}
