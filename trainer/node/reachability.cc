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

namespace {

bool is_loopback(const std::string& ip) { return ip.rfind("127.", 0) == 0 || ip == "::1"; }

std::string joined(const std::vector<std::string>& ips) {
  std::string out;
  for (const auto& ip : ips) out += (out.empty() ? "" : ",") + ip;
  return out;
}

std::string votes(size_t n) { return std::to_string(n) + (n == 1 ? " peer" : " peers"); }

}  // namespace

ReachabilityVerdict judge_reachability(ReachabilityMode mode, const ReachabilityEvidence& e) {
  using R = Reachability;
  if (mode == ReachabilityMode::kPublic) return {R::kPublic, "flag", "--reachability public"};
  if (mode == ReachabilityMode::kPrivate) return {R::kPrivate, "flag", "--reachability private"};
  const bool loopback_only = !e.own_ips.empty() && std::all_of(e.own_ips.begin(), e.own_ips.end(), is_loopback);
  if (e.dialback_succeeded && *e.dialback_succeeded)
    return {R::kPublic, "dialback", "dial-back: " + votes(e.dialback_votes) + " reached our listen address (AutoNAT)"};
  if (e.dialback_succeeded && !loopback_only)
    return {R::kPrivate, "dialback", "dial-back: " + votes(e.dialback_votes) + " could not reach our listen address (AutoNAT)"};
  if (e.observed_ips.empty()) return {R::kUnknown, "none", "no peer has dialled us back or told us our address yet"};
  for (const auto& ip : e.observed_ips)
    if (std::find(e.own_ips.begin(), e.own_ips.end(), ip) != e.own_ips.end())
      return {R::kPublic, "observed", "peers saw us at our own IP " + ip};
  // No NAT sits between loopback addresses: a node on 127/8 seen at another 127/8 address is
  // behind a local proxy (tools/linkemu rewrites source addresses), not behind a router.
  if (loopback_only && std::all_of(e.observed_ips.begin(), e.observed_ips.end(), is_loopback))
    return {R::kPublic, "observed", "loopback: peers saw us at " + joined(e.observed_ips) + " (a local proxy, not a NAT)"};
  return {R::kPrivate, "observed", "peers saw us only at " + joined(e.observed_ips) + ", not at our own IPs (a NAT rewrote our source)"};
}

}  // namespace noloco::node
