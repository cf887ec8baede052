// Invite and announce addresses (join_addrs.h).
#include "cli/join_addrs.h"

namespace noloco::cli {
namespace {

constexpr const char* kAny = "0.0.0.0";

}  // namespace

Result<std::vector<p2p::Multiaddr>> invite_bootstrap(const std::string& listen, const std::vector<std::string>& announce,
                                                     const std::vector<std::string>& local_ipv4s,
                                                     const p2p::PeerId& self) {
  std::vector<p2p::Multiaddr> out;
  for (const auto& text : announce) {
    auto a = p2p::Multiaddr::parse(text);
    if (!a.ok()) return a.status().context("--announce " + text);
    if (!a->host() || !a->tcp_port() || *a->tcp_port() == 0)
      return invalid_argument("--announce " + text + ": give a host and a non-zero TCP port");
    out.push_back(a->without_peer_id().with_peer_id(self));
  }
  if (!out.empty()) return out;
  auto l = p2p::Multiaddr::parse(listen);
  if (!l.ok()) return l.status().context("--listen " + listen);
  if (!l->host() || !l->tcp_port()) return invalid_argument("--listen " + listen + ": give an IP and a TCP port");
  if (*l->tcp_port() == 0)
    return invalid_argument("--listen " + listen + ": an invite needs a fixed port (e.g. /ip4/0.0.0.0/tcp/4001)");
  if (*l->host() != kAny) return std::vector<p2p::Multiaddr>{l->without_peer_id().with_peer_id(self)};
  for (const auto& ip : local_ipv4s) {
    if (out.size() == kMaxInviteInterfaces) break;
    NOLOCO_ASSIGN_OR_RETURN(p2p::Multiaddr a, p2p::Multiaddr::from_ip_tcp(ip, *l->tcp_port()));
    out.push_back(a.with_peer_id(self));
  }
  if (out.empty())
    return invalid_argument("this machine has no network address besides loopback: give --announce /ip4/<IP>/tcp/<port>");
  return out;
}

Result<std::string> join_announce(const std::string& listen, const std::string& announce,
                                  const std::vector<p2p::Multiaddr>& bootstrap, const RouteFn& route_to) {
  if (!announce.empty()) {
    auto a = p2p::Multiaddr::parse(announce);
    if (!a.ok()) return a.status().context("--announce " + announce);
    return announce;
  }
  auto l = p2p::Multiaddr::parse(listen);
  if (!l.ok()) return l.status().context("--listen " + listen);
  if (!l->host() || !l->tcp_port()) return invalid_argument("--listen " + listen + ": give an IP and a TCP port");
  if (*l->host() != kAny) return std::string();
  const std::string hint = "; give --announce /ip4/<this machine's IP>/tcp/<port>";
  if (*l->tcp_port() == 0)
    return invalid_argument("--listen " + listen + ": on 0.0.0.0 with port 0 peers cannot be told where to dial" + hint);
  for (const auto& b : bootstrap) {
    if (b.host_is_dns() || !b.host() || b.host()->find(':') != std::string::npos) continue;
    auto ip = route_to(*b.host());
    if (!ip.ok()) continue;
    NOLOCO_ASSIGN_OR_RETURN(p2p::Multiaddr a, p2p::Multiaddr::from_ip_tcp(*ip, *l->tcp_port()));
    return a.to_string();
  }
  return invalid_argument("cannot tell which address of this machine peers should dial" + hint);
}

}  // namespace noloco::cli
