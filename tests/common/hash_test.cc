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

TEST_CASE("hash64 notices a single flipped bit anywhere", "[hash]") {
  Bytes data(4099);
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<uint8_t>(i * 31 + 7);
  uint64_t h = hash64(data);
  CHECK(hash64(data) == h);
  CHECK(hash64(data, 1) != h);
  for (size_t pos : {size_t{0}, size_t{17}, size_t{2048}, size_t{4096}, size_t{4098}}) {
    Bytes flipped = data;
    flipped[pos] ^= 0x10;
    CHECK(hash64(flipped) != h);
  }
  Bytes shorter(data.begin(), data.end() - 1);
  CHECK(hash64(shorter) != h);
}
