// `noloco doctor`'s network rules (docs/doctor.md): reachability from outside (AutoNAT
// dial-backs), the NAT's mapping (identify's observed addresses) and the clock offset to peers
// (/noloco/time/1.0.0). Facts in, one Verdict out (doctor_checks.h); p2p/probe_tool.h gathers
// the facts, cmd_doctor.cc turns them into these plain structs.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "cli/doctor_checks.h"

namespace noloco::cli::doctor {

// Where doctor listened while it asked for dial-backs.
struct ListenFacts {
  std::string listened;     // the bound address, e.g. /ip4/0.0.0.0/tcp/4001
  std::string node_listen;  // the node's listen address (what doctor tried first)
  bool temporary_port = false;  // the node's port was taken (the node runs?): a temporary one instead
};

// One peer's answer to an AutoNAT dial-back request.
struct DialbackFacts {
  enum class Outcome { kUnreachablePeer, kNotOffered, kReached, kDialError, kRefused, kFailed };
  std::string peer;  // the peer's address as given
  Outcome outcome = Outcome::kUnreachablePeer;
  std::string detail;  // kReached: the address it reached; else the peer's text or our error
};
Verdict check_reachability(const ListenFacts& listen, const std::vector<DialbackFacts>& answers);

// What one peer's identify says it sees: this machine's IP and port, and whether our connection
// left from the listen port (only then does the port say how the NAT maps that port).
struct ObservedFacts {
  std::string peer;
  std::string ip;
  uint16_t port = 0;
  bool from_listen_port = false;
};
struct NatFacts {
  uint16_t listen_port = 0;
  std::vector<std::string> local_ips;  // this machine's addresses (127/8 always counts as local)
  std::vector<ObservedFacts> seen;     // peers that reported an observed address
};
Verdict check_nat(const NatFacts& f);

// One peer's clock sample (p2p/time_wire.h), or why there is none.
struct ClockFacts {
  std::string peer;
  bool offered = false;  // the peer lists /noloco/time/1.0.0
  std::optional<int64_t> offset_ms, error_ms;
  std::string error;
};
// |offset| beyond this, after subtracting the measurement's error bound, warns: NTP keeps clocks
// within tens of milliseconds, so this much means no NTP.
inline constexpr int64_t kClockWarnMs = 2000;
// The lifetime of a relay reservation (p2p/relay_hop.h, reservation_ttl): its expiry travels as
// the relay's Unix time, so an offset this large makes a NATed node lose its relay slot.
inline constexpr int64_t kClockFailMs = 3600 * 1000;
Verdict check_clock(const std::vector<ClockFacts>& samples);

}  // namespace noloco::cli::doctor
