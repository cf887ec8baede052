// One libp2p connection's upgrade pipeline and stream multiplexing, as a sans-IO state machine:
// raw socket bytes in (feed), raw socket bytes out (take_output), events out (take_events).
//
//   raw TCP bytes
//     [pnet: XSalsa20 under everything, when a PSK is configured]
//     multistream-select "/noise"
//     Noise XX handshake (remote PeerId learnt, checked against the dialled one)
//     -- from here every byte is Noise-encrypted --
//     multistream-select "/yamux/1.0.0"
//     yamux session
//       per stream: multistream-select of the stream's protocol, then application bytes
//
// The dialer proposes at each multistream step; the listener answers from its list. An inbound
// stream whose protocol we do not serve is answered "na" and, when the peer gives up, dropped.
// The Asio adapter (host_connection.cc) only moves bytes and runs timers.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "common/bytes.h"
#include "common/status.h"
#include "p2p/identity.h"
#include "p2p/multistream.h"
#include "p2p/noise.h"
#include "p2p/pnet.h"
#include "p2p/send_buffer.h"
#include "p2p/yamux.h"

namespace noloco::p2p {

constexpr std::string_view kYamuxProtocolId = "/yamux/1.0.0";

enum class ConnectionRole { kDialer, kListener };

struct ConnectionCoreOptions {
  ConnectionRole role = ConnectionRole::kDialer;
  std::optional<PeerId> expected_remote;  // dialer: the /p2p/ id we dialled, if known
  std::optional<Psk> psk;
  yamux::SessionOptions yamux;            // is_client is set from role
  // Protocols we serve on inbound streams; shared with the host, which may update it at any
  // time on the network thread (each inbound stream reads it when it opens).
  std::shared_ptr<const std::vector<std::string>> protocols;
  // Outbound streams proposing exactly one of these are ready at once (lazy select, see
  // HostOptions::lazy_select_protocols).
  std::vector<std::string> lazy_protocols;
};

struct ConnectionEvent {
  enum class Kind {
    kUpgraded,        // secure channel and yamux ready; remote_peer() is known
    kStreamReady,     // `stream` agreed on `protocol`; inbound says who opened it
    kStreamFailed,    // our outbound `stream` could not agree (status says why); it is gone
    kData,            // application bytes on a ready stream
    kStreamFinished,  // the peer half-closed `stream`
    kStreamReset,     // `stream` was reset; it is gone
    kStreamClosed,    // both directions closed; it is gone
    kWritable,        // `stream` takes writes again
    kGoAway,          // the peer accepts no new streams
  };
  Kind kind;
  uint32_t stream = 0;
  bool inbound = false;
  std::string protocol;
  Bytes data;
  Status status;
};

class ConnectionCore {
 public:
  ConnectionCore(const Identity& identity, ConnectionCoreOptions options);

  // Raw bytes from the socket. An error is terminal: the connection must be closed (anything
  // in take_output() may still be sent first, e.g. a yamux GoAway).
  Status feed(ByteView raw);
  // The same, but the bytes are decrypted where they lie (raw is overwritten): the socket
  // adapter's read buffer goes through without a copy.
  Status feed_in_place(std::span<uint8_t> raw);
  Bytes take_output();
  // Same without a copy: the bytes stay in the core's storage and the view is valid until the
  // next take_output_view() or take_output() (one socket write in flight at a time). Two
  // buffers alternate, so the bulk path neither allocates nor zero-fills.
  ByteView take_output_view();
  bool has_output() const;
  std::vector<ConnectionEvent> take_events();

  bool upgraded() const { return phase_ == Phase::kReady; }
  bool failed() const { return !error_.ok(); }
  const Status& error() const { return error_; }
  const PeerId& remote_peer() const { return remote_; }
  ConnectionRole role() const { return opt_.role; }

  // Valid once upgraded(). The stream becomes usable at its kStreamReady event.
  Result<uint32_t> open_stream(std::vector<std::string> protocols);
  // Takes what the peer's window and the output high water allow now (yamux write_direct:
  // nothing is buffered); fewer than data.size() means keep the rest and wait for kWritable.
  Result<size_t> write(uint32_t stream, ByteView data);
  Status close_write(uint32_t stream);
  void reset(uint32_t stream);
  // The application used `n` bytes of kData on `stream`: lets the peer send more.
  void consume(uint32_t stream, size_t n);
  void go_away();
  size_t stream_count() const { return session_ ? session_->stream_count() : 0; }
  std::optional<Duration> rtt() const { return session_ ? session_->rtt() : std::nullopt; }

 private:
  enum class Phase { kSecurityNegotiation, kNoise, kMuxerNegotiation, kReady };
  struct StreamState {
    bool inbound = false;
    bool ready = false;
    bool lazy = false;  // announced ready before the listener's answer (data may already flow out)
    bool announced() const { return ready || lazy; }
    std::unique_ptr<MultistreamDialer> dialer;
    std::unique_ptr<MultistreamListener> listener;
    size_t credit = 0;  // bytes already returned to the window while negotiating
  };

  Status fail(Status s);
  void send_raw(ByteView bytes);     // below Noise (pnet applied)
  Status send_secure(ByteView plaintext);  // through Noise
  Status on_plain(std::span<uint8_t> data);  // bytes after pnet, by phase; decrypted in place
  Status on_secure_plain(ByteView plaintext);
  Status feed_session(std::span<const ByteView> plaintext);
  Status start_muxer_negotiation();
  Status process_session();
  void on_stream_bytes(uint32_t id, StreamState& st, Bytes data);
  void emit(ConnectionEvent e) { events_.push_back(std::move(e)); }
  void emit(ConnectionEvent::Kind kind, uint32_t stream);
  Status flush_session_output();

  Identity identity_;
  ConnectionCoreOptions opt_;
  Phase phase_ = Phase::kSecurityNegotiation;
  Status error_;
  PeerId remote_;
  std::optional<PnetCodec> pnet_;
  std::unique_ptr<MultistreamDialer> ms_dialer_;
  std::unique_ptr<MultistreamListener> ms_listener_;
  std::unique_ptr<NoiseHandshake> handshake_;
  std::optional<NoiseTransport> transport_;
  std::unique_ptr<yamux::Session> session_;
  std::map<uint32_t, StreamState> streams_;
  std::vector<ConnectionEvent> events_;
  SendBuffer raw_out_;
  SendBuffer raw_taken_;         // what the last take_output_view() handed out
  Bytes session_out_;            // traded with the session's output buffer, so no allocation
  std::vector<ByteView> parts_;  // one read's decrypted Noise frames, in place
};

}  // namespace noloco::p2p
