#include "p2p/autonat.h"

#include <algorithm>

#include "p2p/dcutr.h"

namespace noloco::p2p::autonat {

Status ServerOptions::validate() const {
  if (max_dial_addrs == 0) return invalid_argument("autonat: max_dial_addrs must be positive");
  if (max_requests == 0 || max_requests_per_peer == 0) return invalid_argument("autonat: request limits must be positive");
  if (window <= Duration::zero() || dial_timeout <= Duration::zero()) {
    return invalid_argument("autonat: window and dial_timeout must be positive");
  }
  return Status::Ok();
}

Status ClientOptions::validate() const {
  if (min_votes == 0) return invalid_argument("autonat: min_votes must be positive");
  if (max_servers == 0) return invalid_argument("autonat: max_servers must be positive");
  return Status::Ok();
}

const char* reachability_name(Reachability r) {
  switch (r) {
    case Reachability::kPublic: return "public";
    case Reachability::kPrivate: return "private";
    case Reachability::kUnknown: break;
  }
  return "unknown";
}

bool Server::admit(const PeerId& peer, TimePoint now) {
  while (!recent_.empty() && now - recent_.front().first >= opt_.window) recent_.pop_front();
  if (recent_.size() >= opt_.max_requests) return false;
  const auto from_peer = std::count_if(recent_.begin(), recent_.end(), [&](const auto& r) { return r.second == peer; });
  if (static_cast<size_t>(from_peer) >= opt_.max_requests_per_peer) return false;
  recent_.emplace_back(now, peer);
  return true;
}

Server::Decision Server::on_request(const PeerId& peer, const std::optional<Multiaddr>& observed, ByteView body,
                                    TimePoint now) {
  Decision d;
  auto m = decode_message(body);
  if (!m.ok()) {
    d.reply = dial_response(ResponseStatus::kBadRequest, "undecodable: " + m.status().message());
    return d;
  }
  if (m->type != MessageType::kDial || !m->dial) {
    d.reply = dial_response(ResponseStatus::kBadRequest, "expected DIAL");
    return d;
  }
  if (m->dial->peer && *m->dial->peer != peer) {
    d.reply = dial_response(ResponseStatus::kBadRequest, "peer id is not the requester's");
    return d;
  }
  if (!observed || observed->is_circuit() || !observed->host()) {
    d.reply = dial_response(ResponseStatus::kDialRefused, "no dial back over a relayed connection");
    return d;
  }
  // Only addresses on the IP the request came from (spec, "dial back ... based on the IP
  // address the requesting node is observed as").
  for (const auto& a : dcutr::punchable(m->dial->addrs)) {
    if (a.host() != observed->host()) continue;
    d.dial.push_back(a);
    if (d.dial.size() == opt_.max_dial_addrs) break;
  }
  if (d.dial.empty()) {
    d.reply = dial_response(ResponseStatus::kDialRefused, "no address on the observed IP");
    return d;
  }
  if (!admit(peer, now)) {
    d.dial.clear();
    d.reply = dial_response(ResponseStatus::kDialRefused, "too many requests");
  }
  return d;
}

Message Server::on_dialed(const std::optional<Multiaddr>& reached) {
  if (reached) return dial_response(ResponseStatus::kOk, "", reached);
  return dial_response(ResponseStatus::kDialError, "dial back failed");
}

Bytes Client::request(const PeerId& self, const std::vector<Multiaddr>& addrs) {
  auto list = dcutr::punchable(addrs);
  if (list.size() > kMaxAutonatAddrs) list.resize(kMaxAutonatAddrs);
  return encode_message(dial_request(self, std::move(list)));
}

Status Client::on_answer(const PeerId& server, const Result<Bytes>& body) {
  if (!body.ok()) return body.status();
  auto m = decode_message(*body);
  if (!m.ok() || m->type != MessageType::kDialResponse || !m->response || !m->response->status) {
    return protocol_error("autonat: bad answer");
  }
  const ResponseStatus s = *m->response->status;
  if (s == ResponseStatus::kOk) {
    votes_[server] = Vote{true, m->response->addr};
    return Status::Ok();
  }
  if (s == ResponseStatus::kDialError) {
    votes_[server] = Vote{false, std::nullopt};
    return Status::Ok();
  }
  return Status(StatusCode::kUnavailable,
                std::string("autonat: server answered ") + response_status_name(s) + ": " + m->response->text);
}

ReachabilityStatus Client::status() const {
  ReachabilityStatus st;
  std::map<Multiaddr, size_t, decltype([](const Multiaddr& a, const Multiaddr& b) {
             return a.to_bytes() < b.to_bytes();
           })>
      addrs;
  for (const auto& [peer, v] : votes_) {
    if (v.reachable) {
      ++st.public_votes;
      if (v.addr) ++addrs[*v.addr];
    } else {
      ++st.private_votes;
    }
  }
  if (st.public_votes >= opt_.min_votes && st.public_votes > st.private_votes) {
    st.reachability = Reachability::kPublic;
    st.confidence = st.public_votes;
    size_t best = 0;
    for (const auto& [a, n] : addrs) {
      if (n > best) best = n, st.public_addr = a;
    }
  } else if (st.private_votes >= opt_.min_votes && st.private_votes > st.public_votes) {
    st.reachability = Reachability::kPrivate;
    st.confidence = st.private_votes;
  }
  return st;
}

}  // namespace noloco::p2p::autonat
