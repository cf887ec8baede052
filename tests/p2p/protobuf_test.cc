#include <catch2/catch.hpp>

#include "common/encoding.h"
#include "p2p/protobuf.h"

using namespace noloco;
using namespace noloco::p2p;

static Bytes hex(std::string_view h) { return *hex_decode(h); }

TEST_CASE("protobuf writer produces the canonical encoding", "[protobuf]") {
  pb::Writer w;
  w.add_varint(1, 150);            // protobuf.dev encoding guide example: 08 96 01
  w.add_string(2, "testing");      // 12 07 74 65 73 74 69 6e 67
  CHECK(hex_encode(w.bytes()) == "089601120774657374696e67");
}

TEST_CASE("protobuf reader walks varint and length-delimited fields", "[protobuf]") {
  // field 1 varint 150, field 2 "testing", field 3 fixed32, field 4 fixed64, field 5 empty bytes
  Bytes msg = hex("089601120774657374696e67" "1d01020304" "210102030405060708" "2a00");
  pb::Reader r(msg);
  auto f1 = r.next();
  REQUIRE(f1.ok());
  CHECK(f1->number == 1);
  CHECK(f1->type == pb::WireType::kVarint);
  CHECK(f1->value == 150);
  auto f2 = r.next();
  REQUIRE(f2.ok());
  CHECK(f2->number == 2);
  CHECK(to_string(f2->data) == "testing");
  auto f3 = r.next();
  REQUIRE(f3.ok());
  CHECK(f3->type == pb::WireType::kFixed32);
  CHECK(f3->data.size() == 4);
  auto f4 = r.next();
  REQUIRE(f4.ok());
  CHECK(f4->type == pb::WireType::kFixed64);
  auto f5 = r.next();  // field 5, empty bytes
  REQUIRE(f5.ok());
  CHECK(f5->number == 5);
  CHECK(f5->data.empty());
  CHECK(r.done());
}

TEST_CASE("protobuf reader refuses malformed input", "[protobuf]") {
  auto first_error = [](Bytes msg, size_t cap = 1024) {
    pb::Reader r(msg, cap);
    while (!r.done()) {
      auto f = r.next();
      if (!f.ok()) return f.status().code();
    }
    return StatusCode::kOk;
  };
  CHECK(first_error(hex("0a05616263")) == StatusCode::kCorrupt);   // length 5, 3 bytes present
  CHECK(first_error(hex("08")) == StatusCode::kCorrupt);           // varint value missing
  CHECK(first_error(hex("0896")) == StatusCode::kCorrupt);         // varint cut off
  CHECK(first_error(hex("0b")) == StatusCode::kCorrupt);           // wire type 3 (group)
  CHECK(first_error(hex("0001")) == StatusCode::kCorrupt);         // field number 0
  CHECK(first_error(hex("0dffff")) == StatusCode::kCorrupt);       // fixed32 cut off
  CHECK(first_error(hex("0affffffff0f")) == StatusCode::kTooLarge);  // 4 GiB length: over the cap
  CHECK(first_error(hex("0a8008") , 1023) == StatusCode::kTooLarge);  // 1024 > cap 1023, before the body
  CHECK(first_error(hex("08ffffffffffffffffff01")) == StatusCode::kOk);  // 10-byte varint is legal protobuf
  CHECK(first_error(hex("08ffffffffffffffffffff01")) == StatusCode::kCorrupt);  // 11 bytes is not
}
