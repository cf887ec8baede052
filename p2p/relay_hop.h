// The relay side of circuit relay v2 (the "hop" protocol), sans-IO: reservations, circuit
// admission and per-circuit accounting. The Asio adapter (relay_service.cc) reads one
// HopMessage per stream, asks this core what to do, opens the stop stream it names, and
// moves the relayed bytes while the core counts them. Time comes in as arguments (steady time
// for limits, Unix seconds for the expiry we announce), so tests move it by hand.
//
// Limits (RelayOptions), each refused with the spec's status code:
//   - reservations: at most max_reservations peers hold one at a time; a peer may be granted
//     (reserve or refresh) at most max_reservations_per_peer times per reservation_ttl
//     (RESERVATION_REFUSED beyond either); at most max_reservations_per_ip peers reserve from one
//     address (an IPv4 address or an IPv6 /64, loopback exempt as in p2p/address_limits.h), so
//     identities minted on one machine cannot take every slot (a Sybil).
//   - circuits: at most max_circuits open, at most max_circuits_per_peer with one peer as source
//     or target (RESOURCE_LIMIT_EXCEEDED); CONNECT to a peer without a live reservation gets
//     NO_RESERVATION.
//   - per circuit: circuit_duration and circuit_data_bytes (per direction); the adapter closes
//     the circuit when on_data or expired says so, after forwarding exactly the allowed bytes.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <unordered_map>
#include <vector>

#include "common/clock.h"
#include "p2p/address_limits.h"
#include "p2p/relay_wire.h"

namespace noloco::p2p::relay {

struct RelayOptions {
  Duration reservation_ttl = std::chrono::hours(1);
  size_t max_reservations = 128;
  size_t max_reservations_per_peer = 4;
  size_t max_reservations_per_ip = 8;  // peers holding a reservation from one address bucket
  bool limit_loopback = false;         // tests of the per-IP cap set it (AddressLimitOptions)
  size_t max_circuits = 64;
  size_t max_circuits_per_peer = 8;
  // Limit announced for, and enforced on, every circuit (defaults as go-libp2p and js-libp2p:
  // 2 minutes, 128 KiB per direction). 0: unlimited on that axis.
  Duration circuit_duration = std::chrono::minutes(2);
  uint64_t circuit_data_bytes = 128u << 10;

  Status validate() const;
};

enum class Direction { kSourceToTarget, kTargetToSource };

class RelayHop {
 public:
  explicit RelayHop(RelayOptions options)
      : opt_(std::move(options)), buckets_(bucket_rules(opt_.limit_loopback)) {}

  // What to do with one HopMessage received from `from`.
  struct Decision {
    // Write `reply` on the hop stream; if `close` the stream then ends (every reply except a
    // successful CONNECT, whose stream becomes the circuit after the stop side accepts).
    std::optional<HopMessage> reply;
    // Set for an admitted CONNECT: open a stop stream to `target`, send `stop`, then pass the
    // stop reply to on_stop_reply(circuit, ...).
    uint64_t circuit = 0;
    std::optional<PeerId> target;
    std::optional<StopMessage> stop;
  };
  // body: the protobuf, already unframed (framing errors are the adapter's: it resets).
  // relay_addrs: our public addresses to hand out in a reservation (with /p2p/<us>).
  // from_ip: the IP the hop stream's connection came from (empty: unknown, not capped per IP).
  Decision on_hop(const PeerId& from, ByteView body, TimePoint now, uint64_t unix_now,
                  const std::vector<Multiaddr>& relay_addrs, const std::string& from_ip = {});

  // The target's answer on the stop stream (or why none came). Returns the reply for the
  // source: OK with the limit (the circuit is live), or CONNECTION_FAILED (circuit dropped).
  HopMessage on_stop_reply(uint64_t circuit, const Result<StopMessage>& reply, TimePoint now);

  // Relayed bytes: how many of `n` may be forwarded, and whether the circuit must then close.
  struct DataVerdict {
    size_t forward = 0;
    bool close = false;
  };
  DataVerdict on_data(uint64_t circuit, Direction dir, size_t n, TimePoint now);
  // True once the circuit has outlived circuit_duration (the adapter's timer asks).
  bool expired(uint64_t circuit, TimePoint now) const;
  std::optional<TimePoint> deadline(uint64_t circuit) const;
  // The adapter closed the circuit (either side, any reason). Unknown ids are ignored.
  void on_circuit_closed(uint64_t circuit);

  // Drops reservations (and per-peer grant records) past their expiry.
  void expire(TimePoint now);

  bool has_reservation(const PeerId& peer, TimePoint now) const;
  size_t reservation_count() const { return reservations_.size(); }
  // Live reservations whose holder reserved from `ip`'s address bucket.
  size_t reservations_from(const std::string& ip) const;
  size_t circuit_count() const { return circuits_.size(); }
  RelayLimit limit() const;

 private:
  struct Circuit {
    PeerId source;
    PeerId target;
    bool live = false;
    TimePoint started{};
    uint64_t bytes[2] = {0, 0};
  };
  static AddressLimitOptions bucket_rules(bool limit_loopback) {
    AddressLimitOptions o;
    o.limit_loopback = limit_loopback;
    return o;
  }
  struct Held {
    TimePoint expiry{};
    std::string bucket;  // AddressLimiter::bucket_of the reserving IP; empty: not capped
  };
  Decision reserve(const PeerId& from, TimePoint now, uint64_t unix_now, const std::vector<Multiaddr>& relay_addrs,
                   const std::string& bucket);
  Decision connect(const PeerId& from, const HopMessage& msg, TimePoint now);
  size_t circuits_of(const PeerId& peer) const;
  static Decision reply(RelayStatus s);

  RelayOptions opt_;
  AddressLimiter buckets_;                                      // only for bucket_of
  std::unordered_map<PeerId, Held> reservations_;
  std::unordered_map<PeerId, std::vector<TimePoint>> grants_;   // peer -> expiry of each grant
  std::map<uint64_t, Circuit> circuits_;
  uint64_t next_circuit_ = 1;
};

}  // namespace noloco::p2p::relay
