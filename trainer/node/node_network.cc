// NodeNetwork: the Asio adapter that drives the node's protocols (node_network.h). Protocol
// rules and byte layouts live in the sans-IO cores (p2p/membership.h, exchange_wire.h,
// state_wire.h, run_manifest.h); this file only moves bytes, keeps time and routes results.
#include "trainer/node/node_network.h"

#include <asio/executor_work_guard.hpp>
#include <asio/io_context.hpp>
#include <asio/post.hpp>
#include <asio/steady_timer.hpp>

#include <algorithm>
#include <chrono>
#include <future>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <thread>
#include <utility>

#include "common/hash.h"
#include "common/log.h"
#include "p2p/framing.h"
#include "p2p/host.h"
#include "p2p/local_addrs.h"
#include "p2p/relay_service.h"
#include "p2p/time_service.h"
#include "trainer/node/dial_order.h"
#include "trainer/node/peer_paths.h"
#include "trainer/node/allreduce_wire.h"
#include "trainer/node/run_manifest.h"
#include "trainer/node/state_wire.h"

namespace noloco::node {
namespace {

using Clk = std::chrono::steady_clock;

Status timeout_error(const std::string& what) { return Status(StatusCode::kTimeout, what); }
Status unavailable(const std::string& what) { return Status(StatusCode::kUnavailable, what); }

bool is_circuit_text(const std::string& addr) { return addr.find("/p2p-circuit") != std::string::npos; }

// The IPs a node listens and announces on (a 0.0.0.0 listener: every interface's).
std::vector<std::string> own_ips_of(const p2p::Multiaddr& bound, const p2p::Multiaddr& announced) {
  std::vector<std::string> ips;
  for (const auto* a : {&bound, &announced}) {
    auto h = a->host();
    if (!h) continue;
    if (*h == "0.0.0.0") {
      for (auto& ip : p2p::local_ipv4_addresses()) ips.push_back(ip);
    } else {
      ips.push_back(*h);
    }
  }
  return ips;
}

}  // namespace

p2p::relay::RelayOptions node_relay_options() {
  p2p::relay::RelayOptions r;
  // One circuit carries a NATed node's exchanges and state syncs until either limit; the circuit
  // is then reset and the next stream dials a fresh one (a failed exchange try, never a hang).
  r.circuit_duration = std::chrono::hours(1);
  r.circuit_data_bytes = 4ull << 30;  // per direction: several gpt-125m fp32 exchanges
  return r;
}

namespace {

// Reads a whole exchange payload from a stream into a PayloadReader.
// on_header (optional) runs once, as soon as the header frame is accepted, before the tensors.
// on_progress (optional) runs at every chunk received.
void read_payload(std::shared_ptr<p2p::HostStream> stream, std::shared_ptr<PayloadReader> reader,
                  std::function<void(Result<Payload>)> done, std::function<void()> on_header = {},
                  std::function<void()> on_progress = {}) {
  stream->read_some([stream, reader, done, on_header, on_progress](Result<Bytes> chunk) mutable {
    if (!chunk.ok()) return done(chunk.status());
    if (on_progress) on_progress();
    if (chunk->empty()) {
      if (Status st = reader->finish(); !st.ok()) return done(st);
      return done(reader->take());
    }
    if (Status st = reader->feed(*chunk); !st.ok()) {
      stream->reset();
      return done(st);
    }
    if (on_header && reader->header_accepted()) std::exchange(on_header, {})();
    if (reader->done()) return done(reader->take());
    read_payload(stream, reader, done, std::move(on_header), std::move(on_progress));
  });
}

// The idle deadline of an inbound exchange stream: it runs while we read the caller's payload or
// write our answer, re-armed by every chunk either way, and stops when both are over; when it
// fires the stream is reset (a slow link is no offence: no strike).
struct ExchangeWatch {
  ExchangeWatch(asio::io_context& io, const std::shared_ptr<p2p::HostStream>& s, Duration limit)
      : timer(io), stream(s), limit(limit) {}
  asio::steady_timer timer;
  std::weak_ptr<p2p::HostStream> stream;
  Duration limit;
  bool reading = true, writing = false;
  void touch() {
    if (!reading && !writing) return;
    timer.expires_after(limit);
    timer.async_wait([ws = stream](const asio::error_code& ec) {
      if (ec) return;
      if (auto st = ws.lock()) {
        NLOG_WARN("exchange stream of {} idle: reset", st->remote_peer().to_string());
        st->reset();
      }
    });
  }
  void settle() {
    if (!reading && !writing) timer.cancel();
  }
};

// Writes a payload frame by frame, the next one when the stream has taken the previous (its
// window and send buffer are the backpressure), so a model-sized payload is never copied whole;
// then half-closes. `done` gets the first write error, or OK.
// on_frame (optional) runs after every frame the stream took.
void write_frames(std::shared_ptr<p2p::HostStream> stream, std::shared_ptr<const WirePayload> payload, size_t next,
                  std::function<void(Status)> done, std::function<void()> on_frame = {}) {
  if (next == payload->frame_count()) {
    stream->close_write();
    if (done) done(Status::Ok());
    return;
  }
  Result<Bytes> frame = payload->frame(next);  // a spooled payload's frame is read back here
  if (!frame.ok()) {
    stream->reset();
    if (done) done(frame.status());
    return;
  }
  stream->write(std::move(*frame), [stream, payload, next, done, on_frame](Status st) {
    if (!st.ok()) {
      if (done) done(st);
      return;
    }
    if (on_frame) on_frame();
    write_frames(stream, payload, next + 1, done, on_frame);
  });
}

}  // namespace

class NodeNetworkImpl : public std::enable_shared_from_this<NodeNetworkImpl> {
 public:
  explicit NodeNetworkImpl(NetworkOptions o)
      : opt(std::move(o)), work(asio::make_work_guard(io)), gossip_timer(io), rng(opt.seed) {}

  Status start();
  void stop();

  // --- network thread ---
  void gossip_tick();
  void gossip_with(const p2p::Multiaddr& addr);
  void on_gossip_stream(std::shared_ptr<p2p::HostStream> s);
  void on_run_stream(std::shared_ptr<p2p::HostStream> s);
  void on_exchange_stream(std::shared_ptr<p2p::HostStream> s);
  void on_state_stream(std::shared_ptr<p2p::HostStream> s);
  void serve_state_request(std::shared_ptr<p2p::HostStream> s);
  void merge_gossip(const p2p::PeerId& from, ByteView msg);
  void add_event(NetworkEvent e) {
    std::lock_guard lock(mu);
    if (events.size() < 1024) events.push_back(std::move(e));
  }
  void strike_local(const p2p::PeerId& peer, const std::string& why);
  ExchangeExpectations expect_from(const p2p::PeerId& peer) const {
    ExchangeExpectations e = opt.expect;
    e.sender = peer.to_string();
    return e;
  }

  struct Attempt;
  void next_try(std::shared_ptr<Attempt> a);

  // Reachability and relays (docs/node.md, "Reachability and relays").
  void on_identify(const p2p::IdentifyInfo& info);
  void tend_relays();
  void on_reserved(const p2p::PeerId& relay, Result<p2p::relay::ReservationGrant> grant);
  std::vector<RelayCandidate> relay_candidates() const;
  void check_dialback();
  void sample_paths();
  void publish_nat();
  void refresh_self(bool force = false);
  // A stream to a peer of the view: its addresses in dial_order, the next when one fails.
  void open_stream_to(const p2p::PeerRecord& rec, const std::string& protocol, p2p::StreamCallback cb);
  void try_addrs(std::shared_ptr<std::vector<p2p::Multiaddr>> addrs, size_t i, p2p::PeerId peer,
                 std::string protocol, std::string failures, p2p::StreamCallback cb);
  void on_gossip_opened(Result<std::shared_ptr<p2p::HostStream>> r);

  NetworkOptions opt;
  asio::io_context io;
  asio::executor_work_guard<asio::io_context::executor_type> work;
  std::thread thread;
  std::shared_ptr<p2p::Host> host;
  std::shared_ptr<AllReduceService> allreduce;
  SteadyClock clock;
  std::unique_ptr<p2p::MembershipView> view;
  asio::steady_timer gossip_timer;
  std::mt19937_64 rng;
  p2p::Multiaddr announced, bound;
  uint64_t ticks = 0;
  size_t bootstrap_next = 0;
  bool stopping = false;
  uint64_t outer_step = 0;
  double tokens_per_sec = 0;
  std::vector<std::string> self_addrs;         // as last put in our record
  std::vector<std::string> own_ips, observed_ips;
  ReachabilityVerdict verdict;
  std::atomic<int> verdict_shared{static_cast<int>(Reachability::kUnknown)};
  RelayKeeper keeper{RelayKeeperOptions{}};
  p2p::autonat::ReachabilityStatus dialback;  // AutoNAT's latest verdict
  bool dialback_in_flight = false;
  TimePoint next_dialback{};
  PeerPaths<p2p::PeerId> paths;
  mutable std::mutex nat_mu;
  NatView nat;  // published for the training thread
  std::map<p2p::PeerId, std::string> last_good;  // the address a peer last answered on
  // Every peer the view has held, kept after the view forgets it (the in-memory side of the
  // peer book): a node cut off for longer than forget_after, whose bootstrap is gone, finds the
  // swarm again through these.
  std::map<p2p::PeerId, p2p::PeerRecord> remembered;
  size_t remembered_next = 0;

  // Network-thread state.
  std::shared_ptr<const WirePayload> exchange_payload;
  std::shared_ptr<const StateSnapshot> state;
  std::set<p2p::PeerId> banned;
  std::map<p2p::PeerId, std::weak_ptr<p2p::HostStream>> inbound_exchanges;  // payloads being received

  // Shared with the training thread.
  std::mutex mu;
  std::map<p2p::PeerId, ReceivedPayload> inbox;
  std::vector<NetworkEvent> events;
  std::atomic<uint64_t> ex_out{0}, ex_in{0}, st_out{0}, st_in{0}, served{0};
  std::atomic<size_t> connections{0};  // sampled on the network thread at each gossip tick
  std::atomic<bool> stopped{false};
};

Status NodeNetworkImpl::start() {
  // Every member of the run speaks these: open them without waiting for the multistream answer.
  p2p::HostOptions host_options = opt.host;
  if (opt.relay_service && opt.reachability != ReachabilityMode::kPrivate && !host_options.relay)
    host_options.relay = node_relay_options();
  if (opt.autonat && !host_options.autonat) {
    p2p::HostOptions::Autonat an;
    // One server's word is enough in a small swarm (the private-run journey has one public
    // peer); a verdict still needs its votes to outnumber the opposite ones.
    an.client.min_votes = 1;
    host_options.autonat = an;
  }
  host_options.hole_punch = host_options.hole_punch || opt.hole_punch;
  keeper = RelayKeeper(opt.relays);
  for (std::string_view id : {kExchangeProtocolId, kAllReduceProtocolId, kStateProtocolId})
    host_options.lazy_select_protocols.emplace_back(id);
  NOLOCO_ASSIGN_OR_RETURN(host, p2p::Host::create(io, *opt.identity, host_options));
  NOLOCO_ASSIGN_OR_RETURN(bound, host->listen(opt.listen));
  AllReduceOptions ar;
  ar.run_id = opt.run_id;
  ar.encoding = opt.allreduce_encoding;
  ar.gather_timeout = opt.allreduce_gather_timeout;
  NOLOCO_ASSIGN_OR_RETURN(allreduce, AllReduceService::create(io, host, std::move(ar)));
  announced = opt.announce ? opt.announce->with_peer_id(host->peer_id()) : bound;
  const uint64_t epoch = static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
          .count());
  view = std::make_unique<p2p::MembershipView>(*opt.identity, opt.run_id, epoch, opt.membership, clock);
  own_ips = own_ips_of(bound, announced);
  refresh_self(true);
  banned.insert(opt.banned.begin(), opt.banned.end());

  std::weak_ptr<NodeNetworkImpl> weak = weak_from_this();
  auto guard = [weak](auto fn) {
    return [weak, fn](std::shared_ptr<p2p::HostStream> s) {
      if (auto self = weak.lock()) (self.get()->*fn)(std::move(s));
    };
  };
  host->set_handler(std::string(kRunProtocolId), guard(&NodeNetworkImpl::on_run_stream));
  host->set_handler(std::string(p2p::kMembershipProtocolId), guard(&NodeNetworkImpl::on_gossip_stream));
  host->set_handler(std::string(kExchangeProtocolId), guard(&NodeNetworkImpl::on_exchange_stream));
  host->set_handler(std::string(kStateProtocolId), guard(&NodeNetworkImpl::on_state_stream));
  p2p::timeproto::serve_time(*host);  // our wall clock, for `noloco doctor` (docs/protocols/time.md)
  host->set_identify_listener([weak](const p2p::PeerId&, const p2p::IdentifyInfo& info) {
    if (auto self = weak.lock()) self->on_identify(info);
  });

  thread = std::thread([this] {
    try {
      io.run();
    } catch (const std::exception& e) {
      NLOG_ERROR("network thread: {}", e.what());
    }
  });
  asio::post(io, [weak] {
    if (auto self = weak.lock()) self->gossip_tick();
  });
  return Status::Ok();
}

void NodeNetworkImpl::stop() {
  if (stopped.exchange(true)) return;
  std::promise<void> closed;
  asio::post(io, [this, &closed] {
    stopping = true;
    gossip_timer.cancel();
    if (allreduce) allreduce->close();
    if (host) host->close();
    closed.set_value();
  });
  closed.get_future().wait_for(std::chrono::seconds(5));
  work.reset();
  // GoAway frames are written by the host's own handlers; give them a moment, then stop.
  if (thread.joinable()) {
    auto until = Clk::now() + std::chrono::seconds(2);
    while (!io.stopped() && Clk::now() < until) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    io.stop();
    thread.join();
  }
}

// ---------------------------------------------------------------- membership

void NodeNetworkImpl::gossip_tick() {
  if (stopping) return;
  ++ticks;
  connections = host->connection_count();
  view->beat();
  view->expire();
  // Mostly a random live peer; a bootstrap address when we know nobody live, and now and then
  // anyway, so that two halves of a swarm that only know their own side still meet.
  auto live = view->live_peers();
  std::weak_ptr<NodeNetworkImpl> weak = weak_from_this();
  auto opened = [weak](Result<std::shared_ptr<p2p::HostStream>> r) {
    if (auto self = weak.lock()) self->on_gossip_opened(std::move(r));
  };
  if (!live.empty()) {
    const auto& rec = live[std::uniform_int_distribution<size_t>(0, live.size() - 1)(rng)];
    open_stream_to(rec, std::string(p2p::kMembershipProtocolId), opened);
  }
  if (!opt.bootstrap.empty() && (live.empty() || ticks % 10 == 1)) {
    const p2p::Multiaddr t = opt.bootstrap[bootstrap_next++ % opt.bootstrap.size()];
    if (!(t.peer_id() && *t.peer_id() == host->peer_id())) gossip_with(t);
  }
  if (live.empty() && !remembered.empty()) {
    auto it = std::next(remembered.begin(), static_cast<long>(remembered_next++ % remembered.size()));
    open_stream_to(it->second, std::string(p2p::kMembershipProtocolId), opened);
  }
  check_dialback();
  tend_relays();
  sample_paths();
  publish_nat();
  gossip_timer.expires_after(opt.gossip_interval);
  gossip_timer.async_wait([weak](const asio::error_code& ec) {
    if (ec) return;
    if (auto self = weak.lock()) self->gossip_tick();
  });
}

void NodeNetworkImpl::merge_gossip(const p2p::PeerId& from, ByteView msg) {
  if (banned.count(from)) return;  // a banned peer's view of the swarm is not taken either
  // `from` is the stream's remote, proven by the Noise handshake: its own record counts as
  // verified, the rest as hearsay it introduced (p2p/membership.h, eclipse resistance).
  auto report = view->on_gossip(msg, from);
  if (!report.ok()) {
    NLOG_WARN("gossip from {} refused: {}", from.to_string(), report.status().to_string());
    strike_local(from, "malformed gossip: " + report.status().to_string());
    return;
  }
  if (report->rejected > 0)
    NLOG_DEBUG("gossip from {}: {} records rejected ({})", from.to_string(), report->rejected,
               report->first_rejection);
  if (report->forged > 0)  // one strike per message: proof, since honest gossip holds only verified records
    strike_local(from, "forged gossip: " + std::to_string(report->forged) + " records that do not verify (" +
                           report->first_rejection + ")");
  if (report->capped > 0)
    NLOG_DEBUG("gossip from {}: {} hearsay records left out (view limits)", from.to_string(), report->capped);
  if (report->accepted > 0) {
    for (const auto& rec : view->live_peers()) {
      add_event({NetworkEvent::Kind::kPeerSeen, rec.peer, "", rec.addrs});
      if (remembered.size() < 64 || remembered.count(rec.peer)) remembered[rec.peer] = rec;
    }
  }
}

void NodeNetworkImpl::gossip_with(const p2p::Multiaddr& addr) {
  std::weak_ptr<NodeNetworkImpl> weak = weak_from_this();
  host->new_stream(addr, {std::string(p2p::kMembershipProtocolId)},
                   [weak](Result<std::shared_ptr<p2p::HostStream>> r) {
                     if (auto self = weak.lock()) self->on_gossip_opened(std::move(r));
                   });
}

void NodeNetworkImpl::on_gossip_opened(Result<std::shared_ptr<p2p::HostStream>> r) {
  if (!r.ok()) return;
  auto s = *r;
  s->write(p2p::encode_length_prefixed(view->make_gossip()));
  s->close_write();
  std::weak_ptr<NodeNetworkImpl> weak = weak_from_this();
  s->read_message(
      [weak, s](Result<Bytes> msg) {
        auto self = weak.lock();
        if (!self || !msg.ok()) return;
        self->merge_gossip(s->remote_peer(), *msg);
      },
      p2p::kMaxGossipMessageBytes);
}

// ---------------------------------------------------------------- dialling with fallback

void NodeNetworkImpl::open_stream_to(const p2p::PeerRecord& rec, const std::string& protocol, p2p::StreamCallback cb) {
  auto it = last_good.find(rec.peer);
  auto addrs = std::make_shared<std::vector<p2p::Multiaddr>>(
      dial_order(rec, it == last_good.end() ? std::nullopt : std::optional<std::string>(it->second)));
  try_addrs(std::move(addrs), 0, rec.peer, protocol, "", std::move(cb));
}

void NodeNetworkImpl::try_addrs(std::shared_ptr<std::vector<p2p::Multiaddr>> addrs, size_t i, p2p::PeerId peer,
                                std::string protocol, std::string failures, p2p::StreamCallback cb) {
  if (i >= addrs->size()) {
    const std::string why = failures.empty() ? "no dialable address" : failures;
    return asio::post(io, [cb, why] { cb(unavailable(why)); });
  }
  std::weak_ptr<NodeNetworkImpl> weak = weak_from_this();
  const p2p::Multiaddr addr = (*addrs)[i];
  host->new_stream(addr, {protocol}, [weak, addrs, i, peer, protocol, failures, cb, addr](
                                         Result<std::shared_ptr<p2p::HostStream>> r) mutable {
    auto self = weak.lock();
    if (!self) return cb(unavailable("network stopped"));
    if (r.ok()) {
      self->last_good[peer] = addr.without_peer_id().to_string();
      return cb(std::move(r));
    }
    failures += (failures.empty() ? "" : "; ") + addr.to_string() + ": " + r.status().to_string();
    self->try_addrs(std::move(addrs), i + 1, peer, std::move(protocol), std::move(failures), std::move(cb));
  });
}

// ---------------------------------------------------------------- reachability and relays

void NodeNetworkImpl::on_identify(const p2p::IdentifyInfo& info) {
  if (!info.observed_addr) return;
  auto ip = info.observed_addr->host();
  if (!ip || std::find(observed_ips.begin(), observed_ips.end(), *ip) != observed_ips.end()) return;
  if (observed_ips.size() >= 16) observed_ips.erase(observed_ips.begin());
  observed_ips.push_back(*ip);
}

// Relays are peers that look publicly reachable: the bootstrap addresses first, then live peers
// that advertise no circuit address of their own.
std::vector<RelayCandidate> NodeNetworkImpl::relay_candidates() const {
  std::vector<RelayCandidate> out;
  auto add = [&](const p2p::PeerId& peer, const p2p::Multiaddr& addr) {
    if (peer == host->peer_id() || banned.count(peer)) return;
    for (const auto& c : out)
      if (c.peer == peer) return;
    out.push_back({peer, addr});
  };
  for (const auto& b : opt.bootstrap)
    if (auto id = b.peer_id(); id && !b.is_circuit()) add(*id, b);
  for (const auto& rec : view->live_peers()) {
    if (std::any_of(rec.addrs.begin(), rec.addrs.end(), is_circuit_text)) continue;
    if (auto c = host->connected_addr(rec.peer); c && c->is_circuit()) continue;  // we only reach it relayed
    // Reached through a hole punch: behind a NAT too (its record lacks a circuit address only
    // while it has no reservation), so a reservation on it would be useless to anyone else.
    if (host->connection_path(rec.peer) == p2p::Host::ConnectionPath::kHolePunched) continue;
    for (const auto& text : rec.addrs)
      if (auto a = p2p::Multiaddr::parse(text); a.ok()) {
        add(rec.peer, a->with_peer_id(rec.peer));
        break;
      }
  }
  return out;
}

void NodeNetworkImpl::tend_relays() {
  ReachabilityEvidence ev;
  ev.own_ips = own_ips;
  ev.observed_ips = observed_ips;
  if (dialback.reachability != p2p::autonat::Reachability::kUnknown) {
    ev.dialback_succeeded = dialback.reachability == p2p::autonat::Reachability::kPublic;
    ev.dialback_votes = dialback.confidence;
  }
  ReachabilityVerdict now_verdict = judge_reachability(opt.reachability, ev);
  // A new verdict, or the same one on other grounds (observed addresses, then a dial-back),
  // is worth an event; a changing vote count is not.
  const bool changed = now_verdict.reachability != verdict.reachability ||
                       std::string(now_verdict.basis) != verdict.basis;
  verdict = std::move(now_verdict);
  if (changed) {
    verdict_shared = static_cast<int>(verdict.reachability);
    NLOG_INFO("reachability: {} ({})", reachability_name(verdict.reachability), verdict.why);
    NetworkEvent e{NetworkEvent::Kind::kReachability, host->peer_id(), reachability_name(verdict.reachability), {}};
    e.basis = verdict.basis;
    e.why = verdict.why;
    add_event(std::move(e));
  }
  std::weak_ptr<NodeNetworkImpl> weak = weak_from_this();
  auto ask = keeper.tick(clock.now(), verdict.reachability == Reachability::kPrivate, relay_candidates(),
                         [this](const p2p::PeerId& p) { return host->is_connected(p); });
  for (const auto& addr : ask) {
    const p2p::PeerId relay = *addr.peer_id();
    host->reserve_relay(addr, [weak, relay](Result<p2p::relay::ReservationGrant> g) {
      if (auto self = weak.lock()) self->on_reserved(relay, std::move(g));
    });
  }
  refresh_self();
}

// AutoNAT: ask the peers we hold direct connections to to dial our listen address back. Only
// under --reachability auto (a flag decides otherwise); the answer is used at the next tick.
void NodeNetworkImpl::check_dialback() {
  if (!opt.autonat || opt.reachability != ReachabilityMode::kAuto || dialback_in_flight) return;
  if (clock.now() < next_dialback) return;
  dialback_in_flight = true;
  std::weak_ptr<NodeNetworkImpl> weak = weak_from_this();
  host->check_reachability([weak](p2p::autonat::ReachabilityStatus st) {
    auto self = weak.lock();
    if (!self || self->stopping) return;
    self->dialback_in_flight = false;
    const bool settled = st.reachability != p2p::autonat::Reachability::kUnknown;
    self->next_dialback = self->clock.now() + (settled ? self->opt.autonat_recheck : self->opt.autonat_retry);
    self->dialback = std::move(st);
  });
}

// How each live peer is reached now; a change (a relayed connection upgraded by a hole punch,
// say) becomes a peer_path event.
void NodeNetworkImpl::sample_paths() {
  std::vector<std::pair<p2p::PeerId, PeerPath>> sample;
  for (const auto& rec : view->live_peers()) {
    if (banned.count(rec.peer)) continue;
    PeerPath path = PeerPath::kNone;
    switch (host->connection_path(rec.peer)) {
      case p2p::Host::ConnectionPath::kDirect: path = PeerPath::kDirect; break;
      case p2p::Host::ConnectionPath::kRelayed: path = PeerPath::kRelayed; break;
      case p2p::Host::ConnectionPath::kHolePunched: path = PeerPath::kHolePunched; break;
      case p2p::Host::ConnectionPath::kNone: break;
    }
    sample.emplace_back(rec.peer, path);
  }
  for (const auto& c : paths.update(sample)) {
    // A plain direct connection is the usual case; relayed and hole-punched ones are news.
    if (c.path == PeerPath::kDirect) NLOG_DEBUG("peer {}: {}", c.peer.to_string(), peer_path_name(c.path));
    else NLOG_INFO("peer {}: {}", c.peer.to_string(), peer_path_name(c.path));
    add_event({NetworkEvent::Kind::kPath, c.peer, peer_path_name(c.path), {}});
  }
}

void NodeNetworkImpl::publish_nat() {
  NatView v;
  v.reachability = reachability_name(verdict.reachability);
  v.basis = verdict.basis;
  v.why = verdict.why;
  v.reservations = keeper.circuit_addrs();
  const PathCounts c = paths.counts();
  v.direct = c.direct;
  v.relayed = c.relayed;
  v.hole_punched = c.hole_punched;
  const auto hp = host->hole_punch_stats();
  v.punch_attempts = hp.attempts;
  v.punch_succeeded = hp.succeeded;
  v.punch_failed = hp.failed;
  std::lock_guard lock(nat_mu);
  nat = std::move(v);
}

void NodeNetworkImpl::on_reserved(const p2p::PeerId& relay, Result<p2p::relay::ReservationGrant> grant) {
  if (stopping) return;
  if (!grant.ok()) {
    NLOG_DEBUG("relay {}: reservation failed: {}", relay.to_string(), grant.status().to_string());
    keeper.on_failed(relay, clock.now());
    add_event({NetworkEvent::Kind::kRelay, relay, "failed: " + grant.status().to_string(), {}});
    return refresh_self();
  }
  const int64_t left = static_cast<int64_t>(grant->reservation.expire_unix_s) - unix_time_seconds();
  const bool had = !keeper.circuit_addrs().empty();
  keeper.on_granted(relay, clock.now(), std::chrono::seconds(std::max<int64_t>(left, 1)));
  refresh_self();
  std::vector<std::string> mine;
  for (const auto& a : keeper.circuit_addrs())
    if (a.find(relay.to_string()) != std::string::npos) mine.push_back(a);
  NLOG_INFO("relay {}: reservation {} for {} s; reachable at {}", relay.to_string(), had ? "held" : "granted", left,
            mine.empty() ? std::string("?") : mine.front());
  add_event({NetworkEvent::Kind::kRelay, relay, "reserved", mine});
}

// Our record lists the circuit addresses first when we are not directly reachable (dialers try
// addresses in order), then the announced one (peers on our own network can still use it).
void NodeNetworkImpl::refresh_self(bool force) {
  std::vector<std::string> addrs = keeper.circuit_addrs();
  if (addrs.size() > p2p::kMaxAddrsPerRecord - 1) addrs.resize(p2p::kMaxAddrsPerRecord - 1);
  addrs.push_back(announced.without_peer_id().to_string());
  if (!force && addrs == self_addrs) return;
  self_addrs = addrs;
  view->set_self(std::move(addrs), outer_step, tokens_per_sec);
}

void NodeNetworkImpl::on_gossip_stream(std::shared_ptr<p2p::HostStream> s) {
  std::weak_ptr<NodeNetworkImpl> weak = weak_from_this();
  s->read_message(
      [weak, s](Result<Bytes> msg) {
        auto self = weak.lock();
        if (!self) return;
        if (!msg.ok()) return s->reset();
        self->merge_gossip(s->remote_peer(), *msg);
        s->write(p2p::encode_length_prefixed(self->view->make_gossip()));
        s->close_write();
      },
      p2p::kMaxGossipMessageBytes);
}

// ---------------------------------------------------------------- run manifest

void NodeNetworkImpl::on_run_stream(std::shared_ptr<p2p::HostStream> s) {
  s->write(p2p::encode_length_prefixed(to_bytes(opt.manifest_json)));
  s->close_write();
}

// ---------------------------------------------------------------- exchange

// The node core counts the strike (and decides on a ban) when the training thread drains events.
void NodeNetworkImpl::strike_local(const p2p::PeerId& peer, const std::string& why) {
  add_event({NetworkEvent::Kind::kBadPayload, peer, why, {}});
}

void NodeNetworkImpl::on_exchange_stream(std::shared_ptr<p2p::HostStream> s) {
  const p2p::PeerId peer = s->remote_peer();
  if (banned.count(peer)) return s->reset();
  // Memory a caller can pin: one payload being received per peer (an honest caller has one
  // exchange in flight to us; its newer stream replaces an older one), max_inbound_exchanges in
  // all, and none that stops moving for exchange_idle_timeout.
  if (auto old = inbound_exchanges.find(peer); old != inbound_exchanges.end()) {
    if (auto os = old->second.lock()) os->reset();
    inbound_exchanges.erase(old);
  }
  if (inbound_exchanges.size() >= opt.max_inbound_exchanges) {
    NLOG_WARN("exchange from {} refused: {} inbound exchanges in progress", peer.to_string(), inbound_exchanges.size());
    return s->reset();
  }
  inbound_exchanges[peer] = s;
  auto watch = std::make_shared<ExchangeWatch>(io, s, opt.exchange_idle_timeout);
  auto progress = [watch] { watch->touch(); };
  progress();
  auto reader = std::make_shared<PayloadReader>(expect_from(peer));
  std::weak_ptr<NodeNetworkImpl> weak = weak_from_this();
  auto release = [weak, peer, ws = std::weak_ptr<p2p::HostStream>(s)] {
    auto self = weak.lock();
    if (!self) return;
    auto it = self->inbound_exchanges.find(peer);
    if (it != self->inbound_exchanges.end() && !it->second.owner_before(ws) && !ws.owner_before(it->second))
      self->inbound_exchanges.erase(it);
  };
  // Answer with our latest completed snapshot, whatever phase we are in (no barrier), as soon as
  // the caller's header checks out: the two payloads then cross the link at the same time
  // instead of one after the other. The caller's tensors are still verified in full below.
  auto answered = std::make_shared<bool>(false);
  auto answer = [weak, s, answered, watch, progress] {
    auto self = weak.lock();
    if (!self || *answered) return;
    watch->writing = true;
    progress();
    *answered = true;
    std::shared_ptr<const WirePayload> snapshot = self->exchange_payload;
    if (!snapshot) {
      auto refusal = std::make_shared<WirePayload>();
      refusal->frames.push_back(encode_payload(make_error_payload("no snapshot yet")));
      snapshot = std::move(refusal);
    }
    self->ex_out += snapshot->size();
    // A caller that stops reading our answer is reset too; the timer ends with the write.
    write_frames(
        s, std::move(snapshot), 0,
        [watch](Status) {
          watch->writing = false;
          watch->settle();
        },
        progress);
  };
  read_payload(
      s, reader,
      [weak, s, peer, reader, answer, release, watch](Result<Payload> p) {
        auto self = weak.lock();
        if (!self) return;
        release();
        watch->reading = false;
        if (!p.ok()) watch->writing = false;  // the stream is reset: no answer goes out
        watch->settle();
        if (!p.ok()) {
          s->reset();
          // The caller went away, or the stream idled out (a slow link is no offence).
          if (p.status().code() == StatusCode::kUnavailable || p.status().code() == StatusCode::kTimeout) return;
          NLOG_WARN("refused exchange payload from {}: {}", peer.to_string(), p.status().to_string());
          self->strike_local(peer, p.status().to_string());
          return;
        }
        self->ex_in += reader->bytes_received();
        answer();  // an error header has no tensors: answer now if not yet
        if (p->header.error.empty()) {
          ++self->served;
          std::lock_guard lock(self->mu);
          auto it = self->inbox.find(peer);
          if (it == self->inbox.end() || it->second.payload.header.outer_step <= p->header.outer_step) {
            if (it == self->inbox.end() && self->inbox.size() >= self->opt.max_inbox) {
              // Full: drop the stalest entry to make room.
              auto oldest = std::min_element(self->inbox.begin(), self->inbox.end(), [](auto& a, auto& b) {
                return a.second.payload.header.outer_step < b.second.payload.header.outer_step;
              });
              self->inbox.erase(oldest);
            }
            self->inbox[peer] = ReceivedPayload{peer, std::move(*p)};
          }
        }
      },
      answer, progress);
}

struct NodeNetworkImpl::Attempt {
  std::shared_ptr<const WirePayload> payload;
  Clk::time_point deadline;
  int tries_left = 0;
  std::optional<p2p::PeerRecord> partner;  // chosen by the node core
  ExchangeOutcome outcome;
  Clk::time_point started;
  std::promise<ExchangeOutcome> promise;
  bool finished = false;
  uint64_t generation = 0;  // which try the current callbacks belong to
  std::shared_ptr<asio::steady_timer> timer;
  std::shared_ptr<p2p::HostStream> stream;

  void finish() {
    if (finished) return;
    finished = true;
    if (timer) timer->cancel();
    outcome.seconds = std::chrono::duration<double>(Clk::now() - started).count();
    promise.set_value(std::move(outcome));
  }
};

void NodeNetworkImpl::next_try(std::shared_ptr<Attempt> a) {
  if (a->finished) return;
  if (stopping || a->tries_left <= 0 || Clk::now() >= a->deadline) return a->finish();
  auto partner = a->partner;
  if (!partner || banned.count(partner->peer)) return a->finish();
  --a->tries_left;
  const std::string who = partner->peer.to_string();
  const uint64_t gen = ++a->generation;
  std::weak_ptr<NodeNetworkImpl> weak = weak_from_this();
  auto fail = [weak, a, gen, who](const std::string& why) {
    auto self = weak.lock();
    if (!self || a->finished || a->generation != gen) return;
    ++a->generation;  // later callbacks of this try are ignored
    if (a->stream) a->stream->reset();
    a->stream.reset();
    a->outcome.failures.push_back(who + ": " + why);
    self->next_try(a);
  };
  a->timer->expires_at(a->deadline);
  a->timer->async_wait([fail](const asio::error_code& ec) {
    if (!ec) fail("timed out");
  });
  const p2p::PeerId peer = partner->peer;
  open_stream_to(*partner, std::string(kExchangeProtocolId),
                   [weak, a, gen, fail, peer](Result<std::shared_ptr<p2p::HostStream>> r) {
                     auto self = weak.lock();
                     if (!self || a->finished || a->generation != gen) return;
                     if (!r.ok()) return fail(r.status().to_string());
                     auto s = *r;
                     a->stream = s;
                     a->outcome.bytes_sent += a->payload->size();
                     self->ex_out += a->payload->size();
                     write_frames(s, a->payload, 0, {});
                     auto reader = std::make_shared<PayloadReader>(self->expect_from(peer));
                     read_payload(s, reader, [weak, a, gen, fail, peer, reader](Result<Payload> p) {
                       auto self = weak.lock();
                       if (!self || a->finished || a->generation != gen) return;
                       if (!p.ok()) {
                         if (p.status().code() != StatusCode::kUnavailable &&
                             p.status().code() != StatusCode::kTimeout)
                           self->strike_local(peer, p.status().to_string());
                         return fail(p.status().to_string());
                       }
                       self->ex_in += reader->bytes_received();
                       a->outcome.bytes_received += reader->bytes_received();
                       if (!p->header.error.empty()) return fail("refused: " + p->header.error);
                       a->outcome.partner = ReceivedPayload{peer, std::move(*p)};
                       a->finish();
                     });
                   });
}

// ---------------------------------------------------------------- state sync

void NodeNetworkImpl::on_state_stream(std::shared_ptr<p2p::HostStream> s) { serve_state_request(std::move(s)); }

void NodeNetworkImpl::serve_state_request(std::shared_ptr<p2p::HostStream> s) {
  std::weak_ptr<NodeNetworkImpl> weak = weak_from_this();
  s->read_message(
      [weak, s](Result<Bytes> msg) {
        auto self = weak.lock();
        if (!self) return;
        if (!msg.ok()) {
          // A clean end between requests is the normal finish.
          if (msg.status().code() != StatusCode::kTruncated) s->reset();
          else s->close_write();
          return;
        }
        auto req = decode_state_request(*msg);
        if (!req.ok()) {
          NLOG_WARN("bad state request from {}: {}", s->remote_peer().to_string(), req.status().to_string());
          self->strike_local(s->remote_peer(), req.status().to_string());
          return s->reset();
        }
        auto st = self->state;
        StateResponse resp = st ? answer_state_request(*req, self->opt.run_id, st->blob, st->sha256,
                                                       st->outer_step, st->inner_step)
                                : answer_state_request(*req, self->opt.run_id, {}, {}, 0, 0);
        Bytes out = p2p::encode_length_prefixed(encode_state_response(resp));
        self->st_out += out.size();
        s->write(std::move(out));
        self->serve_state_request(s);
      },
      4096);
}

// ---------------------------------------------------------------- public API

NodeNetwork::NodeNetwork(std::shared_ptr<NodeNetworkImpl> impl) : impl_(std::move(impl)) {}
NodeNetwork::~NodeNetwork() { stop(); }

Result<std::unique_ptr<NodeNetwork>> NodeNetwork::start(NetworkOptions options) {
  if (!options.identity) return invalid_argument("network: no identity");
  NOLOCO_RETURN_IF_ERROR(options.host.validate());
  NOLOCO_RETURN_IF_ERROR(options.membership.validate());
  auto impl = std::make_shared<NodeNetworkImpl>(std::move(options));
  NOLOCO_RETURN_IF_ERROR(impl->start());
  return std::unique_ptr<NodeNetwork>(new NodeNetwork(std::move(impl)));
}

const p2p::PeerId& NodeNetwork::peer_id() const { return impl_->host->peer_id(); }
p2p::Multiaddr NodeNetwork::listen_addr() const { return impl_->announced; }
p2p::Multiaddr NodeNetwork::bound_addr() const { return impl_->bound; }

void NodeNetwork::set_progress(uint64_t outer_step, double tokens_per_sec) {
  auto impl = impl_;
  asio::post(impl->io, [impl, outer_step, tokens_per_sec] {
    impl->outer_step = outer_step;
    impl->tokens_per_sec = tokens_per_sec;
    impl->refresh_self(true);
  });
}

void NodeNetwork::publish_exchange_payload(std::shared_ptr<const WirePayload> payload) {
  auto impl = impl_;
  asio::post(impl->io, [impl, p = std::move(payload)] { impl->exchange_payload = p; });
}

void NodeNetwork::publish_state(std::shared_ptr<const StateSnapshot> snapshot) {
  auto impl = impl_;
  asio::post(impl->io, [impl, s = std::move(snapshot)] { impl->state = s; });
}

ExchangeOutcome NodeNetwork::exchange_with(const p2p::PeerRecord& partner, std::shared_ptr<const WirePayload> payload,
                                           Duration budget) {
  auto a = std::make_shared<NodeNetworkImpl::Attempt>();
  a->partner = partner;
  a->payload = std::move(payload);
  a->started = Clk::now();
  a->deadline = a->started + std::chrono::duration_cast<Clk::duration>(budget);
  a->tries_left = 1;
  a->timer = std::make_shared<asio::steady_timer>(impl_->io);
  auto fut = a->promise.get_future();
  auto impl = impl_;
  asio::post(impl->io, [impl, a] { impl->next_try(a); });
  // The network thread always finishes an attempt by its deadline; the margin covers a stop().
  if (fut.wait_until(a->deadline + std::chrono::seconds(5)) != std::future_status::ready) {
    asio::post(impl->io, [a] { a->finish(); });
    ExchangeOutcome out;
    out.failures.push_back("network thread did not answer");
    return out;
  }
  return fut.get();
}

std::vector<ReceivedPayload> NodeNetwork::take_inbox() {
  std::lock_guard lock(impl_->mu);
  std::vector<ReceivedPayload> out;
  for (auto& [peer, p] : impl_->inbox) out.push_back(std::move(p));
  impl_->inbox.clear();
  return out;
}

namespace {

// One fetch_state call's progress, shared by its closures on the network thread.
struct StateFetch {
  std::unique_ptr<StateDownload> dl;
  std::promise<Status> done;
  bool finished = false;
  int streams_left = 3;  // streams opened again after a break, before giving up
  uint64_t chunk_bytes = 0;
  std::vector<uint64_t> stream_offsets;
  void finish(Status st) {
    if (finished) return;
    finished = true;
    done.set_value(std::move(st));
  }
};

StateFetched fetched_state(const p2p::PeerRecord& peer, StateFetch& f, uint64_t resumed_from) {
  StateFetched out;
  out.peer = peer.peer;
  out.outer_step = f.dl->outer_step();
  out.inner_step = f.dl->inner_step();
  out.resumed_from = resumed_from;
  out.chunk_bytes = f.chunk_bytes;
  out.stream_offsets = std::move(f.stream_offsets);
  out.blob = f.dl->take();
  return out;
}

}  // namespace

Result<StateFetched> NodeNetwork::fetch_state(const p2p::PeerRecord& peer, uint64_t max_bytes, Duration budget) {
  auto f = std::make_shared<StateFetch>();
  // Continue a download an earlier call left part-way, if it is for the same run and cap.
  if (partial_state_ && partial_state_->total() <= max_bytes) f->dl = std::move(partial_state_);
  else f->dl = std::make_unique<StateDownload>(impl_->opt.run_id, max_bytes);
  partial_state_.reset();
  const uint64_t resumed_from = f->dl->received();
  auto fut = f->done.get_future();
  auto impl = impl_;
  const auto deadline = Clk::now() + std::chrono::duration_cast<Clk::duration>(budget);
  auto timer = std::make_shared<asio::steady_timer>(impl->io);
  std::weak_ptr<NodeNetworkImpl> weak = impl;
  // One request/response round; a broken stream is reopened and the download resumes.
  auto open = std::make_shared<std::function<void()>>();
  auto round = std::make_shared<std::function<void(std::shared_ptr<p2p::HostStream>)>>();
  // Progress deadline: every request must get its whole answer within the stall timeout.
  auto stall = std::make_shared<asio::steady_timer>(impl->io);
  auto arm_stall = [stall, f, limit = impl->opt.state_stall_timeout] {
    stall->expires_after(limit);
    stall->async_wait([f](const asio::error_code& ec) {
      if (!ec) f->finish(timeout_error("state download stalled: no answer within the progress deadline"));
    });
  };
  *round = [weak, f, round, open, arm_stall](std::shared_ptr<p2p::HostStream> s) {
    auto self = weak.lock();
    if (!self || f->finished) return;
    if (f->dl->complete()) {
      s->close_write();
      return f->finish(Status::Ok());
    }
    arm_stall();
    s->write(p2p::encode_length_prefixed(encode_state_request(f->dl->next_request())));
    s->read_message(
        [weak, f, s, round, open](Result<Bytes> msg) {
          auto self = weak.lock();
          if (!self || f->finished) return;
          if (!msg.ok()) return (*open)();  // resume on a new stream
          self->st_in += msg->size();
          auto resp = decode_state_response(*msg);
          if (!resp.ok()) return f->finish(resp.status());
          const uint64_t before = f->dl->received();
          Status st = f->dl->on_response(*resp);
          if (!st.ok() && resp->error == "snapshot changed" && before > 0) {
            // This peer serves another snapshot than the one we hold part of: start over from it.
            f->dl->restart();
            return (*round)(s);
          }
          if (!st.ok() && st.code() == StatusCode::kCorrupt) return (*open)();  // restarted from 0
          if (!st.ok()) return f->finish(st);
          f->chunk_bytes += f->dl->received() > before ? f->dl->received() - before : 0;
          (*round)(s);
        },
        kStateChunkBytes + 4096);
  };
  *open = [weak, f, round, peer, arm_stall]() {
    auto self = weak.lock();
    if (!self || f->finished) return;
    if (f->streams_left-- <= 0) return f->finish(unavailable("state download: too many broken streams"));
    arm_stall();
    self->open_stream_to(peer, std::string(kStateProtocolId),
                           [weak, f, round](Result<std::shared_ptr<p2p::HostStream>> r) {
                             if (f->finished) return;
                             if (!r.ok()) return f->finish(r.status());
                             f->stream_offsets.push_back(f->dl->received());
                             (*round)(*r);
                           });
  };
  asio::post(impl->io, [timer, f, open, deadline] {
    timer->expires_at(deadline);
    timer->async_wait([f](const asio::error_code& ec) {
      if (!ec) f->finish(timeout_error("state download timed out"));
    });
    (*open)();
  });
  if (fut.wait_until(deadline + std::chrono::seconds(5)) != std::future_status::ready) {
    asio::post(impl->io, [f] { f->finish(timeout_error("state download timed out")); });
    fut.wait();
  }
  Status st = fut.get();
  // The network thread lets go of the download (and the closures' cycles) before we touch it again.
  auto released = std::make_shared<std::promise<void>>();
  auto released_fut = released->get_future();
  asio::post(impl->io, [timer, stall, open, round, released] {
    timer->cancel();
    stall->cancel();
    *open = nullptr;
    *round = nullptr;
    released->set_value();
  });
  released_fut.wait_for(std::chrono::seconds(5));
  if (!st.ok()) {
    // Keep what arrived (it is never handed out before the whole blob checks out).
    if (f->dl->received() > 0 && !f->dl->complete()) partial_state_ = std::move(f->dl);
    return st.context("state download from " + peer.peer.to_string());
  }
  return fetched_state(peer, *f, resumed_from);
}

uint64_t NodeNetwork::partial_state_bytes() const { return partial_state_ ? partial_state_->received() : 0; }

namespace {

// One probe_state call, on the network thread.
struct StateProbe {
  StateSample sample;
  std::vector<std::pair<uint64_t, uint32_t>> ranges;
  std::string run_id;
  std::shared_ptr<p2p::HostStream> stream;  // reset when the call ends (frees a pending read)
  std::shared_ptr<asio::steady_timer> stall;  // each answer within the progress deadline
  Duration stall_limit{};
  std::promise<Status> done;
  bool finished = false;
  void finish(Status st) {
    if (finished) return;
    finished = true;
    done.set_value(std::move(st));
  }
};

void probe_next(const std::shared_ptr<StateProbe>& p, const std::shared_ptr<p2p::HostStream>& s) {
  if (p->finished) return;
  const size_t i = p->sample.chunks.size();
  if (i == p->ranges.size()) {
    s->close_write();
    return p->finish(Status::Ok());
  }
  p->stall->expires_after(p->stall_limit);
  p->stall->async_wait([p](const asio::error_code& ec) {
    if (!ec) p->finish(timeout_error("state probe stalled: no answer within the progress deadline"));
  });
  StateRequest req;
  req.run_id = p->run_id;
  req.want_sha256 = p->sample.sha256;
  req.offset = p->ranges[i].first;
  req.max_len = p->ranges[i].second;
  s->write(p2p::encode_length_prefixed(encode_state_request(req)));
  s->read_message(
      [p, s](Result<Bytes> msg) {
        if (p->finished) return;
        if (!msg.ok()) return p->finish(msg.status());
        auto resp = decode_state_response(*msg);
        if (!resp.ok()) return p->finish(resp.status());
        if (!resp->error.empty()) return p->finish(unavailable("peer refused: " + resp->error));
        const auto& want = p->ranges[p->sample.chunks.size()];
        if (resp->offset != want.first || resp->chunk.size() != want.second || resp->sha256.size() != 32)
          return p->finish(corrupt("state probe: answer does not match the request"));
        if (p->sample.chunks.empty()) {
          p->sample.sha256 = resp->sha256;
          p->sample.outer_step = resp->outer_step;
          p->sample.total_bytes = resp->total_bytes;
        } else if (resp->sha256 != p->sample.sha256) {
          return p->finish(unavailable("state probe: snapshot changed"));
        }
        p->sample.chunks.push_back(std::move(resp->chunk));
        probe_next(p, s);
      },
      kStateChunkBytes + 4096);
}

}  // namespace

Result<StateSample> NodeNetwork::probe_state(const p2p::PeerRecord& peer,
                                             const std::vector<std::pair<uint64_t, uint32_t>>& ranges,
                                             Duration budget) {
  for (const auto& r : ranges)
    if (r.second == 0 || r.second > kStateChunkBytes) return invalid_argument("state probe: bad range length");
  auto p = std::make_shared<StateProbe>();
  p->sample.peer = peer.peer;
  p->ranges = ranges;
  p->run_id = impl_->opt.run_id;
  p->stall = std::make_shared<asio::steady_timer>(impl_->io);
  p->stall_limit = impl_->opt.state_stall_timeout;
  auto fut = p->done.get_future();
  auto impl = impl_;
  auto timer = std::make_shared<asio::steady_timer>(impl->io);
  std::weak_ptr<NodeNetworkImpl> weak = impl;
  asio::post(impl->io, [weak, p, timer, budget, peer] {
    auto self = weak.lock();
    if (!self) return p->finish(unavailable("network stopped"));
    timer->expires_after(budget);
    timer->async_wait([p](const asio::error_code& ec) {
      if (!ec) p->finish(timeout_error("state probe timed out"));
    });
    self->open_stream_to(peer, std::string(kStateProtocolId), [p](Result<std::shared_ptr<p2p::HostStream>> r) {
      if (!r.ok()) return p->finish(r.status());
      p->stream = *r;
      if (p->finished) return;
      probe_next(p, *r);
    });
  });
  const auto deadline = Clk::now() + std::chrono::duration_cast<Clk::duration>(budget) + std::chrono::seconds(5);
  if (fut.wait_until(deadline) != std::future_status::ready) {
    asio::post(impl->io, [p] { p->finish(timeout_error("state probe timed out")); });
    fut.wait();
  }
  Status st = fut.get();
  auto released = std::make_shared<std::promise<void>>();
  auto released_fut = released->get_future();
  asio::post(impl->io, [timer, p, released] {
    timer->cancel();
    p->stall->cancel();
    if (p->stream) p->stream->reset();
    p->stream.reset();
    released->set_value();
  });
  released_fut.wait_for(std::chrono::seconds(5));
  if (!st.ok()) return st.context("state probe of " + peer.peer.to_string());
  return std::move(p->sample);
}

std::vector<p2p::PeerRecord> NodeNetwork::live_peers() {
  std::promise<std::vector<p2p::PeerRecord>> p;
  auto fut = p.get_future();
  auto impl = impl_;
  asio::post(impl->io, [impl, &p] {
    std::vector<p2p::PeerRecord> out;
    for (auto& r : impl->view->live_peers())
      if (!impl->banned.count(r.peer)) out.push_back(r);
    p.set_value(std::move(out));
  });
  if (fut.wait_for(std::chrono::seconds(5)) != std::future_status::ready) return {};
  return fut.get();
}

std::vector<p2p::PeerId> NodeNetwork::relayed(const std::vector<p2p::PeerId>& peers) {
  auto p = std::make_shared<std::promise<std::vector<p2p::PeerId>>>();
  auto fut = p->get_future();
  auto impl = impl_;
  asio::post(impl->io, [impl, p, peers] {
    std::vector<p2p::PeerId> out;
    for (const auto& peer : peers)
      if (auto a = impl->host->connected_addr(peer); a && a->is_circuit()) out.push_back(peer);
    p->set_value(std::move(out));
  });
  if (fut.wait_for(std::chrono::seconds(5)) != std::future_status::ready) return {};
  return fut.get();
}

Reachability NodeNetwork::reachability() const { return static_cast<Reachability>(impl_->verdict_shared.load()); }

NatView NodeNetwork::nat_view() const {
  std::lock_guard lock(impl_->nat_mu);
  return impl_->nat;
}

std::vector<std::string> NodeNetwork::circuit_addrs() {
  auto p = std::make_shared<std::promise<std::vector<std::string>>>();
  auto fut = p->get_future();
  auto impl = impl_;
  asio::post(impl->io, [impl, p] { p->set_value(impl->keeper.circuit_addrs()); });
  if (fut.wait_for(std::chrono::seconds(5)) != std::future_status::ready) return {};
  return fut.get();
}

std::vector<NetworkEvent> NodeNetwork::take_events() {
  std::lock_guard lock(impl_->mu);
  return std::exchange(impl_->events, {});
}

void NodeNetwork::ban(const p2p::PeerId& peer) {
  auto impl = impl_;
  asio::post(impl->io, [impl, peer] { impl->banned.insert(peer); });
}

TrafficTotals NodeNetwork::traffic() const {
  TrafficTotals t;
  t.exchange_out = impl_->ex_out;
  t.exchange_in = impl_->ex_in;
  t.state_out = impl_->st_out;
  t.state_in = impl_->st_in;
  t.exchanges_served = impl_->served;
  t.connections = impl_->connections;
  return t;
}

AllReduceService& NodeNetwork::allreduce() { return *impl_->allreduce; }

void NodeNetwork::stop() {
  if (impl_) impl_->stop();
}

// ---------------------------------------------------------------- manifest fetch

Result<std::string> fetch_run_manifest(const p2p::Identity& identity, const p2p::HostOptions& host_options,
                                       const std::vector<p2p::Multiaddr>& peers, Duration budget) {
  if (peers.empty()) return invalid_argument("no peer to fetch the run manifest from (give --join)");
  asio::io_context io;
  NOLOCO_ASSIGN_OR_RETURN(auto host, p2p::Host::create(io, identity, host_options));
  std::vector<std::string> failures;
  std::optional<std::string> manifest;
  size_t next = 0;
  asio::steady_timer timer(io);
  std::function<void()> try_next = [&] {
    if (manifest || next >= peers.size()) {
      timer.cancel();
      return host->close();
    }
    const p2p::Multiaddr addr = peers[next++];
    host->new_stream(addr, {std::string(kRunProtocolId)}, [&, addr](Result<std::shared_ptr<p2p::HostStream>> r) {
      if (!r.ok()) {
        failures.push_back(addr.to_string() + ": " + r.status().to_string());
        return try_next();
      }
      auto s = *r;
      s->read_message(
          [&, s, addr](Result<Bytes> msg) {
            if (!msg.ok()) failures.push_back(addr.to_string() + ": " + msg.status().to_string());
            else manifest = to_string(*msg);
            try_next();
          },
          kMaxManifestBytes);
    });
  };
  timer.expires_after(budget);
  timer.async_wait([&](const asio::error_code& ec) {
    if (!ec && !manifest) {
      failures.push_back("timed out");
      next = peers.size();
      host->close();
    }
  });
  asio::post(io, try_next);
  io.run_for(budget + std::chrono::seconds(5));
  if (manifest) return *manifest;
  std::string why;
  for (const auto& f : failures) why += (why.empty() ? "" : "; ") + f;
  return unavailable("could not fetch the run manifest: " + why);
}

}  // namespace noloco::node
