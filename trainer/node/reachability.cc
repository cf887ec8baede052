#include "trainer/node/reachability.h"

#include <algorithm>

namespace noloco::node {

Result<ReachabilityMode> parse_reachability_mode(const std::string& text) {
  if (text == "auto") return ReachabilityMode::kAuto;
  if (text == "public") return ReachabilityMode::kPublic;
  if (text == "private") return ReachabilityMode::kPrivate;
  return invalid_argument("--reachability must be auto, public or private, not '" + text + "'");
}

const char* reachability_name(Reachability r) {
  switch (r) {
    case Reachability::kPublic: return "public";
    case Reachability::kPrivate: return "private";
    case Reachability::kUnknown: break;
  }
  return "unknown";
}

Reachability decide_reachability(ReachabilityMode mode, const ReachabilityEvidence& e) {
  if (mode == ReachabilityMode::kPublic) return Reachability::kPublic;
  if (mode == ReachabilityMode::kPrivate) return Reachability::kPrivate;
  if (e.dialback_succeeded) return *e.dialback_succeeded ? Reachability::kPublic : Reachability::kPrivate;
  if (e.observed_ips.empty()) return Reachability::kUnknown;
  for (const auto& ip : e.observed_ips)
    if (std::find(e.own_ips.begin(), e.own_ips.end(), ip) != e.own_ips.end()) return Reachability::kPublic;
  // No NAT sits between loopback addresses: a node on 127/8 seen at another 127/8 address is
  // behind a local proxy (tools/linkemu rewrites source addresses), not behind a router.
  const auto loopback = [](const std::string& ip) { return ip.rfind("127.", 0) == 0; };
  if (!e.own_ips.empty() && std::all_of(e.own_ips.begin(), e.own_ips.end(), loopback) &&
      std::all_of(e.observed_ips.begin(), e.observed_ips.end(), loopback))
    return Reachability::kPublic;
  return Reachability::kPrivate;
}

}  // namespace noloco::node
