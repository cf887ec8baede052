// Internal to the host: the Asio adapter around one ConnectionCore. It reads the socket into the
// core, writes the core's output (one write in flight; the core holds the rest back, which is
// what makes yamux backpressure reach the socket), runs the handshake timer, and turns core
// events into HostStream calls and host notifications.
#pragma once

#include <asio/ip/tcp.hpp>
#include <asio/steady_timer.hpp>

#include <functional>
#include <map>
#include <memory>
#include <optional>

#include "p2p/connection.h"
#include "p2p/host.h"
#include "p2p/host_transport.h"

namespace noloco::p2p {

class HostConnection : public std::enable_shared_from_this<HostConnection> {
 public:
  struct Hooks {
    std::function<void(std::shared_ptr<HostConnection>)> upgraded;
    std::function<void(std::shared_ptr<HostStream>)> inbound_stream;
    std::function<void(HostConnection*, const Status&)> closed;
  };

  HostConnection(asio::io_context& io, std::unique_ptr<ConnectionTransport> transport, const Identity& identity,
                 ConnectionCoreOptions core_options, const HostOptions& host_options, Hooks hooks,
                 std::optional<Multiaddr> remote_addr);

  void start(Duration handshake_timeout);
  // Closes the connection. graceful: say GoAway and send what is queued first.
  void close(Status why, bool graceful);

  bool upgraded() const { return core_.upgraded() && !closed_; }
  bool closed() const { return closed_; }
  bool accepts_streams() const { return upgraded() && !remote_go_away_; }
  const PeerId& remote_peer() const { return core_.remote_peer(); }
  ConnectionRole role() const { return core_.role(); }
  const std::optional<Multiaddr>& remote_addr() const { return remote_addr_; }
  std::optional<Duration> rtt() const { return core_.rtt(); }
  const Status& close_reason() const { return close_reason_; }

  void open_stream(std::vector<std::string> protocols, StreamCallback cb);

  // For HostStream.
  Result<size_t> stream_write(uint32_t id, ByteView data);
  Status stream_close_write(uint32_t id);
  void stream_reset(uint32_t id);
  void stream_consume(uint32_t id, size_t n);
  void flush();

  std::optional<IdentifyInfo> identify_info;
  // Dialled from our listen port by a hole punch (HostImpl::connect_direct with a local
  // endpoint): Host::connection_path reports it as kHolePunched rather than kDirect.
  bool hole_punched = false;

 private:
  void read_loop();
  void on_read(std::span<uint8_t> bytes);
  void handle_events();
  void finish_close();
  void post(std::function<void()> fn);

  asio::io_context& io_;
  std::unique_ptr<ConnectionTransport> transport_;
  asio::steady_timer timer_;
  ConnectionCore core_;
  HostOptions options_;
  Hooks hooks_;
  std::optional<Multiaddr> remote_addr_;
  bool writing_ = false;
  bool closing_ = false;  // graceful close: finish writing, then close
  bool closed_ = false;
  bool remote_go_away_ = false;
  Status close_reason_;
  std::map<uint32_t, std::shared_ptr<HostStream>> streams_;
  std::map<uint32_t, StreamCallback> opening_;
};

}  // namespace noloco::p2p
