#include "p2p/host.h"

#include <asio/ip/tcp.hpp>
#include <asio/post.hpp>
#include <asio/connect.hpp>
#include <asio/steady_timer.hpp>

#include <algorithm>
#include <chrono>
#include <list>
#include <unordered_map>

#include "common/log.h"
#include "common/varint.h"
#include "p2p/framing.h"
#include "p2p/host_connection.h"
#include "p2p/host_impl.h"
#include "p2p/ping.h"
#include "p2p/relay_client_io.h"
#include "p2p/relay_service.h"

namespace noloco::p2p {

Status HostOptions::validate() const {
  if (dial_timeout <= Duration::zero()) return invalid_argument("host: dial_timeout must be positive");
  if (handshake_timeout <= Duration::zero()) return invalid_argument("host: handshake_timeout must be positive");
  if (ping_timeout <= Duration::zero()) return invalid_argument("host: ping_timeout must be positive");
  if (max_connections == 0) return invalid_argument("host: max_connections must be positive");
  if (max_connections_per_peer == 0) return invalid_argument("host: max_connections_per_peer must be positive");
  if (max_streams_per_connection == 0) return invalid_argument("host: max_streams_per_connection must be positive");
  if (max_stream_window < yamux::kInitialWindow) return invalid_argument("host: max_stream_window below 256 KiB");
  if (max_connection_receive_window < yamux::kInitialWindow) {
    return invalid_argument("host: max_connection_receive_window below 256 KiB");
  }
  if (max_stream_send_buffer == 0) return invalid_argument("host: max_stream_send_buffer must be positive");
  if (max_message_size == 0) return invalid_argument("host: max_message_size must be positive");
  if (read_buffer_size < 1024) return invalid_argument("host: read_buffer_size below 1 KiB");
  NOLOCO_RETURN_IF_ERROR(address_limits.validate());
  if (relay) NOLOCO_RETURN_IF_ERROR(relay->validate());
  if (autonat) NOLOCO_RETURN_IF_ERROR(autonat->server.validate());
  if (autonat) NOLOCO_RETURN_IF_ERROR(autonat->client.validate());
  if (!dial_from.empty()) {
    asio::error_code ec;
    asio::ip::make_address(dial_from, ec);
    if (ec) return invalid_argument("host: dial_from is not an IP address: " + dial_from);
  }
  return Status::Ok();
}

// --- listening and accepting ------------------------------------------------------------------

Result<Multiaddr> HostImpl::listen(const Multiaddr& addr) {
  if (closed_) return Status(StatusCode::kUnavailable, "host is closed");
  auto host = addr.host();
  auto port = addr.tcp_port();
  if (!host || !port || addr.host_is_dns()) {
    return invalid_argument("listen: need /ip4|ip6/<address>/tcp/<port>, got " + addr.to_string());
  }
  asio::error_code ec;
  auto ip = asio::ip::make_address(*host, ec);
  if (ec) return invalid_argument("listen: bad address " + *host);
  auto acceptor = std::make_unique<tcp::acceptor>(io_);
  tcp::endpoint ep(ip, *port);
  acceptor->open(ep.protocol(), ec);
  if (!ec) acceptor->set_option(tcp::acceptor::reuse_address(true), ec);
  // Hole punching dials from the listen port, which needs SO_REUSEPORT on both sockets.
  if (!ec && opt_.hole_punch) acceptor->set_option(asio::detail::socket_option::boolean<SOL_SOCKET, SO_REUSEPORT>(true), ec);
  if (!ec) acceptor->bind(ep, ec);
  if (!ec) acceptor->listen(asio::socket_base::max_listen_connections, ec);
  if (ec) return io_error("listen on " + addr.to_string() + ": " + ec.message());
  tcp::endpoint bound = acceptor->local_endpoint(ec);
  if (ec) return io_error("listen: " + ec.message());
  NOLOCO_ASSIGN_OR_RETURN(Multiaddr real, Multiaddr::from_ip_tcp(bound.address().to_string(), bound.port()));
  listen_addrs_.push_back(real);
  tcp::acceptor* raw = acceptor.get();
  acceptors_.push_back(std::move(acceptor));
  accept_loop(raw);
  return real.with_peer_id(identity_.peer_id());
}

void HostImpl::accept_loop(tcp::acceptor* acceptor) {
  std::weak_ptr<HostImpl> weak = weak_from_this();
  acceptor->async_accept([weak, acceptor](const asio::error_code& ec, tcp::socket socket) {
    auto self = weak.lock();
    if (!self || self->closed_) return;
    if (ec) {
      if (ec == asio::error::operation_aborted) return;
      NLOG_WARN("p2p: accept failed: {}", ec.message());
    } else if (self->connection_count() >= self->opt_.max_connections) {
      NLOG_WARN("p2p: connection limit ({}) reached, refusing an inbound connection", self->opt_.max_connections);
      asio::error_code ignored;
      socket.close(ignored);
    } else {
      asio::error_code ep_ec;
      const std::string ip = socket.remote_endpoint(ep_ec).address().to_string();
      auto conn = self->make_tcp_connection(std::move(socket), ConnectionRole::kListener, std::nullopt, nullptr);
      if (Status st = self->limits_.admit_inbound(conn.get(), ep_ec ? std::string() : ip); !st.ok()) {
        NLOG_WARN("p2p: refusing an inbound connection: {}", st.message());
        conn->close(st, false);
      } else {
        conn->start(self->opt_.handshake_timeout);
      }
    }
    self->accept_loop(acceptor);
  });
}

std::shared_ptr<HostConnection> HostImpl::make_tcp_connection(tcp::socket socket, ConnectionRole role,
                                                              std::optional<PeerId> expected,
                                                              std::shared_ptr<Dial> dial) {
  std::optional<Multiaddr> remote;
  asio::error_code ec;
  auto ep = socket.remote_endpoint(ec);
  if (!ec) {
    auto m = Multiaddr::from_ip_tcp(ep.address().to_string(), ep.port());
    if (m.ok()) remote = *m;
  }
  return make_connection(make_tcp_transport(std::move(socket), opt_.read_buffer_size), std::move(remote), role,
                         std::move(expected), std::move(dial));
}

std::shared_ptr<HostConnection> HostImpl::make_connection(std::unique_ptr<ConnectionTransport> transport,
                                                          std::optional<Multiaddr> remote, ConnectionRole role,
                                                          std::optional<PeerId> expected,
                                                          std::shared_ptr<Dial> dial) {
  ConnectionCoreOptions co;
  co.role = role;
  co.expected_remote = std::move(expected);
  co.psk = opt_.psk;
  co.protocols = protocols_;
  co.lazy_protocols = opt_.lazy_select_protocols;
  co.yamux.max_window = opt_.max_stream_window;
  co.yamux.max_total_receive_window = opt_.max_connection_receive_window;
  co.yamux.max_streams = opt_.max_streams_per_connection;
  co.yamux.max_send_buffer = opt_.max_stream_send_buffer;

  std::weak_ptr<HostImpl> weak = weak_from_this();
  HostConnection::Hooks hooks;
  hooks.upgraded = [weak, dial](std::shared_ptr<HostConnection> c) {
    if (auto self = weak.lock()) self->on_upgraded(c, dial);
  };
  hooks.inbound_stream = [weak](std::shared_ptr<HostStream> s) {
    if (auto self = weak.lock()) {
      self->on_inbound_stream(std::move(s));
    } else {
      s->reset();
    }
  };
  hooks.closed = [weak, dial](HostConnection* c, const Status& why) {
    if (auto self = weak.lock()) self->on_closed(c, why, dial);
  };
  auto conn = std::make_shared<HostConnection>(io_, std::move(transport), identity_, std::move(co), opt_,
                                               std::move(hooks), remote);
  pending_[conn.get()] = conn;
  if (dial) dial->conn = conn;
  return conn;
}

void HostImpl::on_upgraded(const std::shared_ptr<HostConnection>& conn, std::shared_ptr<Dial> dial) {
  pending_.erase(conn.get());
  if (closed_) {
    conn->close(Status(StatusCode::kUnavailable, "host is closing"), true);
    return;
  }
  if (Status st = limits_.admit_peer(conn.get(), conn->remote_peer()); !st.ok()) {
    NLOG_WARN("p2p: closing the connection of {}: {}", conn->remote_peer().to_string(), st.message());
    conn->close(st, true);
    return;
  }
  auto& list = conns_[conn->remote_peer()];
  if (list.size() >= opt_.max_connections_per_peer) {
    NLOG_WARN("p2p: too many connections from {}, closing the newest", conn->remote_peer().to_string());
    conn->close(Status(StatusCode::kTooLarge, "too many connections to this peer"), true);
    if (dial) finish_dial(dial, best_connection(conn->remote_peer()));
    return;
  }
  list.push_back(conn);
  NLOG_DEBUG("p2p: connected to {}", conn->remote_peer().to_string());
  if (dial) finish_dial(dial, conn);
  run_identify(conn);
  for (const auto& observe : upgrade_observers_) observe(conn);
}

void HostImpl::on_closed(HostConnection* conn, const Status& why, std::shared_ptr<Dial> dial) {
  NLOG_DEBUG("p2p: connection closed: {}", why.to_string());
  pending_.erase(conn);
  limits_.release(conn);
  const PeerId& peer = conn->remote_peer();
  if (auto it = conns_.find(peer); it != conns_.end()) {
    auto& v = it->second;
    v.erase(std::remove_if(v.begin(), v.end(), [&](const auto& c) { return c.get() == conn; }), v.end());
    if (v.empty()) conns_.erase(it);
  }
  if (dial && !dial->done) finish_dial(dial, why);
}

// --- handlers and inbound streams --------------------------------------------------------------

void HostImpl::rebuild_protocols() {
  protocols_->clear();
  for (const auto& [p, h] : handlers_) protocols_->push_back(p);
}

void HostImpl::set_handler(const std::string& protocol, StreamHandler handler) {
  handlers_[protocol] = std::move(handler);
  rebuild_protocols();
}

void HostImpl::remove_handler(const std::string& protocol) {
  handlers_.erase(protocol);
  rebuild_protocols();
}

void HostImpl::on_inbound_stream(std::shared_ptr<HostStream> stream) {
  auto it = handlers_.find(stream->protocol());
  if (it == handlers_.end()) {
    stream->reset();
    return;
  }
  post([h = it->second, stream] { h(stream); });
}

IdentifyInfo HostImpl::own_identify(const HostConnection* conn) const {
  IdentifyInfo info;
  info.protocol_version = std::string(kIdentifyProtocolVersion);
  info.agent_version = opt_.agent_version;
  info.public_key = identity_.public_key_protobuf();
  info.listen_addrs = listen_addrs_;
  for (const auto& [p, h] : handlers_) info.protocols.push_back(p);
  // A relayed connection's remote address says nothing about the peer's own reachability (and
  // js-libp2p rejects one without an IP), so identify leaves observedAddr out there.
  if (conn && conn->remote_addr() && !conn->remote_addr()->is_circuit()) info.observed_addr = conn->remote_addr();
  return info;
}

void HostImpl::install_builtin_handlers() {
  std::weak_ptr<HostImpl> weak = weak_from_this();
  set_handler(std::string(kIdentifyProtocolId), [weak](std::shared_ptr<HostStream> s) {
    auto self = weak.lock();
    if (!self) return s->reset();
    auto conn = self->best_connection(s->remote_peer());
    IdentifyInfo info = self->own_identify(conn.get());
    s->write(encode_length_prefixed(encode_identify(info)));
    s->close_write();
  });
  set_handler(std::string(relay::kStopProtocolId), [weak](std::shared_ptr<HostStream> s) {
    auto self = weak.lock();
    if (!self) return s->reset();
    self->accept_relayed(std::move(s));
  });
  // Echo 32-byte blocks until the peer half-closes, then close our side (js-libp2p opens one
  // stream per ping; go-libp2p reuses one stream for many).
  set_handler(std::string(kPingProtocolId), [](std::shared_ptr<HostStream> s) {
    auto echo = std::make_shared<PingEcho>();
    auto step = std::make_shared<std::function<void(Result<Bytes>)>>();
    *step = [s, echo, weak_step = std::weak_ptr(step)](Result<Bytes> r) {
      if (!r.ok()) return;
      if (r->empty()) return s->close_write();
      Bytes back = echo->feed(*r);
      if (!back.empty()) s->write(std::move(back));
      if (auto next = weak_step.lock()) s->read_some([next](Result<Bytes> r2) { (*next)(std::move(r2)); });
    };
    s->read_some([step](Result<Bytes> r) { (*step)(std::move(r)); });
  });
}

void HostImpl::run_identify(const std::shared_ptr<HostConnection>& conn) {
  std::weak_ptr<HostImpl> weak = weak_from_this();
  std::weak_ptr<HostConnection> weak_conn = conn;
  const PeerId peer = conn->remote_peer();
  conn->open_stream({std::string(kIdentifyProtocolId)}, [weak, weak_conn, peer](Result<std::shared_ptr<HostStream>> r) {
    if (!r.ok()) {
      NLOG_DEBUG("p2p: identify with {} failed: {}", peer.to_string(), r.status().to_string());
      return;
    }
    auto stream = *r;
    stream->close_write();
    stream->read_to_end(kMaxIdentifyMessage + kMaxVarintBytes, [weak, weak_conn, peer](Result<Bytes> body) {
      auto self = weak.lock();
      if (!self) return;
      if (!body.ok()) {
        NLOG_DEBUG("p2p: identify with {} failed: {}", peer.to_string(), body.status().to_string());
        return;
      }
      LengthPrefixedReader reader(kMaxIdentifyMessage);
      Status st = reader.feed(*body);
      auto msg = reader.next();
      if (!st.ok() || !msg) {
        NLOG_WARN("p2p: bad identify message from {}: {}", peer.to_string(), st.ok() ? "incomplete" : st.to_string());
        return;
      }
      auto info = decode_identify(*msg);
      if (!info.ok()) {
        NLOG_WARN("p2p: bad identify message from {}: {}", peer.to_string(), info.status().to_string());
        return;
      }
      // The key in identify must be the one the Noise handshake proved.
      if (!info->public_key.empty()) {
        auto raw = unmarshal_ed25519_public_key(info->public_key);
        auto id = raw.ok() ? PeerId::from_ed25519_public_key(*raw) : Result<PeerId>(raw.status());
        if (!id.ok() || *id != peer) {
          NLOG_WARN("p2p: identify from {} carries another key; ignored", peer.to_string());
          return;
        }
      }
      if (auto c = weak_conn.lock()) c->identify_info = *info;
      self->infos_[peer] = *info;
      if (self->identify_listener_) {
        auto fn = self->identify_listener_;
        self->post([fn, peer, info = *info] { fn(peer, info); });
      }
    });
  });
}

// --- dialling ---------------------------------------------------------------------------------

std::shared_ptr<HostConnection> HostImpl::best_connection(const PeerId& peer) const {
  auto it = conns_.find(peer);
  if (it == conns_.end()) return nullptr;
  // A direct connection before a relayed one (after a hole punch both exist for a while).
  std::shared_ptr<HostConnection> relayed;
  for (const auto& c : it->second) {
    if (!c->accepts_streams()) continue;
    if (c->remote_addr() && c->remote_addr()->is_circuit()) {
      if (!relayed) relayed = c;
      continue;
    }
    return c;
  }
  return relayed;
}

void HostImpl::finish_dial(const std::shared_ptr<Dial>& dial, Result<std::shared_ptr<HostConnection>> r) {
  if (dial->done) return;
  if (r.ok() && !*r) r = Status(StatusCode::kUnavailable, "connection lost");
  dial->done = true;
  if (dial->timer) dial->timer->cancel();
  if (dial->resolver) dial->resolver->cancel();
  dials_.remove(dial);
  auto waiters = std::move(dial->waiters);
  for (auto& w : waiters) post([w = std::move(w), r] { w(r); });
}

bool HostImpl::join_dial(const std::optional<PeerId>& peer,
                         std::function<void(Result<std::shared_ptr<HostConnection>>)>& cb, bool relayed) {
  if (peer && *peer == identity_.peer_id()) {
    post([cb] { cb(invalid_argument("refusing to dial ourselves")); });
    return true;
  }
  if (!peer) return false;
  if (auto c = best_connection(*peer)) {
    post([cb, c] { cb(c); });
    return true;
  }
  for (auto& d : dials_) {
    // A relayed dial never shares the fate of a direct one in flight (a NATed peer's direct
    // address fails, its circuit address works) and the other way round.
    if (d->peer && *d->peer == *peer && !d->done && d->relayed == relayed) {
      d->waiters.push_back(std::move(cb));
      return true;
    }
  }
  return false;
}

// A registered dial bounded by dial_timeout, or null (cb already failed) at the connection limit.
std::shared_ptr<HostImpl::Dial> HostImpl::new_dial(std::optional<PeerId> peer,
                                                   std::function<void(Result<std::shared_ptr<HostConnection>>)> cb) {
  if (connection_count() >= opt_.max_connections) {
    post([cb] { cb(Status(StatusCode::kUnavailable, "connection limit reached")); });
    return nullptr;
  }
  auto dial = std::make_shared<Dial>();
  dial->peer = std::move(peer);
  dial->waiters.push_back(std::move(cb));
  dial->timer = std::make_unique<asio::steady_timer>(io_);
  dials_.push_back(dial);
  std::weak_ptr<HostImpl> weak = weak_from_this();
  std::weak_ptr<Dial> weak_dial = dial;
  dial->timer->expires_after(opt_.dial_timeout);
  dial->timer->async_wait([weak, weak_dial](const asio::error_code& ec) {
    if (ec) return;
    auto self = weak.lock();
    auto d = weak_dial.lock();
    if (!self || !d || d->done) return;
    Status why(StatusCode::kTimeout, "dial timed out");
    self->finish_dial(d, why);
    if (d->socket) {
      asio::error_code ignored;
      d->socket->close(ignored);
    }
    if (d->relay_stream) d->relay_stream->reset();
    if (auto c = d->conn.lock()) c->close(why, false);
  });
  return dial;
}

void HostImpl::connect(const Multiaddr& addr, std::function<void(Result<std::shared_ptr<HostConnection>>)> cb) {
  if (closed_) return post([cb] { cb(Status(StatusCode::kUnavailable, "host is closed")); });
  auto host = addr.host();
  auto port = addr.tcp_port();
  if (addr.is_circuit()) return connect_relayed(addr, std::move(cb));
  if (!host || !port) return post([cb, a = addr.to_string()] { cb(invalid_argument("cannot dial " + a + ": need a host and /tcp/<port>")); });
  std::optional<PeerId> peer = addr.peer_id();
  if (join_dial(peer, cb)) return;
  auto dial = new_dial(peer, std::move(cb));
  if (!dial) return;
  dial->resolver = std::make_unique<tcp::resolver>(io_);
  std::weak_ptr<HostImpl> weak = weak_from_this();
  std::weak_ptr<Dial> weak_dial = dial;

  const bool dns = addr.host_is_dns();
  const bool want_v6 = !addr.components().empty() &&
                       (addr.components()[0].protocol == MultiaddrProtocol::kDns6 ||
                        addr.components()[0].protocol == MultiaddrProtocol::kIp6);
  const std::string port_text = std::to_string(*port);
  auto flags = dns ? tcp::resolver::flags() : tcp::resolver::numeric_host;
  dial->resolver->async_resolve(
      want_v6 ? tcp::v6() : tcp::v4(), *host, port_text, flags | tcp::resolver::numeric_service,
      [weak, weak_dial, h = *host](const asio::error_code& ec, tcp::resolver::results_type results) {
        auto self = weak.lock();
        auto d = weak_dial.lock();
        if (!self || !d || d->done) return;
        if (ec || results.empty()) {
          self->finish_dial(d, Status(StatusCode::kUnavailable, "cannot resolve " + h + ": " +
                                                                   (ec ? ec.message() : std::string("no address"))));
          return;
        }
        self->start_connect(d, std::move(results));
      });
}

void HostImpl::start_connect(const std::shared_ptr<Dial>& dial, tcp::resolver::results_type endpoints) {
  dial->socket = std::make_shared<tcp::socket>(io_);
  std::weak_ptr<HostImpl> weak = weak_from_this();
  std::weak_ptr<Dial> weak_dial = dial;
  auto sock = dial->socket;
  auto on_connected = [weak, weak_dial, sock](const asio::error_code& ec) {
    auto self = weak.lock();
    auto d = weak_dial.lock();
    if (!self || !d || d->done) return;
    if (ec) {
      self->finish_dial(d, Status(StatusCode::kUnavailable, "unreachable: " + ec.message()));
      return;
    }
    if (self->closed_) return self->finish_dial(d, Status(StatusCode::kUnavailable, "host is closed"));
    auto conn = self->make_tcp_connection(std::move(*sock), ConnectionRole::kDialer, d->peer, d);
    d->socket.reset();
    conn->start(self->opt_.dial_timeout);
  };
  if (opt_.dial_from.empty()) {
    asio::async_connect(*sock, endpoints,
                        [on_connected](const asio::error_code& ec, const tcp::endpoint&) { on_connected(ec); });
    return;
  }
  // A fixed source address: one socket bound before connecting, to the first endpoint of the
  // source's family (async_connect over a range reopens the socket per endpoint, losing the bind).
  asio::error_code ec;
  const auto source = asio::ip::make_address(opt_.dial_from, ec);  // validate() checked it parses
  if (ec) return finish_dial(dial, invalid_argument("dial_from is not an IP address: " + opt_.dial_from));
  std::optional<tcp::endpoint> target;
  for (const auto& e : endpoints) {
    if (e.endpoint().address().is_v6() == source.is_v6()) {
      target = e.endpoint();
      break;
    }
  }
  if (!target) {
    return finish_dial(dial, Status(StatusCode::kUnavailable, "no address of the family of dial_from " + opt_.dial_from));
  }
  sock->open(target->protocol(), ec);
  if (!ec) sock->bind(tcp::endpoint(source, 0), ec);
  if (ec) {
    return finish_dial(dial, Status(StatusCode::kUnavailable, "cannot bind dial_from " + opt_.dial_from + ": " + ec.message()));
  }
  sock->async_connect(*target, on_connected);
}

void HostImpl::new_stream_on(const PeerId& peer, std::vector<std::string> protocols, StreamCallback cb) {
  auto c = best_connection(peer);
  if (!c) return post([cb] { cb(Status(StatusCode::kUnavailable, "not connected to that peer")); });
  c->open_stream(std::move(protocols), std::move(cb));
}

// --- circuit relay v2 (docs/protocols/relay.md) -----------------------------------------------

// Dial the relay, ask it on a hop stream for a circuit to the target, then run our connection's
// upgrade (as the dialer, expecting the target's PeerId) inside that stream.
void HostImpl::connect_relayed(const Multiaddr& addr,
                               std::function<void(Result<std::shared_ptr<HostConnection>>)> cb) {
  auto parts = addr.circuit_parts();
  if (!parts.ok() || !parts->target) {
    return post([cb, a = addr.to_string()] { cb(invalid_argument("cannot dial " + a + ": need <relay>/p2p-circuit/p2p/<target>")); });
  }
  const PeerId target = *parts->target;
  if (join_dial(target, cb, /*relayed=*/true)) return;
  auto dial = new_dial(target, std::move(cb));
  if (!dial) return;
  dial->relayed = true;
  std::weak_ptr<HostImpl> weak = weak_from_this();
  std::weak_ptr<Dial> weak_dial = dial;
  connect(parts->relay, [weak, weak_dial, target, addr](Result<std::shared_ptr<HostConnection>> relay_conn) {
    auto self = weak.lock();
    auto d = weak_dial.lock();
    if (!self || !d || d->done) return;
    if (!relay_conn.ok()) return self->finish_dial(d, relay_conn.status().context("relay"));
    (*relay_conn)->open_stream({std::string(relay::kHopProtocolId)}, [weak, weak_dial, target, addr](
                                                                         Result<std::shared_ptr<HostStream>> hop) {
      auto self = weak.lock();
      auto d = weak_dial.lock();
      if (!self || !d || d->done) {
        if (hop.ok()) (*hop)->reset();
        return;
      }
      if (!hop.ok()) return self->finish_dial(d, hop.status().context("relay"));
      d->relay_stream = *hop;
      relay::request_circuit(*hop, target, [weak, weak_dial, stream = *hop, target, addr](
                                               Result<std::optional<relay::RelayLimit>> limit) {
        auto self = weak.lock();
        auto d = weak_dial.lock();
        if (!self || !d || d->done) return stream->reset();
        if (!limit.ok()) return self->finish_dial(d, limit.status());
        if (self->closed_) return self->finish_dial(d, Status(StatusCode::kUnavailable, "host is closed"));
        auto conn = self->make_connection(make_stream_transport(stream), addr, ConnectionRole::kDialer, target, d);
        conn->start(self->opt_.dial_timeout);
      });
    });
  });
}

void HostImpl::reserve_relay(const Multiaddr& relay_addr, std::function<void(Result<relay::ReservationGrant>)> cb) {
  auto relay = relay_addr.peer_id();
  if (!relay || relay_addr.is_circuit()) {
    return post([cb, a = relay_addr.to_string()] { cb(invalid_argument("reserve: need /<host>/tcp/<port>/p2p/<relay>, got " + a)); });
  }
  std::weak_ptr<HostImpl> weak = weak_from_this();
  connect(relay_addr, [weak, cb, relay = *relay](Result<std::shared_ptr<HostConnection>> conn) {
    if (!conn.ok()) return cb(conn.status().context("relay"));
    (*conn)->open_stream({std::string(relay::kHopProtocolId)}, [weak, cb, relay](Result<std::shared_ptr<HostStream>> hop) {
      if (!hop.ok()) return cb(hop.status().context("relay"));
      relay::request_reservation(*hop, [weak, cb, relay](Result<relay::ReservationGrant> grant) {
        auto self = weak.lock();
        if (self && grant.ok()) {
          // Our own steady-clock expiry from the relay's Unix one (clocks may differ; the
          // relay enforces its own).
          const int64_t left = static_cast<int64_t>(grant->reservation.expire_unix_s) - unix_time_seconds();
          self->reserved_relays_[relay] = std::chrono::steady_clock::now() + std::chrono::seconds(std::max<int64_t>(left, 0));
        }
        cb(std::move(grant));
      });
    });
  });
}

// A relay opened a stop stream: accept from relays we reserved on, then run the upgrade as the
// listener, expecting the source the relay named.
void HostImpl::accept_relayed(std::shared_ptr<HostStream> stop) {
  const PeerId relay = stop->remote_peer();
  auto it = reserved_relays_.find(relay);
  const bool allowed = it != reserved_relays_.end() && it->second > std::chrono::steady_clock::now() && !closed_;
  std::weak_ptr<HostImpl> weak = weak_from_this();
  relay::answer_stop(stop, allowed, [weak, stop, relay](Result<relay::StopDecision> d) {
    auto self = weak.lock();
    if (!self || self->closed_) return stop->reset();
    if (!d.ok()) {
      NLOG_DEBUG("p2p: relayed connection via {} not accepted: {}", relay.to_string(), d.status().to_string());
      return;
    }
    if (self->connection_count() >= self->opt_.max_connections) return stop->reset();
    auto addr = Multiaddr::parse("/p2p/" + relay.to_string() + "/p2p-circuit/p2p/" + d->source->to_string());
    auto conn = self->make_connection(make_stream_transport(stop), addr.ok() ? std::optional<Multiaddr>(*addr) : std::nullopt,
                                      ConnectionRole::kListener, *d->source, nullptr);
    conn->start(self->opt_.handshake_timeout);
  });
}

// --- ping -------------------------------------------------------------------------------------

void HostImpl::ping(const PeerId& peer, std::function<void(Result<Duration>)> cb) {
  struct State {
    PingProbe probe;
    std::function<void(Result<Duration>)> cb;
    std::unique_ptr<asio::steady_timer> timer;
    std::shared_ptr<HostStream> stream;
    std::chrono::steady_clock::time_point start;
    bool done = false;
    void finish(Result<Duration> r) {
      if (done) return;
      done = true;
      timer->cancel();
      if (stream) {
        if (r.ok()) {
          stream->close_write();
        } else {
          stream->reset();
        }
      }
      auto f = std::move(cb);
      f(r);  // already on a posted path
    }
  };
  auto st = std::make_shared<State>();
  st->cb = std::move(cb);
  st->timer = std::make_unique<asio::steady_timer>(io_);
  st->timer->expires_after(opt_.ping_timeout);
  st->timer->async_wait([st](const asio::error_code& ec) {
    if (!ec) st->finish(Status(StatusCode::kTimeout, "ping timed out"));
  });
  new_stream_on(peer, {std::string(kPingProtocolId)}, [st](Result<std::shared_ptr<HostStream>> r) {
    if (st->done) {
      if (r.ok()) (*r)->reset();
      return;
    }
    if (!r.ok()) return st->finish(r.status());
    st->stream = *r;
    st->start = std::chrono::steady_clock::now();
    st->stream->write(Bytes(st->probe.payload().begin(), st->probe.payload().end()));
    auto step = std::make_shared<std::function<void(Result<Bytes>)>>();
    *step = [st, weak_step = std::weak_ptr(step)](Result<Bytes> got) {
      if (st->done) return;
      if (!got.ok()) return st->finish(got.status());
      if (got->empty()) return st->finish(Status(StatusCode::kProtocolError, "ping: stream ended before the echo"));
      Status s = st->probe.feed(*got);
      if (!s.ok()) return st->finish(s);
      if (st->probe.done()) return st->finish(Duration(std::chrono::steady_clock::now() - st->start));
      if (auto next = weak_step.lock()) st->stream->read_some([next](Result<Bytes> r2) { (*next)(std::move(r2)); });
    };
    st->stream->read_some([step](Result<Bytes> r2) { (*step)(std::move(r2)); });
  });
}

// --- shutdown ---------------------------------------------------------------------------------

void HostImpl::close() {
  if (closed_) return;
  closed_ = true;
  for (auto& a : acceptors_) {
    asio::error_code ec;
    a->close(ec);
  }
  auto dials = dials_;
  for (auto& d : dials) finish_dial(d, Status(StatusCode::kUnavailable, "host is closing"));
  std::vector<std::shared_ptr<HostConnection>> all;
  for (auto& [c, p] : pending_) all.push_back(p);
  for (auto& [peer, v] : conns_) all.insert(all.end(), v.begin(), v.end());
  for (auto& c : all) c->close(Status(StatusCode::kUnavailable, "host is closing"), true);
  pending_.clear();
  conns_.clear();
}

// --- the public handle ------------------------------------------------------------------------

Result<std::shared_ptr<Host>> Host::create(asio::io_context& io, Identity identity, HostOptions options) {
  NOLOCO_RETURN_IF_ERROR(options.validate());
  auto impl = std::make_shared<HostImpl>(io, std::move(identity), std::move(options));
  impl->install_builtin_handlers();
  auto host = std::shared_ptr<Host>(new Host(impl));
  if (impl->opt_.relay) impl->relay_service_ = relay::RelayService::start(io, host, *impl->opt_.relay);
  impl->start_nat_services();
  return host;
}

Host::~Host() { impl_->close(); }

const PeerId& Host::peer_id() const { return impl_->identity_.peer_id(); }
const Identity& Host::identity() const { return impl_->identity_; }
Result<Multiaddr> Host::listen(const Multiaddr& addr) { return impl_->listen(addr); }

std::vector<Multiaddr> Host::listen_addrs() const {
  std::vector<Multiaddr> out;
  for (const auto& a : impl_->listen_addrs_) out.push_back(a.with_peer_id(peer_id()));
  return out;
}

void Host::set_handler(const std::string& protocol, StreamHandler handler) {
  impl_->set_handler(protocol, std::move(handler));
}
void Host::remove_handler(const std::string& protocol) { impl_->remove_handler(protocol); }

void Host::connect(const Multiaddr& addr, std::function<void(Result<PeerId>)> cb) {
  impl_->connect(addr, [cb = std::move(cb)](Result<std::shared_ptr<HostConnection>> r) {
    if (!r.ok()) return cb(r.status());
    cb((*r)->remote_peer());
  });
}

void Host::new_stream(const Multiaddr& addr, std::vector<std::string> protocols, StreamCallback cb) {
  std::weak_ptr<HostImpl> weak = impl_;
  impl_->connect(addr, [weak, protocols = std::move(protocols), cb = std::move(cb)](
                           Result<std::shared_ptr<HostConnection>> r) mutable {
    if (!r.ok()) return cb(r.status());
    (*r)->open_stream(std::move(protocols), std::move(cb));
  });
}

void Host::new_stream(const PeerId& peer, std::vector<std::string> protocols, StreamCallback cb) {
  impl_->new_stream_on(peer, std::move(protocols), std::move(cb));
}

void Host::reserve_relay(const Multiaddr& relay, std::function<void(Result<relay::ReservationGrant>)> cb) {
  impl_->reserve_relay(relay, std::move(cb));
}
std::shared_ptr<relay::RelayService> Host::relay_service() const { return impl_->relay_service_; }

void Host::ping(const PeerId& peer, std::function<void(Result<Duration>)> cb) { impl_->ping(peer, std::move(cb)); }

std::optional<IdentifyInfo> Host::peer_info(const PeerId& peer) const {
  auto it = impl_->infos_.find(peer);
  if (it == impl_->infos_.end()) return std::nullopt;
  return it->second;
}

void Host::set_identify_listener(std::function<void(const PeerId&, const IdentifyInfo&)> fn) {
  impl_->identify_listener_ = std::move(fn);
}

bool Host::is_connected(const PeerId& peer) const { return impl_->best_connection(peer) != nullptr; }
std::optional<Multiaddr> Host::connected_addr(const PeerId& peer) const {
  auto c = impl_->best_connection(peer);
  if (!c) return std::nullopt;
  return c->remote_addr();
}
size_t Host::connection_count() const { return impl_->connection_count(); }
void Host::close() { impl_->close(); }

}  // namespace noloco::p2p
