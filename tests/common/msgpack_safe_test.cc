#include <catch2/catch.hpp>

#include "common/msgpack_safe.h"

using namespace noloco;

TEST_CASE("bounded msgpack unpack accepts one well-formed object", "[msgpack]") {
  msgpack::sbuffer buf;
  msgpack::pack(buf, std::vector<int>{1, 2, 3});
  auto h = msgpack_unpack_bounded(ByteView(reinterpret_cast<const uint8_t*>(buf.data()), buf.size()), {});
  REQUIRE(h.ok());
  auto v = msgpack_as<std::vector<int>>(h->get(), "v");
  REQUIRE(v.ok());
  CHECK(*v == std::vector<int>{1, 2, 3});
  CHECK_FALSE(msgpack_as<std::string>(h->get(), "v").ok());
}

TEST_CASE("bounded msgpack unpack refuses oversized, deep, truncated and trailing input", "[msgpack]") {
  MsgpackLimits lim;
  lim.max_array = 4;
  lim.max_depth = 2;
  // array32 header claiming 2^32-1 elements
  CHECK(msgpack_unpack_bounded(Bytes{0xdd, 0xff, 0xff, 0xff, 0xff}, lim).status().code() == StatusCode::kTooLarge);
  // five elements with a cap of four
  CHECK(msgpack_unpack_bounded(Bytes{0x95, 1, 2, 3, 4, 5}, lim).status().code() == StatusCode::kTooLarge);
  // three levels of nesting with a cap of two
  CHECK(msgpack_unpack_bounded(Bytes{0x91, 0x91, 0x91, 0x01}, lim).status().code() == StatusCode::kTooLarge);
  CHECK(msgpack_unpack_bounded(Bytes{0x93, 1, 2}, lim).status().code() == StatusCode::kTruncated);
  CHECK(msgpack_unpack_bounded(Bytes{0x01, 0x02}, lim).status().code() == StatusCode::kCorrupt);
  CHECK_FALSE(msgpack_unpack_bounded(Bytes{0xc1}, lim).ok());  // 0xc1 is never used
}
