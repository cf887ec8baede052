// DCUtR (direct connection upgrade through relay, libp2p/specs relay/DCUtR.md), sans-IO.
//
// A dialled B through a relay. B, the inbound side, opens /libp2p/dcutr on that relayed
// connection and is the initiator here:
//   B: CONNECT{B's addrs} (starts an RTT clock) -> A: CONNECT{A's addrs} -> B: SYNC, then
//   B dials A's addrs after RTT/2 while A dials B's addrs as soon as SYNC arrives.
// The two dials meet as a TCP simultaneous open; on top of it A runs as the dialer (Noise
// initiator) and B as the listener, the roles of the relayed connection they replace.
// These classes only decide; the adapter (hole_punch.*) reads, writes, times and dials.
#pragma once

#include <optional>
#include <vector>

#include "common/clock.h"
#include "p2p/dcutr_wire.h"

namespace noloco::p2p::dcutr {

// The addresses worth a hole punch: /ip4|ip6/<ip>/tcp/<port>, neither unspecified nor relayed,
// without /p2p, duplicates removed, at most kMaxDcutrAddrs.
std::vector<Multiaddr> punchable(const std::vector<Multiaddr>& addrs);

// Our addresses as a peer behind a port-preserving NAT appears: each observed address (what
// identify peers reported), and each observed IP with each of our listen ports (the hole punch
// dials from the listen port, and a NAT that keeps source ports maps it to the same port
// outside). Then punchable().
std::vector<Multiaddr> predicted_addrs(const std::vector<Multiaddr>& observed, const std::vector<Multiaddr>& listen);

// B's side of one attempt.
class Initiator {
 public:
  explicit Initiator(std::vector<Multiaddr> own_addrs) : own_(std::move(own_addrs)) {}

  // The CONNECT body to send first; the RTT clock starts at `now`.
  Bytes start(TimePoint now);

  struct Plan {
    Bytes sync;                    // to send at once
    Duration dial_after{};         // then dial after this (half the measured RTT)
    std::vector<Multiaddr> dial;   // A's punchable addresses
  };
  // A's CONNECT body. Errors: undecodable, not a CONNECT, a reply before start(), a second
  // reply, or no punchable address in it (kUnavailable: nothing to dial, stay relayed).
  Result<Plan> on_reply(ByteView body, TimePoint now);

 private:
  enum class State { kIdle, kSent, kDone };
  std::vector<Multiaddr> own_;
  State state_ = State::kIdle;
  TimePoint sent_at_{};
};

// A's side of one attempt.
class Responder {
 public:
  explicit Responder(std::vector<Multiaddr> own_addrs) : own_(std::move(own_addrs)) {}

  // Feeds B's next message. After CONNECT: `reply` (our CONNECT) is set. After SYNC: `dial`
  // is B's punchable addresses from its CONNECT, to dial now. Errors: undecodable, out of
  // order (SYNC first, a second CONNECT, anything after SYNC).
  struct Step {
    std::optional<Bytes> reply;
    std::vector<Multiaddr> dial;
    bool done = false;  // SYNC received: the exchange is over
  };
  Result<Step> on_message(ByteView body);

 private:
  enum class State { kWaitConnect, kWaitSync, kDone };
  std::vector<Multiaddr> own_;
  std::vector<Multiaddr> peer_;
  State state_ = State::kWaitConnect;
};

}  // namespace noloco::p2p::dcutr
