#include <catch2/catch.hpp>

#include "p2p/ping.h"

using namespace noloco;
using namespace noloco::p2p;

TEST_CASE("ping echo returns whole 32-byte blocks only", "[ping]") {
  PingEcho echo;
  Bytes a(40, 1);
  CHECK(echo.feed(a).size() == 32);
  CHECK(echo.feed(Bytes(23, 2)).empty());
  Bytes out = echo.feed(Bytes(1, 3));
  REQUIRE(out.size() == 32);
  CHECK(out[0] == 1);
  CHECK(out[31] == 3);
}

TEST_CASE("ping probe accepts its own echo and rejects anything else", "[ping]") {
  PingProbe p1, p2;
  CHECK(Bytes(p1.payload().begin(), p1.payload().end()) != Bytes(p2.payload().begin(), p2.payload().end()));
  PingEcho echo;
  Bytes back = echo.feed(p1.payload());
  REQUIRE(p1.feed(ByteView(back).first(10)).ok());
  CHECK_FALSE(p1.done());
  REQUIRE(p1.feed(ByteView(back).subspan(10)).ok());
  CHECK(p1.done());

  Bytes wrong(p2.payload().begin(), p2.payload().end());
  wrong[5] ^= 1;
  CHECK(p2.feed(wrong).code() == StatusCode::kCorrupt);
  PingProbe p3;
  CHECK(p3.feed(Bytes(33, 0)).code() == StatusCode::kProtocolError);
}
