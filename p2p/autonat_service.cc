#include "p2p/autonat_service.h"

#include <asio/steady_timer.hpp>

#include "p2p/dcutr.h"
#include "p2p/framing.h"
#include "p2p/host_impl.h"

namespace noloco::p2p::autonat {

std::shared_ptr<AutonatService> AutonatService::start(asio::io_context& io, const std::shared_ptr<HostImpl>& host,
                                                      ServerOptions server, ClientOptions client) {
  auto svc = std::make_shared<AutonatService>(io, host, server, client);
  std::weak_ptr<AutonatService> weak = svc;
  host->set_handler(std::string(kAutonatProtocolId), [weak](std::shared_ptr<HostStream> s) {
    if (auto self = weak.lock()) return self->serve(std::move(s));
    s->reset();
  });
  return svc;
}

void AutonatService::serve(std::shared_ptr<HostStream> s) {
  std::weak_ptr<AutonatService> weak = weak_from_this();
  s->read_message(
      [weak, s](Result<Bytes> body) {
        auto self = weak.lock();
        if (!self || !body.ok()) return s->reset();
        auto conn = s->connection();
        std::optional<Multiaddr> observed = conn ? conn->remote_addr() : std::nullopt;
        auto d = self->server_.on_request(s->remote_peer(), observed, *body, std::chrono::steady_clock::now());
        if (d.reply) {
          s->write(encode_length_prefixed(encode_message(*d.reply)));
          return s->close_write();
        }
        self->dial_back(s->remote_peer(), std::move(d.dial), 0, [s](std::optional<Multiaddr> reached) {
          s->write(encode_length_prefixed(encode_message(Server::on_dialed(reached))));
          s->close_write();
        });
      },
      kMaxAutonatMessage);
}

void AutonatService::dial_back(PeerId peer, std::vector<Multiaddr> addrs, size_t next,
                               std::function<void(std::optional<Multiaddr>)> cb) {
  auto host = host_.lock();
  if (!host || next >= addrs.size()) return cb(std::nullopt);
  asio::error_code ec;
  auto ip = asio::ip::make_address(addrs[next].host().value_or(""), ec);
  if (ec) return dial_back(std::move(peer), std::move(addrs), next + 1, std::move(cb));
  tcp::endpoint to(ip, *addrs[next].tcp_port());
  std::weak_ptr<AutonatService> weak = weak_from_this();
  host->connect_direct(to, std::nullopt, ConnectionRole::kDialer, peer,
                       [weak, peer, addrs, next, cb](Result<std::shared_ptr<HostConnection>> r) mutable {
                         auto self = weak.lock();
                         if (!self) return;
                         const bool direct = r.ok() && *r && !((*r)->remote_addr() && (*r)->remote_addr()->is_circuit());
                         if (direct) {
                           // The dial back proved the address; the connection has no other use.
                           (*r)->close(Status(StatusCode::kUnavailable, "autonat dial back done"), true);
                           return cb(addrs[next]);
                         }
                         self->dial_back(std::move(peer), std::move(addrs), next + 1, std::move(cb));
                       });
}

void AutonatService::check(std::function<void(ReachabilityStatus)> cb) {
  auto host = host_.lock();
  if (!host) return cb(client_.status());
  // Servers: peers on a direct connection that announced the protocol (a request over a relay
  // would be refused).
  std::vector<std::shared_ptr<HostConnection>> servers;
  for (const auto& [peer, conns] : host->conns_) {
    auto info = host->infos_.find(peer);
    if (info == host->infos_.end()) continue;
    const auto& protos = info->second.protocols;
    if (std::find(protos.begin(), protos.end(), kAutonatProtocolId) == protos.end()) continue;
    auto best = host->best_connection(peer);
    if (!best || (best->remote_addr() && best->remote_addr()->is_circuit())) continue;
    servers.push_back(best);
    if (servers.size() == client_options_.max_servers) break;
  }
  auto addrs = host->listen_addrs_;
  for (const auto& a : dcutr::predicted_addrs(host->observed_addrs(), host->listen_addrs_)) addrs.push_back(a);
  Bytes request = Client::request(host->identity_.peer_id(), addrs);
  auto left = std::make_shared<size_t>(servers.size());
  std::weak_ptr<AutonatService> weak = weak_from_this();
  auto done = [weak, left, cb] {
    if (--*left != 0) return;
    if (auto self = weak.lock()) cb(self->client_.status());
  };
  if (servers.empty()) return host->post([this_status = client_.status(), cb] { cb(this_status); });
  for (const auto& conn : servers) ask(conn, request, done);
}

void AutonatService::ask(const std::shared_ptr<HostConnection>& conn, Bytes request, std::function<void()> done) {
  const PeerId server = conn->remote_peer();
  std::weak_ptr<AutonatService> weak = weak_from_this();
  // The server dials every address in turn, each bounded by its dial timeout.
  auto timer = std::make_shared<asio::steady_timer>(io_);
  conn->open_stream({std::string(kAutonatProtocolId)}, [weak, server, request, done, timer](
                                                            Result<std::shared_ptr<HostStream>> s) {
    auto self = weak.lock();
    if (!self) return;
    if (!s.ok()) {
      (void)self->client_.on_answer(server, s.status());
      return done();
    }
    auto stream = *s;
    timer->expires_after(std::chrono::seconds(30));
    timer->async_wait([ws = std::weak_ptr<HostStream>(stream)](const asio::error_code& ec) {
      if (ec) return;
      if (auto st = ws.lock()) st->reset();
    });
    stream->write(encode_length_prefixed(request));
    stream->close_write();
    stream->read_message(
        [weak, server, done, timer, stream](Result<Bytes> body) {
          timer->cancel();
          auto self = weak.lock();
          if (!self) return;
          Status st = self->client_.on_answer(server, body);
          if (!st.ok()) NLOG_DEBUG("p2p: autonat with {}: {}", server.to_string(), st.to_string());
          done();
        },
        kMaxAutonatMessage);
  });
}

}  // namespace noloco::p2p::autonat
