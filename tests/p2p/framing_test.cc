#include <catch2/catch.hpp>

#include "common/varint.h"
#include "p2p/framing.h"

using namespace noloco;
using namespace noloco::p2p;

TEST_CASE("length-prefixed messages round-trip in any split", "[framing]") {
  Bytes wire;
  append_length_prefixed(wire, as_bytes("first"));
  append_length_prefixed(wire, as_bytes(""));
  append_length_prefixed(wire, Bytes(300, 0xAB));  // two-byte varint
  LengthPrefixedReader r(1000);
  for (uint8_t b : wire) REQUIRE(r.feed(ByteView(&b, 1)).ok());
  CHECK(to_string(*r.next()) == "first");
  CHECK(r.next()->empty());
  CHECK(*r.next() == Bytes(300, 0xAB));
  CHECK_FALSE(r.next().has_value());
  CHECK_FALSE(r.mid_message());
}

TEST_CASE("a length over the cap is refused before the body arrives", "[framing]") {
  Bytes wire;
  put_varint(wire, uint64_t{4} << 30);  // 4 GiB announced, nothing follows
  LengthPrefixedReader r(1 << 20);
  Status st = r.feed(wire);
  CHECK(st.code() == StatusCode::kTooLarge);
  // Terminal.
  CHECK(r.feed(as_bytes("x")).code() == StatusCode::kTooLarge);
}

TEST_CASE("a non-minimal or overlong varint prefix is corrupt", "[framing]") {
  LengthPrefixedReader r(1 << 20);
  CHECK(r.feed(Bytes{0x80, 0x00}).code() == StatusCode::kCorrupt);
  LengthPrefixedReader r2(1 << 20);
  CHECK_FALSE(r2.feed(Bytes(12, 0xFF)).ok());
}

TEST_CASE("a partial message is reported as in progress", "[framing]") {
  LengthPrefixedReader r(100);
  REQUIRE(r.feed(Bytes{5, 'a', 'b'}).ok());
  CHECK(r.mid_message());
  CHECK_FALSE(r.next().has_value());
  REQUIRE(r.feed(Bytes{'c', 'd', 'e'}).ok());
  CHECK(to_string(*r.next()) == "abcde");
}
