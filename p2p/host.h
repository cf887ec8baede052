// The p2p Host: TCP listen and dial, connection upgrade (see connection.h), per-protocol stream
// handlers, outbound streams, connection reuse, identify and ping, limits, shutdown.
//
// Threading: everything runs on the thread that runs the io_context passed to create() (the
// network thread). Call Host and HostStream methods only there; other threads asio::post() to
// it. Callbacks run on that thread too, always posted (never from inside the call that
// registered them), and an exception thrown by a callback is caught and logged.
//
// Lifetime: the owner holds the shared_ptr<Host>; connections, timers and callbacks hold weak
// references, so dropping the Host (after close()) ends everything. Streams keep working until
// their connection closes; after that every operation reports kUnavailable.
#pragma once

#include <asio/io_context.hpp>

#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/bytes.h"
#include "common/status.h"
#include "p2p/host_options.h"
#include "p2p/identify.h"
#include "p2p/identity.h"
#include "p2p/multiaddr.h"
#include "p2p/relay_client.h"

namespace noloco::p2p {

class HostConnection;
class HostImpl;
namespace relay {
class RelayService;
}

// One multiplexed stream, after protocol negotiation.
class HostStream : public std::enable_shared_from_this<HostStream> {
 public:
  using ReadCallback = std::function<void(Result<Bytes>)>;  // empty Bytes: end of stream (FIN)
  using WriteCallback = std::function<void(Status)>;

  HostStream(asio::io_context& io, std::weak_ptr<HostConnection> conn, uint32_t id, std::string protocol,
             PeerId remote, bool inbound, size_t max_message);

  const std::string& protocol() const { return protocol_; }
  const PeerId& remote_peer() const { return remote_; }
  bool inbound() const { return inbound_; }
  uint32_t id() const { return id_; }
  // The connection this stream runs on (null once it is gone; internal to p2p/).
  std::shared_ptr<HostConnection> connection() const { return conn_.lock(); }
  // Whether that connection runs through a relay (false once it is gone).
  bool relayed() const;

  // The next received chunk (any size), end of stream, or the error that ended the stream.
  // One read at a time. Bytes that read_message received past its last message come first.
  void read_some(ReadCallback cb);
  // Queues all of `data`; cb runs once the stream has accepted the last byte (the peer's
  // window and our send buffer bound what is queued below us, so this is the backpressure).
  void write(Bytes data, WriteCallback cb = {});
  // Half-close after queued writes.
  void close_write();
  // Abort both directions.
  void reset();

  // Helpers on top of read_some.
  // One <uvarint length><bytes> message, at most `max` bytes (0: the host's max_message_size);
  // a larger announced length resets the stream before reading the body. kTruncated with
  // "end of stream" when the peer finished cleanly between messages.
  void read_message(ReadCallback cb, size_t max = 0);
  // Everything until the peer's FIN, at most `max` bytes (more is an error and resets).
  void read_to_end(size_t max, ReadCallback cb);

  // Called by the connection (network thread).
  void on_data(Bytes data);
  void on_finished();
  void on_error(Status why);
  void on_writable();

 private:
  struct PendingWrite {
    Bytes data;
    size_t offset = 0;
    WriteCallback cb;
  };
  void read_raw(ReadCallback cb);
  void deliver();
  void pump_writes();
  void fail_writes(const Status& why);
  void post(std::function<void()> fn);
  void read_to_end_step(std::shared_ptr<Bytes> acc, size_t max, ReadCallback cb);
  void read_message_step(size_t max, ReadCallback cb);

  asio::io_context& io_;
  std::weak_ptr<HostConnection> conn_;
  uint32_t id_;
  std::string protocol_;
  PeerId remote_;
  bool inbound_;
  size_t max_message_;
  std::deque<Bytes> inbox_;
  bool eof_ = false;
  Status error_;
  ReadCallback pending_read_;
  std::deque<PendingWrite> writes_;
  bool close_after_writes_ = false;
  bool write_closed_ = false;
  Bytes message_buf_;  // read_message: received bytes not yet returned as a message
};

using StreamHandler = std::function<void(std::shared_ptr<HostStream>)>;
using StreamCallback = std::function<void(Result<std::shared_ptr<HostStream>>)>;

class Host {
 public:
  static Result<std::shared_ptr<Host>> create(asio::io_context& io, Identity identity, HostOptions options);
  ~Host();

  const PeerId& peer_id() const;
  const Identity& identity() const;

  // Starts listening on /ip4|ip6/<ip>/tcp/<port> (port 0: any). Returns the bound address
  // with /p2p/<our id>.
  Result<Multiaddr> listen(const Multiaddr& addr);
  std::vector<Multiaddr> listen_addrs() const;

  // Serves `protocol` on inbound streams. identify and ping are served from the start.
  void set_handler(const std::string& protocol, StreamHandler handler);
  void remove_handler(const std::string& protocol);

  // Connects (or reuses a connection) to the peer at `addr`. With /p2p/<id> the peer must
  // prove that identity. cb gets the remote PeerId once the connection is upgraded.
  void connect(const Multiaddr& addr, std::function<void(Result<PeerId>)> cb);
  // Opens a stream on a connection to `addr` (dialling if needed) speaking the first of
  // `protocols` the peer supports.
  void new_stream(const Multiaddr& addr, std::vector<std::string> protocols, StreamCallback cb);
  // Same, over an existing connection only (kUnavailable when not connected).
  void new_stream(const PeerId& peer, std::vector<std::string> protocols, StreamCallback cb);
  // Circuit relay v2 (docs/protocols/relay.md). connect() and new_stream() also take
  // /ip4|ip6/<ip>/tcp/<port>/p2p/<relay>/p2p-circuit/p2p/<target>: the connection to the target
  // (Noise and yamux as usual) then runs inside a stream of our connection to the relay.
  // reserve_relay() asks the relay at /.../p2p/<relay> for a reservation, so that peers reach us
  // at <relay address>/p2p-circuit/p2p/<us>; we accept relayed connections only from relays we
  // hold a live reservation on. Call again before the grant's expiry to refresh it.
  void reserve_relay(const Multiaddr& relay, std::function<void(Result<relay::ReservationGrant>)> cb);
  // The relay role (HostOptions::relay), or null.
  std::shared_ptr<relay::RelayService> relay_service() const;

  // AutoNAT (HostOptions::autonat; docs/protocols/autonat.md): asks up to max_servers peers we
  // hold a direct connection to, and that list /libp2p/autonat/1.0.0 in identify, to dial us
  // back; cb gets the verdict once every one answered or failed. Without the option: kUnknown.
  void check_reachability(std::function<void(autonat::ReachabilityStatus)> cb);
  autonat::ReachabilityStatus reachability() const;
  // Hole punching (HostOptions::hole_punch; docs/protocols/dcutr.md).
  struct HolePunchStats {
    uint64_t attempts = 0;   // DCUtR exchanges started (either side)
    uint64_t succeeded = 0;  // ended with a direct connection
    uint64_t failed = 0;     // gave up (staying relayed)
  };
  HolePunchStats hole_punch_stats() const;
  // Connected to `peer` over a connection that is not relayed.
  bool is_directly_connected(const PeerId& peer) const;
  // How new streams to `peer` travel now: over a relay, a direct connection, or a direct one a
  // hole punch opened (kNone: not connected).
  enum class ConnectionPath { kNone, kDirect, kRelayed, kHolePunched };
  ConnectionPath connection_path(const PeerId& peer) const;
  // The remote addresses of our upgraded connections to `peer` (circuit addresses for relayed ones).
  std::vector<Multiaddr> connection_addrs(const PeerId& peer) const;

  // A fresh connection to /ip4|ip6/<ip>/tcp/<port>/p2p/<id> dialled from our listen port
  // (SO_REUSEPORT: needs HostOptions::hole_punch), so the peer observes the address our
  // listener is mapped to, not an ephemeral port's: `noloco doctor`'s NAT check (host_probe.cc).
  void connect_from_listen_port(const Multiaddr& addr, std::function<void(Result<PeerId>)> cb);

  // One /ipfs/ping/1.0.0 round trip.
  void ping(const PeerId& peer, std::function<void(Result<Duration>)> cb);

  // The last identify message received from the peer, if any.
  std::optional<IdentifyInfo> peer_info(const PeerId& peer) const;
  void set_identify_listener(std::function<void(const PeerId&, const IdentifyInfo&)> fn);
  bool is_connected(const PeerId& peer) const;
  // The remote address of the connection new streams to `peer` use (a /p2p-circuit one when it
  // runs through a relay), or nullopt when not connected. Lets the node report relayed vs direct.
  std::optional<Multiaddr> connected_addr(const PeerId& peer) const;
  size_t connection_count() const;  // upgrading + upgraded

  // Stops listening, fails pending dials, says GoAway and closes every connection.
  void close();

 private:
  explicit Host(std::shared_ptr<HostImpl> impl) : impl_(std::move(impl)) {}
  std::shared_ptr<HostImpl> impl_;
};

}  // namespace noloco::p2p
