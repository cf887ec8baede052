// Whether peers can dial this node directly: the answer decides whether the node reserves a slot
// on a relay and advertises a /p2p-circuit address (docs/node.md, "Reachability and relays").
// Sans-IO: observations in, a verdict out.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "common/status.h"

namespace noloco::node {

// What `--reachability` asks for. kAuto judges from what peers tell us (observed_ips below).
enum class ReachabilityMode { kAuto, kPublic, kPrivate };
enum class Reachability { kUnknown, kPublic, kPrivate };

Result<ReachabilityMode> parse_reachability_mode(const std::string& text);  // auto|public|private
const char* reachability_name(Reachability r);                               // unknown|public|private

// Everything the verdict may rest on.
struct ReachabilityEvidence {
  // The IPs of our own listen and announce addresses (for a 0.0.0.0 listener: the interfaces').
  std::vector<std::string> own_ips;
  // The IPs peers saw our direct connections come from (identify's observedAddr; relayed
  // connections carry none). The port is left out: an outbound connection's port is ephemeral.
  std::vector<std::string> observed_ips;
  // AutoNAT's verdict (docs/protocols/autonat.md): peers we asked to dial our listen address
  // back succeeded (true) or failed (false); unset while no verdict. When set it wins over the
  // observed-address heuristic -- except a failure on a node whose own IPs are all loopback:
  // no NAT sits there, so a failed dial-back means something else (the server's limits, a
  // local proxy in between) and the observed addresses decide.
  std::optional<bool> dialback_succeeded;
  size_t dialback_votes = 0;  // servers behind the verdict, for the explanation
};

// The verdict and why, in a few words for `noloco status` and the `reachability` event.
struct ReachabilityVerdict {
  Reachability reachability = Reachability::kUnknown;
  const char* basis = "none";  // flag|dialback|observed|none: which evidence decided
  std::string why;
};

// The one place the node's reachability is decided. kAuto: public when a dial-back succeeded, or
// when a peer saw us at one of our own IPs; private when a dial-back failed, or when peers saw us
// only at other IPs (a NAT rewrote our source) -- except on loopback, where another 127/8 address
// is a local proxy such as tools/linkemu, never a NAT: public; unknown before any evidence.
ReachabilityVerdict judge_reachability(ReachabilityMode mode, const ReachabilityEvidence& evidence);
inline Reachability decide_reachability(ReachabilityMode mode, const ReachabilityEvidence& evidence) {
  return judge_reachability(mode, evidence).reachability;
}

}  // namespace noloco::node
