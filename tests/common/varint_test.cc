#include <catch2/catch.hpp>

#include "common/varint.h"

using namespace noloco;

TEST_CASE("varint round trips across the value range", "[varint]") {
  for (uint64_t v : {uint64_t{0}, uint64_t{1}, uint64_t{127}, uint64_t{128}, uint64_t{300},
                     uint64_t{16383}, uint64_t{16384}, uint64_t{1} << 32, (uint64_t{1} << 63) - 1}) {
    Bytes b;
    put_varint(b, v);
    REQUIRE(b.size() == varint_size(v));
    auto r = read_varint(b);
    REQUIRE(r.ok());
    CHECK(r->value == v);
    CHECK(r->consumed == b.size());
  }
}

TEST_CASE("varint known encodings", "[varint]") {
  Bytes b;
  put_varint(b, 300);
  CHECK(b == Bytes{0xac, 0x02});
}

TEST_CASE("varint refuses non-minimal and over-long encodings", "[varint]") {
  // 0x80 0x00 encodes 0 in two bytes: not minimal.
  CHECK(read_varint(Bytes{0x80, 0x00}).status().code() == StatusCode::kCorrupt);
  // Ten continuation bytes: longer than the 9-byte multiformats cap.
  Bytes long_one(10, 0xff);
  long_one.push_back(0x01);
  CHECK(read_varint(long_one).status().code() == StatusCode::kCorrupt);
  // Nine bytes all with the continuation bit: cannot end within the cap.
  CHECK(read_varint(Bytes(9, 0x80)).status().code() == StatusCode::kCorrupt);
}

TEST_CASE("varint reports truncation separately from corruption", "[varint]") {
  CHECK(read_varint(Bytes{}).status().code() == StatusCode::kTruncated);
  CHECK(read_varint(Bytes{0x80, 0x80}).status().code() == StatusCode::kTruncated);
}

TEST_CASE("protobuf varints accept ten bytes", "[varint]") {
  Bytes b(9, 0xff);
  b.push_back(0x01);
  auto r = read_protobuf_varint(b);
  REQUIRE(r.ok());
  CHECK(r->value == ~uint64_t{0});
}
