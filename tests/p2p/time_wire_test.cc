// /noloco/time/1.0.0 (p2p/time_wire.h): the reply's bytes, refusals of malformed replies, and the
// offset arithmetic.
#include <catch2/catch.hpp>

#include "p2p/time_wire.h"

using namespace noloco;
using namespace noloco::p2p::timeproto;

TEST_CASE("time: a reply is 8 big-endian bytes of Unix milliseconds", "[time]") {
  const uint64_t t = 1764786000123ull;  // 2025-12-03
  const Bytes b = encode_time_reply(t);
  REQUIRE(b.size() == 8);
  CHECK(b == Bytes{0x00, 0x00, 0x01, 0x9a, 0xe5, 0x71, 0x50, 0xfb});
  auto back = decode_time_reply(b);
  REQUIRE(back.ok());
  CHECK(*back == t);
}

TEST_CASE("time: malformed replies are refused", "[time]") {
  const Bytes good = encode_time_reply(1764786000123ull);
  CHECK(decode_time_reply(Bytes{}).status().code() == StatusCode::kProtocolError);
  CHECK(decode_time_reply(Bytes(good.begin(), good.end() - 1)).status().code() == StatusCode::kProtocolError);
  Bytes longer = good;
  longer.push_back(0);
  CHECK(decode_time_reply(longer).status().code() == StatusCode::kProtocolError);
  // Not a clock in milliseconds: zero, seconds, all ones.
  CHECK(!decode_time_reply(encode_time_reply(0)).ok());
  CHECK(!decode_time_reply(encode_time_reply(1764786000ull)).ok());
  CHECK(!decode_time_reply(Bytes(8, 0xff)).ok());
  CHECK(decode_time_reply(encode_time_reply(kMinPlausibleUnixMs)).ok());
  CHECK(!decode_time_reply(encode_time_reply(kMaxPlausibleUnixMs)).ok());
}

TEST_CASE("time: the offset is the peer's reading minus our send time plus half the round trip", "[time]") {
  const int64_t sent_us = 1764786000000000;  // our clock at the send, in microseconds
  // The peer read its clock 1 s ahead of ours, at the midpoint of a 40 ms round trip.
  auto s = clock_sample(sent_us, 40'000, 1764786001020ull);
  REQUIRE(s.ok());
  CHECK(s->offset_ms == 1000);
  CHECK(s->error_ms == 21);  // 20 ms, plus 1 for the peer's whole-millisecond reading
  CHECK(s->rtt_ms == 40);
  s = clock_sample(sent_us, 40'000, 1764785998020ull);  // 2 s behind
  REQUIRE(s.ok());
  CHECK(s->offset_ms == -2000);
  CHECK(!clock_sample(sent_us, -1, 1764786001020ull).ok());
}
