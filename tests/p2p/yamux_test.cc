// yamux sans-IO tests: two sessions wired back to back, bytes moved by hand.
#include <catch2/catch.hpp>

#include <algorithm>

#include "p2p/yamux.h"

using namespace noloco;
using namespace noloco::p2p::yamux;

namespace {

struct Pair {
  ManualClock clock;
  Session a;  // client
  Session b;  // server
  std::vector<Event> ea, eb;

  static SessionOptions opts(bool client, const Clock* c) {
    SessionOptions o;
    o.is_client = client;
    o.clock = c;
    return o;
  }
  Pair() : Pair(opts(true, nullptr), opts(false, nullptr)) {}
  Pair(SessionOptions oa, SessionOptions ob) : a(with_clock(oa)), b(with_clock(ob)) {}
  SessionOptions with_clock(SessionOptions o) {
    o.clock = &clock;
    return o;
  }

  // Moves bytes both ways until neither side has anything to send.
  void settle() {
    for (int i = 0; i < 10000 && (a.has_output() || b.has_output()); ++i) {
      Bytes x = a.take_output();
      if (!x.empty()) REQUIRE(b.feed(x).ok());
      Bytes y = b.take_output();
      if (!y.empty()) REQUIRE(a.feed(y).ok());
      collect();
    }
    collect();
  }
  void collect() {
    for (auto& e : a.take_events()) ea.push_back(std::move(e));
    for (auto& e : b.take_events()) eb.push_back(std::move(e));
  }
};

size_t count(const std::vector<Event>& ev, Event::Kind k, uint32_t stream) {
  return std::count_if(ev.begin(), ev.end(), [&](const Event& e) { return e.kind == k && e.stream == stream; });
}

Bytes data_of(const std::vector<Event>& ev, uint32_t stream) {
  Bytes out;
  for (const auto& e : ev) {
    if (e.kind == Event::Kind::kData && e.stream == stream) append(out, e.data);
  }
  return out;
}

// Bytes of data received on `stream` since the last call; the events are dropped.
size_t take_data(std::vector<Event>& ev, uint32_t stream) {
  size_t n = 0;
  for (const auto& e : ev) {
    if (e.kind == Event::Kind::kData && e.stream == stream) n += e.data.size();
  }
  ev.clear();
  return n;
}

Bytes pattern(size_t n) {
  Bytes b(n);
  for (size_t i = 0; i < n; ++i) b[i] = static_cast<uint8_t>(i * 31 + 7);
  return b;
}

}  // namespace

TEST_CASE("yamux header round-trips and rejects unknown versions, types and flags", "[yamux]") {
  Header h{0, FrameType::kWindowUpdate, kSyn | kFin, 7, 123456};
  Bytes b;
  encode_header(b, h);
  REQUIRE(b.size() == kHeaderSize);
  CHECK(b == Bytes{0, 1, 0, 5, 0, 0, 0, 7, 0, 1, 0xE2, 0x40});
  auto d = decode_header(b.data());
  REQUIRE(d.ok());
  CHECK(d->type == FrameType::kWindowUpdate);
  CHECK(d->flags == (kSyn | kFin));
  CHECK(d->stream_id == 7);
  CHECK(d->length == 123456);
  Bytes bad = b;
  bad[0] = 1;
  CHECK(decode_header(bad.data()).status().code() == StatusCode::kProtocolError);
  bad = b;
  bad[1] = 4;
  CHECK_FALSE(decode_header(bad.data()).ok());
  bad = b;
  bad[2] = 0x80;
  CHECK_FALSE(decode_header(bad.data()).ok());
}

TEST_CASE("yamux opens a stream, carries data both ways, and measures RTT", "[yamux]") {
  Pair p;
  auto id = p.a.open_stream();
  REQUIRE(id.ok());
  CHECK(*id % 2 == 1);
  REQUIRE(p.a.write(*id, as_bytes("hello")).ok());
  p.settle();
  CHECK(count(p.eb, Event::Kind::kStreamOpened, *id) == 1);
  CHECK(to_string(data_of(p.eb, *id)) == "hello");
  REQUIRE(p.b.write(*id, as_bytes("world")).ok());
  p.settle();
  CHECK(to_string(data_of(p.ea, *id)) == "world");
  CHECK(p.a.rtt().has_value());
  CHECK(p.b.rtt().has_value());
  // The server's streams are even.
  auto sid = p.b.open_stream();
  REQUIRE(sid.ok());
  CHECK(*sid % 2 == 0);
}

TEST_CASE("yamux delivers data fed one byte at a time", "[yamux]") {
  Pair p;
  auto id = p.a.open_stream();
  REQUIRE(p.a.write(*id, as_bytes("split me")).ok());
  Bytes out = p.a.take_output();
  for (uint8_t byte : out) REQUIRE(p.b.feed(ByteView(&byte, 1)).ok());
  p.collect();
  CHECK(to_string(data_of(p.eb, *id)) == "split me");
}

TEST_CASE("yamux window exhaustion stops the sender until a window update", "[yamux]") {
  Pair p;
  auto id = p.a.open_stream();
  p.settle();
  const Bytes big = pattern(kInitialWindow + 1000);
  auto n = p.a.write(*id, big);
  REQUIRE(n.ok());
  CHECK(*n == big.size());  // fits the 1 MiB send buffer
  p.settle();
  // Only one window's worth crossed: the receiver has not consumed anything yet.
  CHECK(data_of(p.eb, *id).size() == kInitialWindow);
  CHECK(p.a.send_window(*id) == 0);
  CHECK(p.a.send_buffered(*id) == 1000);
  // Consuming returns the window and the rest flows.
  p.b.consume(*id, kInitialWindow);
  p.settle();
  CHECK(data_of(p.eb, *id) == big);
  CHECK(p.a.send_buffered(*id) == 0);
}

TEST_CASE("yamux write applies backpressure when the peer stops reading", "[yamux]") {
  SessionOptions oa;
  oa.is_client = true;
  oa.max_send_buffer = 64 * 1024;
  SessionOptions ob;
  ob.is_client = false;
  Pair p(oa, ob);
  auto id = p.a.open_stream();
  p.settle();
  const Bytes chunk = pattern(100 * 1024);
  size_t accepted = 0;
  for (int i = 0; i < 10; ++i) {
    auto n = p.a.write(*id, chunk);
    REQUIRE(n.ok());
    accepted += *n;
    p.settle();
  }
  // The window (256 KiB) plus the buffer (64 KiB) is all that is ever accepted.
  CHECK(accepted == kInitialWindow + 64 * 1024);
  CHECK(p.a.send_buffered(*id) == 64 * 1024);
  CHECK(count(p.ea, Event::Kind::kWritable, *id) == 0);
  p.b.consume(*id, kInitialWindow);
  p.settle();
  CHECK(count(p.ea, Event::Kind::kWritable, *id) == 1);
}

TEST_CASE("yamux receive window grows under fast bulk transfer, not under slow reading", "[yamux]") {
  Pair p;
  p.clock.advance(std::chrono::milliseconds(10));
  p.settle();  // the initial pings come back: RTT = 10 ms
  REQUIRE(p.b.rtt().has_value());
  auto fast = p.a.open_stream();
  auto slow = p.a.open_stream();
  p.settle();
  const Bytes chunk = pattern(64 * 1024);
  size_t received_fast = 0;
  for (int round = 0; round < 400; ++round) {
    REQUIRE(p.a.write(*fast, chunk).ok());
    p.settle();
    // The reader keeps up instantly (no time passes): windows should double.
    const size_t got = take_data(p.eb, *fast);
    p.b.consume(*fast, got);
    received_fast += got;
  }
  p.settle();
  CHECK(p.b.receive_window_target(*fast) == 16u * 1024 * 1024);
  CHECK(received_fast == 400u * 64 * 1024);

  size_t received_slow = 0;
  for (int round = 0; round < 40; ++round) {
    REQUIRE(p.a.write(*slow, chunk).ok());
    p.settle();
    p.clock.advance(std::chrono::seconds(1));  // a slow consumer
    const size_t got = take_data(p.eb, *slow);
    p.b.consume(*slow, got);
    received_slow += got;
  }
  CHECK(received_slow > 0);
  CHECK(p.b.receive_window_target(*slow) == kInitialWindow);
}

TEST_CASE("yamux data beyond the window is a protocol error that ends the session", "[yamux]") {
  Pair p;
  auto id = p.a.open_stream();
  p.settle();
  Bytes evil;
  encode_header(evil, Header{0, FrameType::kData, 0, *id, kInitialWindow + 1});
  Status st = p.b.feed(evil);
  CHECK(st.code() == StatusCode::kProtocolError);
  CHECK(p.b.dead());
  // A GoAway(protocol error) goes out.
  Bytes out = p.b.take_output();
  REQUIRE(out.size() >= kHeaderSize);
  auto h = decode_header(out.data() + out.size() - kHeaderSize);
  REQUIRE(h.ok());
  CHECK(h->type == FrameType::kGoAway);
  CHECK(h->length == static_cast<uint32_t>(GoAwayCode::kProtocolError));
  CHECK_FALSE(p.b.feed(as_bytes("x")).ok());
}

TEST_CASE("yamux half-close works in both directions", "[yamux]") {
  Pair p;
  auto id = p.a.open_stream();
  REQUIRE(p.a.write(*id, as_bytes("request")).ok());
  REQUIRE(p.a.close_write(*id).ok());
  p.settle();
  CHECK(to_string(data_of(p.eb, *id)) == "request");
  CHECK(count(p.eb, Event::Kind::kStreamFinished, *id) == 1);
  // The dialer can no longer write, the listener still can.
  CHECK_FALSE(p.a.write(*id, as_bytes("more")).ok());
  REQUIRE(p.b.write(*id, as_bytes("response")).ok());
  p.settle();
  CHECK(to_string(data_of(p.ea, *id)) == "response");
  CHECK(p.a.has_stream(*id));
  REQUIRE(p.b.close_write(*id).ok());
  p.settle();
  CHECK(count(p.ea, Event::Kind::kStreamFinished, *id) == 1);
  CHECK(count(p.ea, Event::Kind::kStreamClosed, *id) == 1);
  CHECK(count(p.eb, Event::Kind::kStreamClosed, *id) == 1);
  CHECK_FALSE(p.a.has_stream(*id));
  CHECK_FALSE(p.b.has_stream(*id));
}

TEST_CASE("yamux reset drops the stream on both sides and late data is ignored", "[yamux]") {
  Pair p;
  auto id = p.a.open_stream();
  REQUIRE(p.a.write(*id, as_bytes("abc")).ok());
  p.settle();
  p.b.reset(*id);
  CHECK_FALSE(p.b.has_stream(*id));
  p.settle();
  CHECK(count(p.ea, Event::Kind::kStreamReset, *id) == 1);
  CHECK_FALSE(p.a.has_stream(*id));
  CHECK_FALSE(p.a.write(*id, as_bytes("x")).ok());
  // A data frame that was in flight when the reset happened is dropped quietly.
  Bytes late;
  encode_header(late, Header{0, FrameType::kData, 0, *id, 3});
  append(late, as_bytes("xyz"));
  CHECK(p.b.feed(late).ok());
  CHECK(data_of(p.b.take_events(), *id).empty());
}

TEST_CASE("yamux go-away refuses new streams but keeps existing ones", "[yamux]") {
  Pair p;
  auto id = p.a.open_stream();
  p.settle();
  p.b.go_away(GoAwayCode::kNormal);
  p.settle();
  REQUIRE(std::any_of(p.ea.begin(), p.ea.end(), [](const Event& e) { return e.kind == Event::Kind::kGoAway && e.code == 0; }));
  CHECK(p.a.remote_went_away());
  CHECK(p.a.open_stream().status().code() == StatusCode::kUnavailable);
  REQUIRE(p.a.write(*id, as_bytes("still works")).ok());
  p.settle();
  CHECK(to_string(data_of(p.eb, *id)) == "still works");
}

TEST_CASE("yamux resets streams beyond the cap and keeps memory bounded", "[yamux]") {
  SessionOptions oa;
  oa.is_client = true;
  oa.max_streams = 100000;
  oa.max_total_receive_window = size_t{1} << 40;
  SessionOptions ob;
  ob.is_client = false;
  ob.max_streams = 8;
  Pair p(oa, ob);
  std::vector<uint32_t> ids;
  for (int i = 0; i < 1000; ++i) {
    auto id = p.a.open_stream();
    REQUIRE(id.ok());
    ids.push_back(*id);
  }
  p.settle();
  CHECK(p.b.stream_count() == 8);
  size_t resets = 0;
  for (uint32_t id : ids) resets += count(p.ea, Event::Kind::kStreamReset, id);
  CHECK(resets == 1000 - 8);
  CHECK(p.a.stream_count() == 8);
  // The first eight still work.
  REQUIRE(p.a.write(ids[0], as_bytes("ok")).ok());
  p.settle();
  CHECK(to_string(data_of(p.eb, ids[0])) == "ok");
  // Our own opens stop at our cap too.
  for (size_t i = 0; i < 8; ++i) (void)p.b.open_stream();
  CHECK(p.b.open_stream().status().code() == StatusCode::kTooLarge);
}

TEST_CASE("yamux rejects a SYN with the wrong parity or for an open stream", "[yamux]") {
  SessionOptions o;
  o.is_client = false;
  o.send_initial_ping = false;
  {
    Session s(o);
    Bytes f;
    encode_header(f, Header{0, FrameType::kWindowUpdate, kSyn, 2, 0});  // even id from the client
    CHECK(s.feed(f).code() == StatusCode::kProtocolError);
  }
  {
    Session s(o);
    Bytes f;
    encode_header(f, Header{0, FrameType::kWindowUpdate, kSyn, 1, 0});
    encode_header(f, Header{0, FrameType::kWindowUpdate, kSyn, 1, 0});
    CHECK(s.feed(f).code() == StatusCode::kProtocolError);
  }
}

TEST_CASE("yamux answers pings", "[yamux]") {
  SessionOptions o;
  o.is_client = false;
  o.send_initial_ping = false;
  Session s(o);
  Bytes f;
  encode_header(f, Header{0, FrameType::kPing, kSyn, 0, 0xDEADBEEF});
  REQUIRE(s.feed(f).ok());
  Bytes out = s.take_output();
  REQUIRE(out.size() == kHeaderSize);
  auto h = decode_header(out.data());
  CHECK(h->type == FrameType::kPing);
  CHECK(h->flags == kAck);
  CHECK(h->length == 0xDEADBEEF);
}

TEST_CASE("yamux write_direct takes only what the window lets out and is woken by a window update", "[yamux]") {
  Pair p;
  auto id = p.a.open_stream();
  p.settle();
  const Bytes big = pattern(kInitialWindow + 1000);
  auto n = p.a.write_direct(*id, big);
  REQUIRE(n.ok());
  CHECK(*n == kInitialWindow);  // the window, nothing buffered beyond it
  CHECK(p.a.send_buffered(*id) == 0);
  p.settle();
  CHECK(data_of(p.eb, *id).size() == kInitialWindow);
  // Taking the output does not wake a writer that still has no window.
  CHECK(count(p.ea, Event::Kind::kWritable, *id) == 0);
  auto again = p.a.write_direct(*id, ByteView(big).subspan(*n));
  REQUIRE(again.ok());
  CHECK(*again == 0);
  p.settle();
  CHECK(count(p.ea, Event::Kind::kWritable, *id) == 0);
  p.b.consume(*id, kInitialWindow);
  p.settle();
  CHECK(count(p.ea, Event::Kind::kWritable, *id) == 1);
  auto rest = p.a.write_direct(*id, ByteView(big).subspan(*n));
  REQUIRE(rest.ok());
  CHECK(*rest == 1000);
  p.settle();
  CHECK(data_of(p.eb, *id) == big);
}

TEST_CASE("yamux write_direct blocked by the output high water is woken once the output is taken", "[yamux]") {
  SessionOptions oa;
  oa.is_client = true;
  oa.output_high_water = 64 * 1024;
  oa.max_data_frame = 16 * 1024;
  SessionOptions ob;
  ob.is_client = false;
  Pair p(oa, ob);
  auto id = p.a.open_stream();
  p.settle();
  const Bytes chunk = pattern(100 * 1024);
  auto n = p.a.write_direct(*id, chunk);
  REQUIRE(n.ok());
  CHECK(*n == 64 * 1024);  // four 16 KiB frames reach the high water
  CHECK(p.a.send_buffered(*id) == 0);
  p.collect();
  CHECK(count(p.ea, Event::Kind::kWritable, *id) == 0);
  Bytes out = p.a.take_output();  // the socket took it; nothing fed back yet
  p.collect();
  CHECK(count(p.ea, Event::Kind::kWritable, *id) == 1);
  REQUIRE(p.b.feed(out).ok());
  auto rest = p.a.write_direct(*id, ByteView(chunk).subspan(*n));
  REQUIRE(rest.ok());
  CHECK(*rest == chunk.size() - *n);
  p.settle();
  CHECK(data_of(p.eb, *id) == chunk);
}

TEST_CASE("yamux write_direct never overtakes bytes waiting in the stream buffer", "[yamux]") {
  Pair p;
  auto id = p.a.open_stream();
  p.settle();
  const Bytes big = pattern(kInitialWindow + 1000);
  REQUIRE(*p.a.write(*id, big) == big.size());  // 1000 bytes wait for window
  CHECK(p.a.send_buffered(*id) == 1000);
  auto n = p.a.write_direct(*id, as_bytes("tail"));
  REQUIRE(n.ok());
  CHECK(*n == 0);
  p.settle();
  p.b.consume(*id, kInitialWindow);
  p.settle();
  CHECK(p.a.send_buffered(*id) == 0);
  REQUIRE(count(p.ea, Event::Kind::kWritable, *id) == 1);
  REQUIRE(*p.a.write_direct(*id, as_bytes("tail")) == 4);
  p.settle();
  Bytes want = big;
  append(want, as_bytes("tail"));
  CHECK(data_of(p.eb, *id) == want);
}

TEST_CASE("yamux keeps many interleaved streams intact and in order, never over window plus buffer", "[yamux]") {
  SessionOptions oa;
  oa.is_client = true;
  oa.output_high_water = 48 * 1024;
  oa.max_data_frame = 8 * 1024;
  oa.max_send_buffer = 32 * 1024;
  SessionOptions ob;
  ob.is_client = false;
  Pair p(oa, ob);
  constexpr int kStreams = 12;
  std::vector<uint32_t> ids;
  std::vector<Bytes> want(kStreams), got(kStreams);
  std::vector<size_t> accepted(kStreams, 0), consumed(kStreams, 0);
  for (int i = 0; i < kStreams; ++i) {
    ids.push_back(*p.a.open_stream());
    want[i] = pattern(400 * 1024 + 977 * i);
    for (auto& b : want[i]) b = static_cast<uint8_t>(b ^ (i * 37));
  }
  p.settle();
  uint64_t rng = 12345;
  auto next = [&](uint64_t bound) {
    rng = rng * 6364136223846793005ull + 1442695040888963407ull;
    return (rng >> 33) % bound;
  };
  for (int round = 0; round < 100000; ++round) {
    bool all = true;
    for (int i = 0; i < kStreams; ++i) all = all && got[i].size() == want[i].size();
    if (all) break;
    const int i = static_cast<int>(next(kStreams));
    if (accepted[i] < want[i].size()) {
      const size_t len = std::min<size_t>(1 + next(40 * 1024), want[i].size() - accepted[i]);
      ByteView part = ByteView(want[i]).subspan(accepted[i], len);
      const size_t buffered = p.a.send_buffered(ids[i]);
      const bool direct = next(2) == 0;
      auto n = direct ? p.a.write_direct(ids[i], part) : p.a.write(ids[i], part);
      REQUIRE(n.ok());
      accepted[i] += *n;
      if (direct) CHECK(p.a.send_buffered(ids[i]) <= buffered);  // write_direct buffers nothing
    }
    // What waits unframed never exceeds the peer's window plus the stream buffer (the receiver
    // checks that nothing beyond its window was framed: feed() would fail).
    REQUIRE(p.a.send_buffered(ids[i]) <= p.a.send_window(ids[i]) + oa.max_send_buffer);
    if (next(3) == 0) {
      Bytes x = p.a.take_output();
      const size_t cut = x.empty() ? 0 : next(x.size());
      REQUIRE(p.b.feed(ByteView(x).first(cut)).ok());  // any split
      REQUIRE(p.b.feed(ByteView(x).subspan(cut)).ok());
      REQUIRE(p.a.feed(p.b.take_output()).ok());
    }
    p.collect();
    for (auto& e : p.eb) {
      if (e.kind != Event::Kind::kData) continue;
      const auto at = std::find(ids.begin(), ids.end(), e.stream) - ids.begin();
      REQUIRE(at < kStreams);
      append(got[at], e.data);
    }
    p.eb.clear();
    // The reader consumes some streams now and lets others wait.
    const int r = static_cast<int>(next(kStreams));
    if (got[r].size() > consumed[r]) {
      p.b.consume(ids[r], got[r].size() - consumed[r]);
      consumed[r] = got[r].size();
    }
  }
  for (int i = 0; i < kStreams; ++i) {
    INFO("stream " << i);
    CHECK(got[i] == want[i]);
  }
}

TEST_CASE("yamux streams opened after auto-tuning start with the learned window, within the total cap", "[yamux]") {
  SessionOptions server;
  server.is_client = false;
  server.max_total_receive_window = 20u * 1024 * 1024;  // room for one learned window, not two
  Pair p(Pair::opts(true, nullptr), server);
  p.clock.advance(std::chrono::milliseconds(10));
  p.settle();
  auto first = p.a.open_stream();
  p.settle();
  // Before any tuning a new stream gets the spec's window.
  CHECK(p.a.send_window(*first) == kInitialWindow);
  const Bytes chunk = pattern(64 * 1024);
  for (int round = 0; round < 400; ++round) {
    REQUIRE(p.a.write(*first, chunk).ok());
    p.settle();
    p.b.consume(*first, take_data(p.eb, *first));
  }
  REQUIRE(p.b.receive_window_target(*first) == 16u * 1024 * 1024);

  // A stream the client opens next: the server grants the learned window in its ACK, so the
  // client may send 16 MiB at once, without waiting for window updates.
  auto second = p.a.open_stream();
  p.settle();
  CHECK(p.b.receive_window_target(*second) == 20u * 1024 * 1024 - 16u * 1024 * 1024);
  CHECK(p.a.send_window(*second) == p.b.receive_window_target(*second));
  REQUIRE(p.a.close_write(*first).ok());
  REQUIRE(p.b.close_write(*first).ok());
  p.a.reset(*second);
  p.settle();

  // With the first stream gone the cap has room: a stream the server opens gets the whole
  // learned window granted in its SYN, and the client may send all of it at once.
  auto third = p.b.open_stream();
  p.settle();
  CHECK(p.b.receive_window_target(*third) == 16u * 1024 * 1024);
  CHECK(p.a.send_window(*third) == 16u * 1024 * 1024);
  const Bytes big = pattern(16u * 1024 * 1024);
  size_t taken = 0;
  for (int i = 0; i < 64 && taken < big.size(); ++i) {
    auto n = p.a.write(*third, ByteView(big).subspan(taken));
    REQUIRE(n.ok());
    taken += *n;
    p.settle();
  }
  CHECK(taken == big.size());
  CHECK(data_of(p.eb, *third) == big);
  CHECK_FALSE(p.b.dead());
}
