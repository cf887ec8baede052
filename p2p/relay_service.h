// The relay role of circuit relay v2 on a Host (network thread): serves
// /libp2p/circuit/relay/0.2.0/hop, keeps reservations and admits circuits through the sans-IO
// RelayHop core, opens the stop stream to the target and then moves bytes between the two
// streams, counting them against the circuit's limit and closing it at its byte or duration
// limit. Enabled by HostOptions::relay; the Host owns it.
#pragma once

#include <asio/io_context.hpp>
#include <asio/steady_timer.hpp>

#include <map>
#include <memory>

#include "p2p/host.h"
#include "p2p/relay_hop.h"

namespace noloco::p2p::relay {

class RelayService : public std::enable_shared_from_this<RelayService> {
 public:
  // The target must answer our STOP CONNECT within this.
  static constexpr Duration kStopTimeout = std::chrono::seconds(10);

  // Installs the hop handler on `host`.
  static std::shared_ptr<RelayService> start(asio::io_context& io, const std::shared_ptr<Host>& host,
                                             RelayOptions options);
  RelayService(asio::io_context& io, std::weak_ptr<Host> host, RelayOptions options);

  size_t reservation_count() const { return core_.reservation_count(); }
  size_t circuit_count() const { return core_.circuit_count(); }
  // Circuits closed because they reached their byte or duration limit, since start.
  uint64_t circuits_closed_at_limit() const { return closed_at_limit_; }

 private:
  struct Live {
    std::shared_ptr<HostStream> source, target;
    std::unique_ptr<asio::steady_timer> timer;
    int open_directions = 2;
  };
  void on_hop_stream(std::shared_ptr<HostStream> s);
  void open_stop(std::shared_ptr<HostStream> source, RelayHop::Decision d);
  void on_stop_reply(uint64_t id, std::shared_ptr<HostStream> source, std::shared_ptr<HostStream> target,
                     Result<StopMessage> reply);
  void bridge(uint64_t id, std::shared_ptr<HostStream> source, std::shared_ptr<HostStream> target);
  void pump(uint64_t id, std::shared_ptr<HostStream> from, std::shared_ptr<HostStream> to, Direction dir);
  void close_circuit(uint64_t id, bool at_limit);

  asio::io_context& io_;
  std::weak_ptr<Host> host_;
  RelayHop core_;
  std::map<uint64_t, Live> live_;
  uint64_t closed_at_limit_ = 0;
};

}  // namespace noloco::p2p::relay
