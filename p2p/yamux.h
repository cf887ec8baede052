// yamux session as a sans-IO state machine: feed() the bytes the peer sent, take_events() to
// learn what happened, take_output() for the bytes to send back. No sockets, no timers: time
// comes from a Clock so window auto-tuning is testable.
//
// Memory is bounded on both sides:
// - receive: a peer may only send what our window grants (more is a protocol error that ends
//   the session); windows grow only when the application consumes data quickly (see consume()),
//   and the sum of all grants is capped by max_total_receive_window.
// - send: write() accepts at most max_send_buffer bytes per stream beyond what the peer's window
//   lets out; the rest is refused (backpressure) and a kWritable event says when to retry. Data
//   moves from stream buffers to the output only while the output is under output_high_water.
//   write_direct() buffers nothing: it frames what can go out now and leaves the rest with the
//   caller, which saves the copy through the stream buffer for callers that keep their data
//   until it is taken anyway (the host does).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <span>
#include <vector>

#include "common/bytes.h"
#include "common/clock.h"
#include "common/status.h"
#include "p2p/yamux_frame.h"

namespace noloco::p2p::yamux {

struct SessionOptions {
  bool is_client = true;                         // dialer: odd stream ids; listener: even
  uint32_t initial_window = kInitialWindow;      // per stream, as the spec fixes it
  uint32_t max_window = 16 * 1024 * 1024;        // auto-tuned receive windows stop here
  size_t max_total_receive_window = 128u << 20;  // sum over streams of granted windows
  size_t max_streams = 256;                      // open streams (both directions); excess SYN -> RST
  uint32_t max_data_frame = 256 * 1024;          // largest Data frame we send
  size_t max_send_buffer = 1u << 20;             // per stream, beyond the peer's window
  // Stop moving stream data to the output above this. Small on purpose: bytes framed here are
  // sealed and handed to the kernel while still in cache, and the peer copies them out sooner;
  // on loopback 512 KiB took about a fifth less CPU per GB than 4 MiB. The kernel's socket
  // buffer, not this, covers the bandwidth-delay product.
  size_t output_high_water = 512u << 10;
  size_t output_hard_cap = 64u << 20;            // control frames the peer never reads: give up
  bool send_initial_ping = true;                 // measures RTT, which auto-tuning needs
  // Windows double when the peer refills one within 4 RTTs; RTT is taken as at least this,
  // because on loopback the measured RTT (microseconds) is below scheduling noise.
  Duration min_tuning_rtt = std::chrono::milliseconds(1);
  const Clock* clock = nullptr;                  // null: a process-wide SteadyClock
  Status validate() const;
};

struct Event {
  enum class Kind {
    kStreamOpened,    // the peer opened stream `stream`
    kData,            // `data` arrived on `stream`; call consume() once the app has used it
    kStreamFinished,  // the peer half-closed `stream` (FIN): no more data will come
    kStreamReset,     // `stream` was reset (by the peer, or refused by us); it is gone
    kStreamClosed,    // both sides sent FIN; `stream` is gone
    kWritable,        // `stream` can take more write() bytes again
    kGoAway,          // the peer will accept no new streams; `code` says why
    kPong,            // our ping came back; rtt() is updated
  };
  Kind kind;
  uint32_t stream = 0;
  Bytes data;
  uint32_t code = 0;
};

class Session {
 public:
  explicit Session(SessionOptions options);

  // Bytes from the peer, any split. An error means the peer broke the protocol: a GoAway has
  // been queued to the output and the session is dead (every later call fails or is a no-op).
  Status feed(ByteView in);
  // The same for bytes that arrived as several pieces (e.g. one read's Noise frames).
  Status feed(std::span<const ByteView> parts);
  std::vector<Event> take_events();
  bool has_events() const { return !events_.empty(); }
  // Bytes to send to the peer. Taking them lets more buffered stream data move out.
  Bytes take_output();
  // Same, into `out` (cleared first), so the caller and the session can trade buffers back and
  // forth without reallocating on the bulk path.
  void take_output_into(Bytes& out);
  bool has_output() const { return !output_.empty(); }

  // Opens an outbound stream (SYN). Fails once the cap is reached, after a GoAway either way,
  // or when the session is dead.
  Result<uint32_t> open_stream();
  // Accepts up to the stream's send window plus its send-buffer room; returns the count taken.
  // Fewer than data.size() means: wait for kWritable.
  Result<size_t> write(uint32_t stream, ByteView data);
  // Frames only what the peer's window and the output high water let out now (nothing while
  // earlier write() bytes still wait in the stream buffer); takes nothing into the buffer.
  // Fewer than data.size() means: wait for kWritable, which comes once some of it can go out.
  Result<size_t> write_direct(uint32_t stream, ByteView data);
  // Half-close our direction after any buffered data (FIN).
  Status close_write(uint32_t stream);
  // Abort the stream in both directions (RST); buffered data is dropped.
  void reset(uint32_t stream);
  // The application has used `n` bytes of received data: return that window to the peer,
  // growing it when the peer refilled it within about one round trip.
  void consume(uint32_t stream, size_t n);
  void ping();
  void go_away(GoAwayCode code);

  bool dead() const { return dead_; }
  bool remote_went_away() const { return remote_go_away_; }
  size_t stream_count() const { return streams_.size(); }
  bool has_stream(uint32_t id) const { return streams_.count(id) != 0; }
  std::optional<Duration> rtt() const { return rtt_; }
  // For tests and metrics.
  uint32_t receive_window_target(uint32_t stream) const;
  uint32_t send_window(uint32_t stream) const;
  size_t send_buffered(uint32_t stream) const;

 private:
  struct Stream {
    uint32_t send_window = kInitialWindow;
    uint32_t recv_target = kInitialWindow;  // the window we aim to keep open for the peer
    uint32_t recv_available = kInitialWindow;  // what the peer may still send
    uint32_t unacked_consumed = 0;          // consumed but not yet returned in a WindowUpdate
    TimePoint last_update{};
    Bytes pending;                          // accepted by write(), not yet framed, from pending_head
    size_t pending_head = 0;
    size_t pending_size() const { return pending.size() - pending_head; }
    bool writer_blocked = false;            // write() refused bytes: owe a kWritable
    bool writer_direct = false;             // ... and it was write_direct(): see writer_room()
    bool fin_queued = false;                // close_write() called
    bool local_fin_sent = false;
    bool remote_fin = false;
  };

  Status fail(Status why, GoAwayCode code);
  Result<Stream*> writable_stream(uint32_t id);
  bool writer_room(const Stream& s) const;  // a blocked writer would now get bytes accepted
  Status feed_part(ByteView in, size_t after);  // after: bytes of the same feed() still to come
  Status handle_header();
  Status handle_window_update(const Header& h);
  Status handle_new_stream(const Header& h, bool* refused);
  void deliver_data(uint32_t id, ByteView chunk, size_t size_hint);
  void remote_fin(uint32_t id);
  void emit(Event::Kind kind, uint32_t stream);
  void send_control(FrameType type, uint16_t flags, uint32_t stream, uint32_t length);
  void pump(uint32_t id, Stream& s);
  size_t frame_out(uint32_t id, Stream& s, ByteView src);  // frames what window and high water allow
  void pump_all();
  void maybe_forget(uint32_t id);
  size_t total_recv_target() const;
  // Window for a new stream (learned, as far as the total cap allows); registers it and returns
  // the extra grant to put in the SYN/ACK frame.
  uint32_t start_window(Stream& s);

  SessionOptions opt_;
  const Clock* clock_;
  std::map<uint32_t, Stream> streams_;
  std::vector<Event> events_;
  Bytes output_;
  uint32_t next_stream_id_;
  // The largest receive window auto-tuning has reached on this session. New streams start with
  // it (granted in their SYN/ACK frame), so a second exchange over a reused connection does
  // not climb from 256 KiB again, one round trip per doubling.
  uint32_t learned_window_ = kInitialWindow;
  bool dead_ = false;
  bool remote_go_away_ = false;
  bool local_go_away_ = false;

  // Parser state: a header being collected, then payload bytes still to pass through.
  uint8_t header_buf_[kHeaderSize];
  size_t header_have_ = 0;
  uint32_t payload_left_ = 0;
  uint32_t payload_stream_ = 0;
  bool payload_discard_ = false;  // payload of a refused or unknown stream
  uint16_t payload_flags_ = 0;    // FIN/RST to act on after the payload

  uint32_t ping_nonce_ = 0;
  std::optional<uint32_t> ping_outstanding_;
  TimePoint ping_sent_{};
  std::optional<Duration> rtt_;
};

}  // namespace noloco::p2p::yamux
