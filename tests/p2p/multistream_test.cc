#include <catch2/catch.hpp>

#include "common/varint.h"
#include "p2p/multistream.h"

using namespace noloco;
using namespace noloco::p2p;

namespace {
// Delivers everything pending between the two sides, one byte at a time when `bytewise`.
void pump(MultistreamDialer& d, MultistreamListener& l, bool bytewise) {
  for (int round = 0; round < 20; ++round) {
    Bytes to_l = d.take_output();
    Bytes to_d = l.take_output();
    if (to_l.empty() && to_d.empty()) return;
    if (bytewise) {
      for (uint8_t b : to_l) (void)l.feed(ByteView(&b, 1));
      for (uint8_t b : to_d) (void)d.feed(ByteView(&b, 1));
    } else {
      (void)l.feed(to_l);
      (void)d.feed(to_d);
    }
  }
}
}  // namespace

TEST_CASE("multistream message encoding", "[multistream]") {
  Bytes m = encode_multistream_message("/multistream/1.0.0");
  // 0x13 = 19 = 18 characters + '\n' (multistream-select README example).
  CHECK(m.size() == 20);
  CHECK(m[0] == 0x13);
  CHECK(m.back() == '\n');
  CHECK(to_string(encode_multistream_message("na")) == std::string("\x03na\n"));
}

TEST_CASE("dialer and listener agree, the dialer falls back after na", "[multistream]") {
  for (bool bytewise : {false, true}) {
    MultistreamDialer d({"/tls/1.0.0", "/noise"});
    MultistreamListener l({"/noise", "/yamux/1.0.0"});
    pump(d, l, bytewise);
    REQUIRE(d.done());
    REQUIRE(l.done());
    CHECK(d.selected_protocol() == "/noise");
    CHECK(l.selected_protocol() == "/noise");
    CHECK(d.take_leftover().empty());
    CHECK(l.take_leftover().empty());
  }
}

TEST_CASE("no common protocol fails with kUnsupported", "[multistream]") {
  MultistreamDialer d({"/a", "/b"});
  MultistreamListener l({"/c"});
  pump(d, l, false);
  CHECK(d.failed());
  CHECK(d.error().code() == StatusCode::kUnsupported);
  CHECK_FALSE(l.done());
}

TEST_CASE("data sent with the final answer is handed over, never lost", "[multistream]") {
  // Listener writes header, echo and its first application bytes in one go.
  Bytes wire = encode_multistream_message("/multistream/1.0.0");
  append(wire, encode_multistream_message("/ipfs/ping/1.0.0"));
  append(wire, as_bytes("APPDATA"));
  MultistreamDialer d({"/ipfs/ping/1.0.0"});
  REQUIRE(d.feed(wire).ok());
  REQUIRE(d.done());
  CHECK(to_string(d.take_leftover()) == "APPDATA");
  // Bytes fed after completion are kept for the caller too.
  REQUIRE(d.feed(as_bytes("MORE")).ok());
  CHECK(to_string(d.take_leftover()) == "MORE");

  // Lazy dialer on the other side: header, proposal and data in one write.
  Bytes lazy = encode_multistream_message("/multistream/1.0.0");
  append(lazy, encode_multistream_message("/ipfs/ping/1.0.0"));
  append(lazy, Bytes(32, 0xEE));
  MultistreamListener l({"/ipfs/ping/1.0.0"});
  REQUIRE(l.feed(lazy).ok());
  REQUIRE(l.done());
  CHECK(l.take_leftover() == Bytes(32, 0xEE));
  Bytes out = l.take_output();
  Bytes expected = encode_multistream_message("/multistream/1.0.0");
  append(expected, encode_multistream_message("/ipfs/ping/1.0.0"));
  CHECK(out == expected);
}

TEST_CASE("listener answers ls with its protocols", "[multistream]") {
  MultistreamListener l({"/a", "/bb"});
  (void)l.take_output();
  Bytes wire = encode_multistream_message("/multistream/1.0.0");
  append(wire, encode_multistream_message("ls"));
  REQUIRE(l.feed(wire).ok());
  Bytes inner = encode_multistream_message("/a");
  append(inner, encode_multistream_message("/bb"));
  Bytes expected;
  put_varint(expected, inner.size() + 1);
  append(expected, inner);
  expected.push_back('\n');
  CHECK(l.take_output() == expected);
  CHECK_FALSE(l.done());
}

TEST_CASE("multistream refuses abusive input", "[multistream]") {
  auto header = encode_multistream_message("/multistream/1.0.0");
  SECTION("a gigabyte length prefix is refused before allocating") {
    MultistreamListener l({"/noise"});
    Bytes wire = header;
    put_varint(wire, uint64_t{1} << 31);
    Status st = l.feed(wire);
    CHECK(st.code() == StatusCode::kTooLarge);
    CHECK(l.failed());
    CHECK(l.feed(header).code() == StatusCode::kTooLarge);  // terminal
  }
  SECTION("just over the cap") {
    MultistreamDialer d({"/noise"});
    Bytes wire = header;
    put_varint(wire, kMaxMultistreamMessage + 1);
    CHECK(d.feed(wire).code() == StatusCode::kTooLarge);
  }
  SECTION("non-minimal varint") {
    MultistreamListener l({"/noise"});
    Bytes wire = header;
    Bytes proposal = encode_multistream_message("/noise");
    wire.push_back(static_cast<uint8_t>(proposal[0] | 0x80));  // 7 with a redundant continuation byte
    wire.push_back(0x00);
    append(wire, ByteView(proposal).subspan(1));
    CHECK(l.feed(wire).code() == StatusCode::kCorrupt);
    CHECK_FALSE(l.done());
  }
  SECTION("varint longer than 9 bytes") {
    MultistreamListener l({"/noise"});
    Bytes wire = header;
    append(wire, Bytes(10, 0x80));
    CHECK(l.feed(wire).code() == StatusCode::kCorrupt);
  }
  SECTION("missing newline") {
    MultistreamListener l({"/noise"});
    Bytes wire = header;
    append(wire, Bytes{0x03, 'a', 'b', 'c'});
    CHECK(l.feed(wire).code() == StatusCode::kProtocolError);
  }
  SECTION("empty message") {
    MultistreamListener l({"/noise"});
    Bytes wire = header;
    wire.push_back(0x00);
    CHECK(l.feed(wire).code() == StatusCode::kProtocolError);
  }
  SECTION("the header is checked byte by byte, so garbage fails at its first byte") {
    MultistreamListener l({"/noise"});
    CHECK(l.feed(ByteView(header).first(5)).ok());  // a correct prefix waits for more
    CHECK(l.feed(Bytes{'x'}).code() == StatusCode::kProtocolError);
    MultistreamDialer d({"/noise"});
    Bytes one = {0x05};  // would announce a 5-byte message
    CHECK(d.feed(one).code() == StatusCode::kProtocolError);
  }
  SECTION("wrong header") {
    MultistreamListener l({"/noise"});
    CHECK(l.feed(encode_multistream_message("/multistream/2.0.0")).code() == StatusCode::kProtocolError);
    MultistreamDialer d({"/noise"});
    CHECK(d.feed(encode_multistream_message("GET / HTTP/1.1")).code() == StatusCode::kProtocolError);
  }
  SECTION("garbage instead of a handshake") {
    MultistreamListener l({"/noise"});
    Bytes garbage(4096);
    for (size_t i = 0; i < garbage.size(); ++i) garbage[i] = static_cast<uint8_t>(i * 131 + 7);
    CHECK_FALSE(l.feed(garbage).ok());
    CHECK(l.failed());
    CHECK(l.take_output().empty());
  }
  SECTION("dialer gets an answer for a protocol it did not propose") {
    MultistreamDialer d({"/noise"});
    Bytes wire = header;
    append(wire, encode_multistream_message("/other"));
    CHECK(d.feed(wire).code() == StatusCode::kProtocolError);
  }
  SECTION("endless proposals are cut off") {
    MultistreamListener l({"/noise"});
    Bytes wire = header;
    for (size_t i = 0; i <= MultistreamListener::kMaxProposals; ++i) append(wire, encode_multistream_message("/x"));
    CHECK(l.feed(wire).code() == StatusCode::kProtocolError);
  }
  SECTION("bad local protocol lists fail at once") {
    CHECK(MultistreamDialer({}).failed());
    CHECK(MultistreamDialer({"a\nb"}).failed());
    CHECK(MultistreamDialer({""}).failed());
  }
}
