#include <catch2/catch.hpp>

#include "common/encoding.h"

using namespace noloco;

TEST_CASE("hex round trip and errors", "[encoding]") {
  Bytes b{0x00, 0x01, 0xab, 0xff};
  CHECK(hex_encode(b) == "0001abff");
  auto d = hex_decode("0001ABff");
  REQUIRE(d.ok());
  CHECK(*d == b);
  CHECK_FALSE(hex_decode("abc").ok());
  CHECK_FALSE(hex_decode("zz").ok());
}

TEST_CASE("base58btc matches known encodings", "[encoding]") {
  // Vectors from the base58 IETF draft (draft-msporny-base58): "Hello World!" and a
  // leading-zero case.
  CHECK(base58_encode(as_bytes("Hello World!")) == "2NEpo7TZRRrLZSi2U");
  CHECK(base58_encode(Bytes{0x00, 0x00, 0x28, 0x7f, 0xb4, 0xcd}) == "11233QC4");
  auto d = base58_decode("11233QC4");
  REQUIRE(d.ok());
  CHECK(*d == Bytes{0x00, 0x00, 0x28, 0x7f, 0xb4, 0xcd});
  CHECK(base58_encode(Bytes{}) == "");
}

TEST_CASE("base58 refuses characters outside the alphabet", "[encoding]") {
  CHECK_FALSE(base58_decode("0OIl").ok());
  CHECK_FALSE(base58_decode(std::string(2000, '2')).ok());
}
