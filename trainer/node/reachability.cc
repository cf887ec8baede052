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
  return Reachability::kPrivate;
}

}  // namespace noloco::node
