// The training node's network side: one p2p Host on its own network thread, serving and using
// the node's protocols (docs/protocols/):
//   /noloco/run/1.0.0         serve the run manifest
//   /noloco/membership/1.0.0  gossip of signed peer records; the live view partners come from
//   /noloco/exchange/1.0.0    one outer-step exchange of payloads with one partner
//   /noloco/state/1.0.0       serve / download the current slow weights
//   /noloco/allreduce/1.0.0   ring all-reduce among the members at one outer step (DiLoCo baseline)
//
// Threading (docs/architecture.md, "Threads"): every p2p object lives on the network thread. The training
// thread calls the methods below; they post to that thread and, where they return a result,
// wait on a future with a bounded deadline. Nothing here runs torch or RocksDB.
//
// The payload bytes exchanged are built and checked numerically by the trainer side
// (node_payload.h); here they are only framed, size- and hash-checked (exchange_wire.h).
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/bytes.h"
#include "common/clock.h"
#include "common/status.h"
#include "p2p/host_options.h"
#include "p2p/identity.h"
#include "p2p/membership.h"
#include "p2p/multiaddr.h"
#include "trainer/node/allreduce_service.h"
#include "trainer/node/exchange_wire.h"
#include "trainer/node/nat_view.h"
#include "trainer/node/reachability.h"
#include "trainer/node/relay_keeper.h"
#include "trainer/node/state_serve_limits.h"
#include "trainer/node/state_wire.h"
#include "trainer/node/strike_book.h"
#include "trainer/node/trickle_detector.h"

namespace noloco::node {

struct NetworkOptions {
  std::optional<p2p::Identity> identity;  // required
  p2p::HostOptions host;
  p2p::Multiaddr listen;                  // port 0: any
  std::optional<p2p::Multiaddr> announce;  // address others should dial (default: the bound one)
  std::vector<p2p::Multiaddr> bootstrap;   // --join addresses and peer-book addresses (with /p2p/)
  std::string run_id;
  std::string manifest_json;               // served on /noloco/run/1.0.0
  codec::Mode allreduce_encoding = codec::Mode::kFp32;  // DiLoCo's ring: the run's codec
  // How long DiLoCo's barrier waits for every member's READY before it rings with those there
  // (the node sets it to the whole all-reduce budget: a barrier waits for the slowest member).
  Duration allreduce_gather_timeout = std::chrono::seconds(5);
  ExchangeExpectations expect;             // for every payload we receive (sender filled per peer)
  Duration gossip_interval = std::chrono::milliseconds(500);
  p2p::MembershipOptions membership;
  size_t max_inbox = 8;                    // callers' payloads kept for our next outer step
  // Inbound exchange streams: at most this many payloads being received at once (one per peer),
  // and a stream that moves no byte either way for exchange_idle_timeout is reset.
  size_t max_inbound_exchanges = 16;
  Duration exchange_idle_timeout = std::chrono::seconds(30);
  std::vector<p2p::PeerId> banned;         // from the store: not answered, not chosen
  // State sync: each response (at most one 1 MiB chunk) must arrive within this, or the server
  // is dropped as stalled (an endlessly slow server cannot hold a download for its whole budget).
  Duration state_stall_timeout = std::chrono::seconds(20);
  // State streams served at once, per peer and in all (state_serve_limits.h); one request is
  // answered at a time per stream, and an answer the client does not take within
  // exchange_idle_timeout resets the stream (no strike).
  StateServeLimits state_serve;
  // What counts as a deliberate trickle on a message we read (trickle_detector.h): struck (proof)
  // and the stream dropped, on exchange and state streams both ways.
  TrickleLimits trickle;
  uint64_t seed = 0;                       // gossip-target choice
  // Reachability and relays (docs/node.md, "Reachability and relays"): a node that is not
  // publicly reachable reserves slots on public peers and advertises its /p2p-circuit addresses;
  // every node but a --reachability private one relays for others (node_relay_options()).
  ReachabilityMode reachability = ReachabilityMode::kAuto;
  bool relay_service = true;
  RelayKeeperOptions relays;
  // AutoNAT (docs/protocols/autonat.md): serve dial-backs for peers, and under kAuto ask the
  // peers we hold direct connections to to dial us back, every autonat_recheck once a verdict
  // stands (autonat_retry while none does); their verdict outranks the observed addresses.
  bool autonat = true;
  Duration autonat_retry = std::chrono::seconds(5);
  Duration autonat_recheck = std::chrono::minutes(2);
  // DCUtR (docs/protocols/dcutr.md): a relayed connection is upgraded to a direct one by a hole
  // punch when both NATs allow it; the relay keeps carrying the traffic when it fails.
  bool hole_punch = true;
};

// The relay limits a node serves with: large enough that a training exchange and a state sync
// fit in one circuit (the libp2p defaults, 2 min and 128 KiB, are for hole punching only).
p2p::relay::RelayOptions node_relay_options();

// A payload a peer sent us, checked for structure, sizes, hashes and sender identity.
struct ReceivedPayload {
  p2p::PeerId peer;
  Payload payload;
};

struct ExchangeOutcome {
  std::optional<ReceivedPayload> partner;  // none: every try failed or nobody was live
  std::vector<std::string> failures;       // "<peer>: <why>" per failed try
  bool no_payload_yet = false;             // the partner refused with kRefusalNoPayloadYet
  double seconds = 0;
  uint64_t bytes_received = 0;  // the partner's payload (bytes sent are in NodeNetwork::traffic())
};

// What the training thread publishes for others after each outer step.
struct StateSnapshot {
  Bytes blob;  // the state-sync blob (node_payload.h)
  Bytes sha256;
  uint64_t outer_step = 0, inner_step = 0;
};

struct StateFetched {
  p2p::PeerId peer;
  Bytes blob;
  uint64_t outer_step = 0, inner_step = 0;
  uint64_t resumed_from = 0;              // bytes already held when this call started
  uint64_t chunk_bytes = 0;               // snapshot bytes received in this call
  std::vector<uint64_t> stream_offsets;   // where each stream of this call started
};

// A few ranges of a peer's current state snapshot, to cross-check a snapshot fetched from
// another peer (trainer/node/state_check.h).
struct StateSample {
  p2p::PeerId peer;
  Bytes sha256;  // of the snapshot the ranges came from; empty when the peer republished mid-probe
  uint64_t outer_step = 0, total_bytes = 0;
  std::vector<Bytes> chunks;  // one per requested range, in order
};

// Something the training thread should record in the store (the network thread cannot).
struct NetworkEvent {
  // kReachability: detail is the new verdict, basis and why what it rests on. kRelay: detail is
  // "reserved" or "failed: why", peer the relay, addrs our circuit address (reserved). kPath:
  // peer's connection path changed to detail (peer_paths.h).
  enum class Kind { kBadPayload, kPeerSeen, kReachability, kRelay, kPath } kind;
  p2p::PeerId peer;
  std::string detail;
  std::vector<std::string> addrs;  // kPeerSeen
  std::string basis = {}, why = {};  // kReachability
  double weight = kProofStrike;      // kBadPayload: the strike it is worth (strike_book.h)
};

struct TrafficTotals {
  uint64_t exchange_out = 0, exchange_in = 0;  // payload bytes (above Noise/yamux)
  uint64_t state_out = 0, state_in = 0;
  uint64_t exchanges_served = 0;
  size_t connections = 0;  // p2p connections as of the last gossip tick
};

class NodeNetworkImpl;

class NodeNetwork {
 public:
  // Listens, starts the network thread and the gossip timer.
  static Result<std::unique_ptr<NodeNetwork>> start(NetworkOptions options);
  ~NodeNetwork();  // stop()

  const p2p::PeerId& peer_id() const;
  p2p::Multiaddr listen_addr() const;  // the announced address, with /p2p/
  p2p::Multiaddr bound_addr() const;   // where the socket actually listens, with /p2p/

  // Our progress, for our membership record.
  void set_progress(uint64_t outer_step, double tokens_per_sec);
  // The payload we answer inbound exchanges with (our latest completed outer step).
  void publish_exchange_payload(std::shared_ptr<const WirePayload> payload);
  void publish_state(std::shared_ptr<const StateSnapshot> snapshot);

  // Blocking: one exchange try of `encoded_payload` with `partner` (chosen by the node core),
  // ending with a well-formed answer, a failure, or `budget` spent. The answer's staleness is the
  // core's to judge.
  ExchangeOutcome exchange_with(const p2p::PeerRecord& partner, std::shared_ptr<const WirePayload> payload,
                                Duration budget);
  // Callers' payloads received since the last call, newest per peer.
  std::vector<ReceivedPayload> take_inbox();
  // Blocking: downloads the state snapshot of `peer`, resuming within `budget` after a broken
  // stream. A download that fails part-way is kept (never handed out): the next call, to this or
  // another peer serving the same snapshot (same SHA-256), continues from the bytes already held;
  // a peer whose snapshot differs answers "snapshot changed" and the download starts over from it.
  Result<StateFetched> fetch_state(const p2p::PeerRecord& peer, uint64_t max_bytes, Duration budget);
  // Bytes of a partial download kept for the next fetch_state (0: none).
  uint64_t partial_state_bytes() const;
  // Blocking: the byte ranges (offset, length) of `peer`'s current snapshot, all from one
  // snapshot (its SHA-256 pinned after the first answer), within `budget`.
  Result<StateSample> probe_state(const p2p::PeerRecord& peer, const std::vector<std::pair<uint64_t, uint32_t>>& ranges,
                                  Duration budget);

  std::vector<p2p::PeerRecord> live_peers();
  // The same, with whether each record is verified (it came from that peer itself) and the address
  // bucket its own connection came from when it last did ("" unknown, or exempt loopback):
  // identities sharing one are one vantage point, however many there are (a Sybil's).
  struct LiveRecord {
    p2p::PeerRecord record;
    bool verified = false;
    std::string origin;
  };
  std::vector<LiveRecord> live_peers_verified();
  // Of `peers`, those our connection to runs through a relay right now.
  std::vector<p2p::PeerId> relayed(const std::vector<p2p::PeerId>& peers);
  // What the node concluded about itself, and the circuit addresses it advertises.
  Reachability reachability() const;
  std::vector<std::string> circuit_addrs();
  // Reachability and why, reservations and peer paths as of the last gossip tick (cheap: a copy
  // under a lock, for every progress sample).
  NatView nat_view() const;
  std::vector<NetworkEvent> take_events();
  // Neither answers nor lets in `peer` from now on (the node core decided on a ban).
  void ban(const p2p::PeerId& peer);
  TrafficTotals traffic() const;
  // The all-reduce over this node's host (docs/protocols/allreduce.md); call it from the
  // training thread.
  AllReduceService& allreduce();

  // Says GoAway to every peer and joins the network thread. Idempotent.
  void stop();

 private:
  explicit NodeNetwork(std::shared_ptr<NodeNetworkImpl> impl);
  std::shared_ptr<NodeNetworkImpl> impl_;
  std::unique_ptr<StateDownload> partial_state_;  // training thread only, between fetch_state calls
};

// Fetches the run manifest (JSON text) from the first of `peers` that serves it, with a
// temporary host; the caller checks its hash against the run id it was given.
Result<std::string> fetch_run_manifest(const p2p::Identity& identity, const p2p::HostOptions& host,
                                       const std::vector<p2p::Multiaddr>& peers, Duration budget);

}  // namespace noloco::node
