#include "p2p/dcutr.h"

#include <algorithm>

namespace noloco::p2p::dcutr {
namespace {

bool is_unspecified(const std::string& ip) { return ip == "0.0.0.0" || ip == "::"; }

// /ip4|ip6/<ip>/tcp/<port> and nothing else of interest (a /p2p suffix is dropped).
std::optional<Multiaddr> plain_tcp(const Multiaddr& a) {
  if (a.is_circuit() || a.host_is_dns()) return std::nullopt;
  const auto& c = a.components();
  if (c.size() < 2) return std::nullopt;
  if (c[0].protocol != MultiaddrProtocol::kIp4 && c[0].protocol != MultiaddrProtocol::kIp6) return std::nullopt;
  if (c[1].protocol != MultiaddrProtocol::kTcp) return std::nullopt;
  for (size_t i = 2; i < c.size(); ++i) {
    if (c[i].protocol != MultiaddrProtocol::kP2p) return std::nullopt;
  }
  auto host = a.host();
  auto port = a.tcp_port();
  if (!host || !port || *port == 0 || is_unspecified(*host)) return std::nullopt;
  auto m = Multiaddr::from_ip_tcp(*host, *port);
  if (!m.ok()) return std::nullopt;
  return *m;
}

}  // namespace

std::vector<Multiaddr> punchable(const std::vector<Multiaddr>& addrs) {
  std::vector<Multiaddr> out;
  for (const auto& a : addrs) {
    auto p = plain_tcp(a);
    if (!p || std::find(out.begin(), out.end(), *p) != out.end()) continue;
    out.push_back(std::move(*p));
    if (out.size() == kMaxDcutrAddrs) break;
  }
  return out;
}

std::vector<Multiaddr> predicted_addrs(const std::vector<Multiaddr>& observed, const std::vector<Multiaddr>& listen) {
  std::vector<Multiaddr> all;
  for (const auto& o : observed) {
    auto p = plain_tcp(o);
    if (!p) continue;
    for (const auto& l : listen) {
      auto lp = l.tcp_port();
      if (!lp || *lp == 0) continue;
      auto m = Multiaddr::from_ip_tcp(*p->host(), *lp);
      if (m.ok()) all.push_back(std::move(*m));
    }
    all.push_back(*p);
  }
  return punchable(all);
}

Bytes Initiator::start(TimePoint now) {
  state_ = State::kSent;
  sent_at_ = now;
  return encode_hole_punch(HolePunch{HolePunchType::kConnect, own_, 0});
}

Result<Initiator::Plan> Initiator::on_reply(ByteView body, TimePoint now) {
  if (state_ != State::kSent) return protocol_error("dcutr: unexpected reply");
  state_ = State::kDone;
  NOLOCO_ASSIGN_OR_RETURN(HolePunch m, decode_hole_punch(body));
  if (m.type != HolePunchType::kConnect) return protocol_error("dcutr: expected CONNECT, got SYNC");
  Plan plan;
  plan.dial = punchable(m.addrs);
  if (plan.dial.empty()) return Status(StatusCode::kUnavailable, "dcutr: the peer sent no address to dial");
  plan.sync = encode_hole_punch(HolePunch{HolePunchType::kSync, {}, 0});
  const Duration rtt = std::max(Duration::zero(), Duration(now - sent_at_));
  plan.dial_after = rtt / 2;
  return plan;
}

Result<Responder::Step> Responder::on_message(ByteView body) {
  NOLOCO_ASSIGN_OR_RETURN(HolePunch m, decode_hole_punch(body));
  Step step;
  switch (state_) {
    case State::kWaitConnect:
      if (m.type != HolePunchType::kConnect) return protocol_error("dcutr: expected CONNECT first");
      peer_ = punchable(m.addrs);
      step.reply = encode_hole_punch(HolePunch{HolePunchType::kConnect, own_, 0});
      state_ = State::kWaitSync;
      return step;
    case State::kWaitSync:
      if (m.type != HolePunchType::kSync) return protocol_error("dcutr: expected SYNC");
      step.dial = peer_;
      step.done = true;
      state_ = State::kDone;
      return step;
    case State::kDone:
      break;
  }
  return protocol_error("dcutr: message after SYNC");
}

}  // namespace noloco::p2p::dcutr
