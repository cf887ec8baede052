// Internal to the host: the state behind Host (host.cc) and the methods that the host's
// add-on services (relay, AutoNAT, hole punching) use directly. Network thread only.
#pragma once

#include <asio/ip/tcp.hpp>
#include <asio/post.hpp>
#include <asio/steady_timer.hpp>

#include <functional>
#include <list>
#include <map>
#include <memory>
#include <unordered_map>

#include "common/log.h"
#include "p2p/host.h"
#include "p2p/host_connection.h"

namespace noloco::p2p {

namespace autonat {
class AutonatService;
}
namespace holepunch {
class HolePunchService;
}

using asio::ip::tcp;

// All host state, on the network thread.
class HostImpl : public std::enable_shared_from_this<HostImpl> {
 public:
  HostImpl(asio::io_context& io, Identity identity, HostOptions options)
      : io_(io), identity_(std::move(identity)), opt_(std::move(options)), limits_(opt_.address_limits) {
    protocols_ = std::make_shared<std::vector<std::string>>();
  }

  void install_builtin_handlers();
  Result<Multiaddr> listen(const Multiaddr& addr);
  void set_handler(const std::string& protocol, StreamHandler handler);
  void remove_handler(const std::string& protocol);
  void connect(const Multiaddr& addr, std::function<void(Result<std::shared_ptr<HostConnection>>)> cb);
  void connect_relayed(const Multiaddr& addr, std::function<void(Result<std::shared_ptr<HostConnection>>)> cb);
  void reserve_relay(const Multiaddr& relay, std::function<void(Result<relay::ReservationGrant>)> cb);
  void accept_relayed(std::shared_ptr<HostStream> stop);
  void new_stream_on(const PeerId& peer, std::vector<std::string> protocols, StreamCallback cb);
  void ping(const PeerId& peer, std::function<void(Result<Duration>)> cb);
  void close();

  std::shared_ptr<HostConnection> best_connection(const PeerId& peer) const;
  size_t connection_count() const { return pending_.size() + upgraded_count(); }
  size_t upgraded_count() const {
    size_t n = 0;
    for (const auto& [p, v] : conns_) n += v.size();
    return n;
  }
  void post(std::function<void()> fn) {
    asio::post(io_, [fn = std::move(fn)] {
      try {
        fn();
      } catch (const std::exception& e) {
        NLOG_ERROR("p2p: callback threw: {}", e.what());
      }
    });
  }

  asio::io_context& io_;
  Identity identity_;
  HostOptions opt_;
  AddressLimiter limits_;  // inbound connections and identities per remote address
  bool closed_ = false;
  std::vector<std::unique_ptr<tcp::acceptor>> acceptors_;
  std::vector<Multiaddr> listen_addrs_;
  std::map<std::string, StreamHandler> handlers_;
  // Shared with every connection and updated in place, so a handler added later is offered on
  // connections that already exist (all on the network thread: no lock).
  std::shared_ptr<std::vector<std::string>> protocols_;
  // Upgrading connections, and upgraded ones by peer.
  std::map<HostConnection*, std::shared_ptr<HostConnection>> pending_;
  std::unordered_map<PeerId, std::vector<std::shared_ptr<HostConnection>>> conns_;
  std::unordered_map<PeerId, IdentifyInfo> infos_;
  std::function<void(const PeerId&, const IdentifyInfo&)> identify_listener_;

  // Dials in flight, so concurrent requests for one peer share a connection attempt.
  struct Dial {
    std::optional<PeerId> peer;
    std::vector<std::function<void(Result<std::shared_ptr<HostConnection>>)>> waiters;
    std::unique_ptr<asio::steady_timer> timer;
    std::unique_ptr<tcp::resolver> resolver;
    std::shared_ptr<tcp::socket> socket;
    std::weak_ptr<HostConnection> conn;
    std::shared_ptr<HostStream> relay_stream;  // a relayed dial: the hop stream it runs in
    bool relayed = false;                      // through a relay (only joined by relayed dials)
    bool done = false;
  };
  std::list<std::shared_ptr<Dial>> dials_;

  // Circuit relay v2: the relay role (HostOptions::relay) and the relays we hold a
  // reservation on, with its expiry (only those may open relayed connections to us).
  std::shared_ptr<relay::RelayService> relay_service_;
  std::unordered_map<PeerId, TimePoint> reserved_relays_;

  // AutoNAT and hole punching (HostOptions::autonat, ::hole_punch; host_nat.cc).
  std::shared_ptr<autonat::AutonatService> autonat_;
  std::shared_ptr<holepunch::HolePunchService> hole_punch_;
  // Told of every connection once it is upgraded and registered (network thread, inline).
  std::vector<std::function<void(const std::shared_ptr<HostConnection>&)>> upgrade_observers_;
  void start_nat_services();
  // A fresh TCP connection to `to` that neither joins a dial in flight nor reuses a connection
  // (an AutoNAT dial back, a hole punch). With `local`, the socket is bound there first with
  // SO_REUSEADDR and SO_REUSEPORT (a hole punch dials from the listen port). The upgrade runs
  // with `role` and must prove `expected`.
  void connect_direct(const tcp::endpoint& to, std::optional<tcp::endpoint> local, ConnectionRole role,
                      PeerId expected, std::function<void(Result<std::shared_ptr<HostConnection>>)> cb);
  // How peers on direct connections see us (identify's observedAddr).
  std::vector<Multiaddr> observed_addrs() const;
  // The bound listen endpoint of the family of `ip`, if any.
  std::optional<tcp::endpoint> listen_endpoint_for(const asio::ip::address& ip) const;

 private:
  void accept_loop(tcp::acceptor* acceptor);
  std::shared_ptr<HostConnection> make_tcp_connection(tcp::socket socket, ConnectionRole role,
                                                      std::optional<PeerId> expected, std::shared_ptr<Dial> dial);
  std::shared_ptr<HostConnection> make_connection(std::unique_ptr<ConnectionTransport> transport,
                                                  std::optional<Multiaddr> remote, ConnectionRole role,
                                                  std::optional<PeerId> expected, std::shared_ptr<Dial> dial);
  void on_upgraded(const std::shared_ptr<HostConnection>& conn, std::shared_ptr<Dial> dial);
  void on_closed(HostConnection* conn, const Status& why, std::shared_ptr<Dial> dial);
  void on_inbound_stream(std::shared_ptr<HostStream> stream);
  void finish_dial(const std::shared_ptr<Dial>& dial, Result<std::shared_ptr<HostConnection>> r);
  // Joins a dial in flight to `peer` or reuses a connection (true: cb is taken care of).
  bool join_dial(const std::optional<PeerId>& peer,
                 std::function<void(Result<std::shared_ptr<HostConnection>>)>& cb, bool relayed = false);
  std::shared_ptr<Dial> new_dial(std::optional<PeerId> peer,
                                 std::function<void(Result<std::shared_ptr<HostConnection>>)> cb);
  void start_connect(const std::shared_ptr<Dial>& dial, tcp::resolver::results_type endpoints);
  void run_identify(const std::shared_ptr<HostConnection>& conn);
  IdentifyInfo own_identify(const HostConnection* conn) const;
  void rebuild_protocols();
};

}  // namespace noloco::p2p
