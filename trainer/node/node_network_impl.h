// NodeNetworkImpl: the network-thread side of NodeNetwork (node_network.h), shared by the files
// that implement it: node_network.cc (start, gossip, reachability, the public API),
// node_network_exchange.cc (the exchange protocol) and node_network_state.cc (state sync).
// Internal to trainer/node: nothing outside these files includes it.
#pragma once

#include <asio/executor_work_guard.hpp>
#include <asio/io_context.hpp>
#include <asio/post.hpp>
#include <asio/steady_timer.hpp>

#include <atomic>
#include <chrono>
#include <future>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <thread>

#include "p2p/address_limits.h"
#include "p2p/host.h"
#include "trainer/node/address_taint.h"
#include "trainer/node/introducer_watch.h"
#include "trainer/node/node_network.h"
#include "trainer/node/peer_paths.h"
#include "trainer/node/state_serve_limits.h"
#include "trainer/node/strike_book.h"
#include "trainer/node/trickle_detector.h"

namespace noloco::node {

using Clk = std::chrono::steady_clock;

inline Status timeout_error(const std::string& what) { return Status(StatusCode::kTimeout, what); }
inline Status unavailable(const std::string& what) { return Status(StatusCode::kUnavailable, what); }

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
  void merge_gossip(const p2p::PeerId& from, ByteView msg);
  void add_event(NetworkEvent e) {
    std::lock_guard lock(mu);
    // Peer sightings come by the dozen per gossip message and only refresh the peer book: they
    // stop at a lower mark, so that strikes and the other rare events are never lost behind them
    // between two drains by the training thread (a flood once crowded out strikes that way).
    const size_t cap = e.kind == NetworkEvent::Kind::kPeerSeen ? 512 : 4096;
    if (events.size() < cap) events.push_back(std::move(e));
  }
  void strike_local(const p2p::PeerId& peer, const std::string& why, double weight = kProofStrike);
  // Tainted addresses (address_taint.h): the buckets `peer` is directly connected from now, or
  // last answered us on; a ban recorded against them; a peer banned for its address.
  std::vector<std::string> direct_buckets(const p2p::PeerId& peer) const;
  void note_origin(const p2p::PeerId& peer);
  void on_ban(const p2p::PeerId& peer);
  void judge_address(const p2p::PeerId& peer);
  // Resets the streams a peer we just banned still holds to us (node_network_state.cc).
  void drop_streams_of(const p2p::PeerId& peer);
  struct StateServing;
  void serve_state_request(std::shared_ptr<p2p::HostStream> s, std::shared_ptr<StateServing> serving);
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
  // A gossip dial to a hearsay record failed or answered: held against or for its introducer.
  void judge_introduction(const p2p::PeerRecord& rec, const p2p::PeerId& introducer, bool answered);

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
  IntroducerWatch introductions;                  // hearsay nobody answers at, per introducer
  p2p::AddressLimiter buckets{opt.host.address_limits};  // only its bucket_of: the host's own limits
  AddressTaint<p2p::PeerId> taint;                 // addresses two banned identities came from
  std::set<p2p::PeerId> taint_reported;            // banned for their address (an event each, once)
  std::map<p2p::PeerId, std::string> origins;      // address bucket a verified peer last spoke from
  static constexpr size_t kFeelersPerTick = 2, kMaxFelt = 4096;
  std::set<p2p::PeerId> felt;                     // hearsay records dialled once as feelers
  // Every peer the view has held, kept after the view forgets it (the in-memory side of the
  // peer book): a node cut off for longer than forget_after, whose bootstrap is gone, finds the
  // swarm again through these.
  std::map<p2p::PeerId, p2p::PeerRecord> remembered;
  static constexpr uint64_t kRejoinEvery = 4;  // gossip ticks (2 s at the default interval)
  size_t rejoin_next = 0;                      // pick_rejoin's cursor

  // Network-thread state.
  std::shared_ptr<const WirePayload> exchange_payload;
  // Since start no payload published and no progress advertised: the only time we answer
  // kRefusalNoPayloadYet (callers strike that refusal at two claimed steps, claim_watch.h).
  bool fresh = true;
  std::shared_ptr<const StateSnapshot> state;
  std::set<p2p::PeerId> banned;
  std::map<p2p::PeerId, std::weak_ptr<p2p::HostStream>> inbound_exchanges;  // payloads being received
  StateStreamLimiter<p2p::PeerId> state_streams{opt.state_serve};          // state streams being served
  std::multimap<p2p::PeerId, std::weak_ptr<p2p::HostStream>> state_served;  // the same, reset on a ban

  // Shared with the training thread.
  std::mutex mu;
  std::map<p2p::PeerId, ReceivedPayload> inbox;
  std::vector<NetworkEvent> events;
  std::atomic<uint64_t> ex_out{0}, ex_in{0}, st_out{0}, st_in{0}, served{0};
  std::atomic<size_t> connections{0};  // sampled on the network thread at each gossip tick
  std::atomic<bool> stopped{false};
};

// One exchange_with call (node_network_exchange.cc).
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

}  // namespace noloco::node
