// The host's side of AutoNAT and hole punching: fresh direct dials (optionally from the listen
// port), the addresses peers observe us at, and the Host methods of both features. The
// protocol logic is in autonat*.*, dcutr*.* and hole_punch_service.*.
#include <asio/socket_base.hpp>

#include "p2p/autonat_service.h"
#include "p2p/hole_punch_service.h"
#include "p2p/host_impl.h"

namespace noloco::p2p {

void HostImpl::start_nat_services() {
  auto self = shared_from_this();
  if (opt_.autonat) {
    autonat_ = autonat::AutonatService::start(io_, self, opt_.autonat->server, opt_.autonat->client);
  }
  if (opt_.hole_punch) hole_punch_ = holepunch::HolePunchService::start(io_, self);
}

void HostImpl::connect_direct(const tcp::endpoint& to, std::optional<tcp::endpoint> local, ConnectionRole role,
                              PeerId expected, std::function<void(Result<std::shared_ptr<HostConnection>>)> cb) {
  if (closed_) return post([cb] { cb(Status(StatusCode::kUnavailable, "host is closed")); });
  if (expected == identity_.peer_id()) return post([cb] { cb(invalid_argument("refusing to dial ourselves")); });
  // No PeerId on the Dial: other connect() calls must not join this one.
  auto dial = new_dial(std::nullopt, std::move(cb));
  if (!dial) return;
  dial->socket = std::make_shared<tcp::socket>(io_);
  auto sock = dial->socket;
  asio::error_code ec;
  sock->open(to.protocol(), ec);
  if (!ec && local) {
    sock->set_option(tcp::socket::reuse_address(true), ec);
    if (!ec) sock->set_option(asio::detail::socket_option::boolean<SOL_SOCKET, SO_REUSEPORT>(true), ec);
    if (!ec) sock->bind(*local, ec);
  }
  if (ec) return finish_dial(dial, Status(StatusCode::kUnavailable, "direct dial: " + ec.message()));
  std::weak_ptr<HostImpl> weak = weak_from_this();
  std::weak_ptr<Dial> weak_dial = dial;
  const bool punched = local.has_value();  // only a hole punch dials from the listen port
  sock->async_connect(to, [weak, weak_dial, sock, role, expected, punched](const asio::error_code& ec) {
    auto self = weak.lock();
    auto d = weak_dial.lock();
    if (!self || !d || d->done) return;
    if (ec) return self->finish_dial(d, Status(StatusCode::kUnavailable, "unreachable: " + ec.message()));
    if (self->closed_) return self->finish_dial(d, Status(StatusCode::kUnavailable, "host is closed"));
    auto conn = self->make_tcp_connection(std::move(*sock), role, expected, d);
    conn->hole_punched = punched;
    d->socket.reset();
    conn->start(self->opt_.dial_timeout);
  });
}

std::vector<Multiaddr> HostImpl::observed_addrs() const {
  std::vector<Multiaddr> out;
  for (const auto& [peer, list] : conns_) {
    for (const auto& c : list) {
      if (c->remote_addr() && c->remote_addr()->is_circuit()) continue;
      if (c->identify_info && c->identify_info->observed_addr) out.push_back(*c->identify_info->observed_addr);
    }
  }
  return out;
}

std::optional<tcp::endpoint> HostImpl::listen_endpoint_for(const asio::ip::address& ip) const {
  for (const auto& a : acceptors_) {
    asio::error_code ec;
    auto ep = a->local_endpoint(ec);
    if (!ec && ep.address().is_v6() == ip.is_v6()) return ep;
  }
  return std::nullopt;
}

void Host::check_reachability(std::function<void(autonat::ReachabilityStatus)> cb) {
  if (!impl_->autonat_) return impl_->post([cb] { cb(autonat::ReachabilityStatus{}); });
  impl_->autonat_->check(std::move(cb));
}

autonat::ReachabilityStatus Host::reachability() const {
  return impl_->autonat_ ? impl_->autonat_->status() : autonat::ReachabilityStatus{};
}

Host::HolePunchStats Host::hole_punch_stats() const {
  return impl_->hole_punch_ ? impl_->hole_punch_->stats() : HolePunchStats{};
}

bool HostStream::relayed() const {
  auto c = conn_.lock();
  return c && c->remote_addr() && c->remote_addr()->is_circuit();
}

bool Host::is_directly_connected(const PeerId& peer) const {
  auto c = impl_->best_connection(peer);
  return c && !(c->remote_addr() && c->remote_addr()->is_circuit());
}

Host::ConnectionPath Host::connection_path(const PeerId& peer) const {
  auto c = impl_->best_connection(peer);
  if (!c) return ConnectionPath::kNone;
  if (c->remote_addr() && c->remote_addr()->is_circuit()) return ConnectionPath::kRelayed;
  return c->hole_punched ? ConnectionPath::kHolePunched : ConnectionPath::kDirect;
}

std::vector<Multiaddr> Host::connection_addrs(const PeerId& peer) const {
  std::vector<Multiaddr> out;
  auto it = impl_->conns_.find(peer);
  if (it == impl_->conns_.end()) return out;
  for (const auto& c : it->second) {
    if (c->remote_addr()) out.push_back(*c->remote_addr());
  }
  return out;
}

}  // namespace noloco::p2p
