// Host::connect_from_listen_port (host.h): the dial `noloco doctor` uses to learn how a NAT maps
// this machine's listen port (p2p/probe_tool.h).
#include "p2p/host_impl.h"

namespace noloco::p2p {

void Host::connect_from_listen_port(const Multiaddr& addr, std::function<void(Result<PeerId>)> cb) {
  const auto id = addr.peer_id();
  const auto ip_text = addr.host();
  const auto port = addr.tcp_port();
  if (!id || !ip_text || !port || addr.host_is_dns() || addr.is_circuit())
    return impl_->post([cb, addr] { cb(invalid_argument("not /ipX/<ip>/tcp/<port>/p2p/<id>: " + addr.to_string())); });
  asio::error_code ec;
  const auto ip = asio::ip::make_address(*ip_text, ec);
  if (ec) return impl_->post([cb, addr] { cb(invalid_argument("bad IP in " + addr.to_string())); });
  const auto local = impl_->listen_endpoint_for(ip);
  if (!local)
    return impl_->post([cb] { cb(Status(StatusCode::kUnavailable, "not listening on an address of that family")); });
  impl_->connect_direct(tcp::endpoint(ip, *port), *local, ConnectionRole::kDialer, *id,
                        [cb](Result<std::shared_ptr<HostConnection>> r) {
                          if (!r.ok()) return cb(r.status());
                          cb((*r)->remote_peer());
                        });
}

}  // namespace noloco::p2p
