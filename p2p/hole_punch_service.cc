#include "p2p/hole_punch_service.h"

#include <asio/steady_timer.hpp>

#include "p2p/framing.h"
#include "p2p/host_impl.h"

namespace noloco::p2p::holepunch {
namespace {

bool is_relayed(const HostConnection& c) { return c.remote_addr() && c.remote_addr()->is_circuit(); }

// Resets `s` unless cancelled first: a peer that stops answering cannot hold the exchange.
std::shared_ptr<asio::steady_timer> guard(asio::io_context& io, const std::shared_ptr<HostStream>& s, Duration d) {
  auto t = std::make_shared<asio::steady_timer>(io);
  t->expires_after(d);
  t->async_wait([weak = std::weak_ptr<HostStream>(s)](const asio::error_code& ec) {
    if (ec) return;
    if (auto st = weak.lock()) st->reset();
  });
  return t;
}

std::optional<tcp::endpoint> endpoint_of(const Multiaddr& a) {
  auto host = a.host();
  auto port = a.tcp_port();
  if (!host || !port) return std::nullopt;
  asio::error_code ec;
  auto ip = asio::ip::make_address(*host, ec);
  if (ec) return std::nullopt;
  return tcp::endpoint(ip, *port);
}

}  // namespace

std::shared_ptr<HolePunchService> HolePunchService::start(asio::io_context& io, const std::shared_ptr<HostImpl>& host) {
  auto svc = std::make_shared<HolePunchService>(io, host);
  std::weak_ptr<HolePunchService> weak = svc;
  host->set_handler(std::string(dcutr::kDcutrProtocolId), [weak](std::shared_ptr<HostStream> s) {
    auto self = weak.lock();
    // Only on a relayed connection, where the exchange has a purpose: on a direct one a peer
    // could use us to dial addresses of its choosing.
    if (!self || !s->relayed()) return s->reset();
    ++self->stats_.attempts;
    self->respond(std::move(s), std::make_shared<dcutr::Responder>(self->own_addrs()));
  });
  host->upgrade_observers_.push_back([weak](const std::shared_ptr<HostConnection>& c) {
    if (auto self = weak.lock()) self->on_upgraded(c);
  });
  return svc;
}

std::vector<Multiaddr> HolePunchService::own_addrs() const {
  auto host = host_.lock();
  if (!host) return {};
  return dcutr::predicted_addrs(host->observed_addrs(), host->listen_addrs_);
}

void HolePunchService::after(Duration d, std::function<void()> fn) {
  auto t = std::make_shared<asio::steady_timer>(io_);
  t->expires_after(d);
  t->async_wait([t, fn = std::move(fn)](const asio::error_code& ec) {
    if (!ec) fn();
  });
}

// B: a relayed connection we accepted (we are its listener) starts the exchange, unless a
// direct connection to the peer exists already.
void HolePunchService::on_upgraded(const std::shared_ptr<HostConnection>& conn) {
  if (!is_relayed(*conn)) {  // a direct connection ends a punch to that peer in progress
    if (auto it = punching_.find(conn->remote_peer()); it != punching_.end()) {
      auto race = it->second;
      finish_punch(conn->remote_peer(), race, true);
    }
    return;
  }
  if (conn->role() != ConnectionRole::kListener) return;
  auto host = host_.lock();
  if (!host) return;
  const PeerId peer = conn->remote_peer();
  std::weak_ptr<HolePunchService> weak = weak_from_this();
  host->post([weak, relayed = std::weak_ptr<HostConnection>(conn), peer] {
    if (auto self = weak.lock()) self->initiate(relayed, peer, 1);
  });
}

void HolePunchService::initiate(std::weak_ptr<HostConnection> relayed, PeerId peer, int attempt) {
  auto host = host_.lock();
  auto conn = relayed.lock();
  if (!host || host->closed_ || !conn || conn->closed()) return;
  auto best = host->best_connection(peer);
  if (best && !is_relayed(*best)) return;  // already direct
  ++stats_.attempts;
  std::weak_ptr<HolePunchService> weak = weak_from_this();
  conn->open_stream({std::string(dcutr::kDcutrProtocolId)},
                    [weak, relayed, peer, attempt](Result<std::shared_ptr<HostStream>> s) {
                      auto self = weak.lock();
                      if (!self) return;
                      if (!s.ok()) return self->retry_or_fail(relayed, peer, attempt, s.status());
                      self->on_initiator_stream(*s, relayed, attempt);
                    });
}

void HolePunchService::on_initiator_stream(std::shared_ptr<HostStream> s, std::weak_ptr<HostConnection> relayed,
                                           int attempt) {
  auto core = std::make_shared<dcutr::Initiator>(own_addrs());
  const PeerId peer = s->remote_peer();
  s->write(encode_length_prefixed(core->start(std::chrono::steady_clock::now())));
  auto timer = guard(io_, s, kStreamTimeout);
  std::weak_ptr<HolePunchService> weak = weak_from_this();
  s->read_message(
      [weak, s, core, relayed, peer, attempt, timer](Result<Bytes> body) {
        timer->cancel();
        auto self = weak.lock();
        if (!self) return s->reset();
        if (!body.ok()) return self->retry_or_fail(relayed, peer, attempt, body.status());
        auto plan = core->on_reply(*body, std::chrono::steady_clock::now());
        if (!plan.ok()) {
          s->reset();
          return self->retry_or_fail(relayed, peer, attempt, plan.status());
        }
        s->write(encode_length_prefixed(plan->sync));
        s->close_write();
        NLOG_DEBUG("p2p: dcutr with {}: dialling {} addresses in {} us", peer.to_string(), plan->dial.size(),
                   std::chrono::duration_cast<std::chrono::microseconds>(plan->dial_after).count());
        self->after(plan->dial_after, [weak, relayed, peer, attempt, dial = plan->dial] {
          auto self = weak.lock();
          if (!self) return;
          self->punch(peer, dial, ConnectionRole::kListener, [weak, relayed, peer, attempt](bool ok) {
            auto self = weak.lock();
            if (!self) return;
            if (ok) {
              ++self->stats_.succeeded;
              return;
            }
            self->retry_or_fail(relayed, peer, attempt, Status(StatusCode::kUnavailable, "every dial failed"));
          });
        });
      },
      dcutr::kMaxDcutrMessage);
}

void HolePunchService::retry_or_fail(std::weak_ptr<HostConnection> relayed, PeerId peer, int attempt,
                                     const Status& why) {
  NLOG_DEBUG("p2p: dcutr attempt {} with {} failed: {}", attempt, peer.to_string(), why.to_string());
  ++stats_.failed;
  if (attempt >= kMaxAttempts) {
    NLOG_INFO("p2p: hole punch to {} failed after {} attempts; staying relayed", peer.to_string(), attempt);
    return;
  }
  std::weak_ptr<HolePunchService> weak = weak_from_this();
  after(kRetryDelay, [weak, relayed, peer, attempt] {
    if (auto self = weak.lock()) self->initiate(relayed, peer, attempt + 1);
  });
}

// A: answer CONNECT with ours; on SYNC dial at once, as the dialer of the new connection.
void HolePunchService::respond(std::shared_ptr<HostStream> s, std::shared_ptr<dcutr::Responder> core) {
  auto timer = guard(io_, s, kStreamTimeout);
  std::weak_ptr<HolePunchService> weak = weak_from_this();
  s->read_message(
      [weak, s, core, timer](Result<Bytes> body) {
        timer->cancel();
        auto self = weak.lock();
        if (!self) return s->reset();
        auto step = body.ok() ? core->on_message(*body) : Result<dcutr::Responder::Step>(body.status());
        if (!step.ok()) {
          s->reset();
          ++self->stats_.failed;
          NLOG_DEBUG("p2p: dcutr from {} ended: {}", s->remote_peer().to_string(), step.status().to_string());
          return;
        }
        if (step->reply) s->write(encode_length_prefixed(*step->reply));
        if (!step->done) return self->respond(s, core);
        s->close_write();
        self->punch(s->remote_peer(), step->dial, ConnectionRole::kDialer, [weak](bool ok) {
          if (auto self = weak.lock()) ++(ok ? self->stats_.succeeded : self->stats_.failed);
        });
      },
      dcutr::kMaxDcutrMessage);
}

void HolePunchService::punch(const PeerId& peer, const std::vector<Multiaddr>& addrs, ConnectionRole role,
                             std::function<void(bool)> done) {
  auto host = host_.lock();
  if (!host) return done(false);
  auto race = std::make_shared<PunchRace>();
  race->done = std::move(done);
  std::weak_ptr<HolePunchService> weak = weak_from_this();
  if (auto best = host->best_connection(peer); best && !is_relayed(*best)) {  // the peer's dial won already
    return host->post([weak, race, peer] {
      if (auto self = weak.lock()) self->finish_punch(peer, race, true);
      else race->done(true);
    });
  }
  std::vector<std::pair<tcp::endpoint, tcp::endpoint>> plan;  // (to, from)
  for (const auto& a : addrs) {
    auto to = endpoint_of(a);
    if (!to) continue;
    auto from = host->listen_endpoint_for(to->address());
    if (from) plan.emplace_back(*to, *from);
  }
  if (plan.empty()) return host->post([race] { race->done(false); });
  race->left = plan.size();
  punching_[peer] = race;
  for (const auto& [to, from] : plan) {
    host->connect_direct(to, from, role, peer, [race, weak, peer](Result<std::shared_ptr<HostConnection>> r) {
      --race->left;
      auto self = weak.lock();
      const bool direct = r.ok() && *r && !is_relayed(**r);
      if (direct && race->won) {
        (*r)->close(Status(StatusCode::kUnavailable, "duplicate hole-punched connection"), true);
      } else if (direct) {
        race->won = true;
        if (self) self->finish_punch(peer, race, true);
      }
      if (race->left != 0 || race->won || race->finished) return;
      // Every dial of ours failed, but the peer's may come in: with a public peer that does not
      // dial from its listen port (js-libp2p), B's dial meets A's listener, where both wait as
      // responders, while A's dial to B's listener is the one that works. It can still be in
      // its handshake when ours give up (seen in the interop test under load), so it is waited for.
      if (!self) {
        race->finished = true;
        return race->done(false);
      }
      self->await_direct(peer, kPeerDialGrace, [weak, peer, race](bool ok) {
        if (auto self = weak.lock()) self->finish_punch(peer, race, ok);
        else if (!race->finished) race->finished = true, race->done(ok);
      });
    });
  }
}

void HolePunchService::finish_punch(const PeerId& peer, const std::shared_ptr<PunchRace>& race, bool ok) {
  if (race->finished) return;
  race->finished = true;
  if (auto it = punching_.find(peer); it != punching_.end() && it->second == race) punching_.erase(it);
  race->done(ok);
}

void HolePunchService::await_direct(const PeerId& peer, Duration left, std::function<void(bool)> done) {
  auto host = host_.lock();
  auto best = host ? host->best_connection(peer) : nullptr;
  if (best && !is_relayed(*best)) return done(true);
  if (!host || host->closed_ || left <= Duration::zero()) return done(false);
  std::weak_ptr<HolePunchService> weak = weak_from_this();
  after(kPeerDialPoll, [weak, peer, left, done = std::move(done)] {
    if (auto self = weak.lock()) self->await_direct(peer, left - kPeerDialPoll, done);
    else done(false);
  });
}

}  // namespace noloco::p2p::holepunch
