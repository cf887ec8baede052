// Fuzzes the yamux session with hostile peer bytes in fuzz-chosen pieces (fed one at a time or
// two as one multi-part feed). Checks the bounds the session promises: never more open streams
// than the cap, received-but-unconsumed data never beyond the windows we granted, bytes waiting
// to be framed never beyond the send window plus the send buffer (write_direct adds none), and
// a dead session stays dead.
#include <cstdint>
#include <cstdlib>
#include <map>

#include "common/clock.h"
#include "fuzz/fuzz_split.h"
#include "p2p/yamux.h"

using namespace noloco;
using namespace noloco::p2p::yamux;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static ManualClock clock;
  SessionOptions opt;
  opt.is_client = (size > 0 && (data[0] & 1));
  opt.max_streams = 8;
  opt.max_window = 1 << 20;
  opt.max_total_receive_window = 4u << 20;
  opt.clock = &clock;
  Session s(opt);
  fuzz::Splitter split(data, size);
  std::span<const uint8_t> piece;
  std::map<uint32_t, size_t> unconsumed;  // per live stream
  bool dead = false;
  int round = 0;
  while (split.next(piece)) {
    Status st;
    std::span<const uint8_t> second;
    if ((piece.size() & 1) && split.next(second)) {
      const ByteView parts[2] = {piece, second};
      st = s.feed(std::span<const ByteView>(parts));
    } else {
      st = s.feed(piece);
    }
    if (dead && st.ok()) std::abort();  // a dead session must refuse input
    if (!st.ok()) dead = true;
    if (s.stream_count() > opt.max_streams) std::abort();
    for (auto& e : s.take_events()) {
      if (e.kind == Event::Kind::kStreamReset || e.kind == Event::Kind::kStreamClosed) unconsumed.erase(e.stream);
      if (e.kind != Event::Kind::kData) continue;
      unconsumed[e.stream] += e.data.size();
      // Consume every other round, so both the window and its updates are exercised.
      if (++round % 2 == 0) {
        s.consume(e.stream, unconsumed[e.stream]);
        unconsumed[e.stream] = 0;
      }
      // Answer on the stream too: exercises send windows and buffering, both write paths.
      const size_t buffered = s.send_buffered(e.stream);
      if (round % 3 == 0) {
        (void)s.write_direct(e.stream, e.data);
        if (s.send_buffered(e.stream) > buffered) std::abort();
      } else {
        (void)s.write(e.stream, e.data);
      }
      if (s.send_buffered(e.stream) > size_t{s.send_window(e.stream)} + opt.max_send_buffer) std::abort();
    }
    size_t total = 0;
    for (const auto& [id, n] : unconsumed) total += n;
    if (total > opt.max_total_receive_window) std::abort();  // the peer overran our windows
    (void)s.take_output();
    clock.advance(std::chrono::microseconds(100));
  }
  return 0;
}
