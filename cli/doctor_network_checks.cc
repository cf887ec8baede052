// The network rules of `noloco doctor` (doctor_network_checks.h).
#include "cli/doctor_network_checks.h"

#include <algorithm>
#include <cstdio>
#include <set>

namespace noloco::cli::doctor {
namespace {

using Outcome = DialbackFacts::Outcome;

std::string port_of(const std::string& addr) {
  const auto at = addr.find("/tcp/");
  if (at == std::string::npos) return "?";
  const auto end = addr.find('/', at + 5);
  return addr.substr(at + 5, end == std::string::npos ? std::string::npos : end - at - 5);
}

// "on the node's port 4001" or "on a temporary port 39211 (4001 is taken: is the node running?)"
std::string where(const ListenFacts& l) {
  if (l.node_listen.empty()) return "on port " + port_of(l.listened) + " (no --listen given: any free port)";
  if (!l.temporary_port && port_of(l.node_listen) == "0")
    return "on port " + port_of(l.listened) + " (the node's --listen has port 0: any free port)";
  if (!l.temporary_port) return "on the node's port " + port_of(l.listened);
  return "on a temporary port " + port_of(l.listened) + " (the node's port " + port_of(l.node_listen) +
         " is taken: is the node running?)";
}

size_t count(const std::vector<DialbackFacts>& a, Outcome o) {
  return static_cast<size_t>(std::count_if(a.begin(), a.end(), [o](const DialbackFacts& d) { return d.outcome == o; }));
}

std::string join_details(const std::vector<DialbackFacts>& a, Outcome o) {
  std::string out;
  for (const auto& d : a)
    if (d.outcome == o) out += (out.empty() ? "" : "; ") + d.peer + ": " + d.detail;
  return out;
}

bool is_local(const NatFacts& f, const std::string& ip) {
  return ip.rfind("127.", 0) == 0 || ip == "::1" || std::find(f.local_ips.begin(), f.local_ips.end(), ip) != f.local_ips.end();
}

std::string signed_ms(int64_t ms) {
  char buf[48];
  if (ms > -10000 && ms < 10000) std::snprintf(buf, sizeof buf, "%+lld ms", static_cast<long long>(ms));
  else std::snprintf(buf, sizeof buf, "%+.1f s", ms / 1000.0);
  return buf;
}

}  // namespace

Verdict check_reachability(const ListenFacts& l, const std::vector<DialbackFacts>& a) {
  Verdict v{Level::kSkip, "reachability", "", ""};
  const size_t unreachable = count(a, Outcome::kUnreachablePeer), not_offered = count(a, Outcome::kNotOffered);
  const size_t asked = a.size() - unreachable - not_offered;
  if (a.empty()) {
    v.what = "no peer to ask for a dial-back";
    v.fix = "give --join addresses, or run doctor on a machine with a joined run (noloco join)";
    return v;
  }
  if (asked == 0) {
    v.what = unreachable == a.size()
                 ? "no peer could be dialled to ask for a dial-back (see the peer lines)"
                 : std::to_string(a.size() - unreachable) + " reachable peer(s), none offers AutoNAT dial-backs "
                   "(/libp2p/autonat/1.0.0: an older noloco)";
    return v;
  }
  const std::string of = " of " + std::to_string(asked) + " peer(s) asked";
  if (const size_t reached = count(a, Outcome::kReached); reached > 0) {
    v.level = Level::kOk;
    const auto first = std::find_if(a.begin(), a.end(), [](const DialbackFacts& d) { return d.outcome == Outcome::kReached; });
    v.what = std::to_string(reached) + of + " dialled this machine back at " + first->detail + ", " + where(l) +
             ": peers outside can connect directly";
    if (l.temporary_port)
      v.what += "; the node's own port was not tested (a port forward for it would need the node stopped)";
    return v;
  }
  if (const size_t failed = count(a, Outcome::kDialError); failed > 0) {
    v.level = Level::kWarn;
    v.what = std::to_string(failed) + of + " tried to dial this machine back " + where(l) + " and could not (" +
             join_details(a, Outcome::kDialError) + "): peers cannot connect to this node directly; it still "
             "trains, because the node reserves a slot on a relay by itself, but its exchanges then run through "
             "the relay (slower)";
    const std::string port = port_of(l.node_listen);  // the node's, which is what peers must reach
    const bool fixed = port != "0" && port != "?";
    v.fix = (fixed ? "forward TCP port " + port : "give the node a fixed --listen port, forward that TCP port") +
            " on the router to this machine (and allow it in the firewall), then set --announce to the public "
            "address; or rely on the relay";
    return v;
  }
  v.what = "no dial-back was made " + where(l) + ": " + join_details(a, Outcome::kRefused) +
           (count(a, Outcome::kRefused) && count(a, Outcome::kFailed) ? "; " : "") + join_details(a, Outcome::kFailed);
  v.fix = "try again later (servers limit dial-backs per minute), or with other --join peers";
  return v;
}

Verdict check_nat(const NatFacts& f) {
  Verdict v{Level::kSkip, "nat", "", ""};
  std::vector<ObservedFacts> direct, translated;
  for (const auto& s : f.seen) {
    if (!s.from_listen_port) continue;  // an ephemeral source port says nothing about the mapping
    (is_local(f, s.ip) && s.port == f.listen_port ? direct : translated).push_back(s);
  }
  const std::string lp = std::to_string(f.listen_port);
  if (direct.empty() && translated.empty()) {
    v.what = f.seen.empty() ? "no peer reported how it sees this machine (identify's observed address)"
                            : "no connection left from the listen port, so the observed ports say nothing about the mapping";
    return v;
  }
  if (translated.empty()) {
    v.level = Level::kOk;
    v.what = "no NAT: " + std::to_string(direct.size()) + " peer(s) see this machine at its own address " +
             direct.front().ip + ":" + lp;
    return v;
  }
  std::set<std::string> ips, endpoints;
  for (const auto& s : translated) {
    ips.insert(s.ip);
    endpoints.insert(s.ip + ":" + std::to_string(s.port));
  }
  std::string list;
  for (const auto& s : translated) list += (list.empty() ? "" : ", ") + s.peer + " sees " + s.ip + ":" + std::to_string(s.port);
  const std::string based = " (" + std::to_string(translated.size()) + " peer(s): " + list + ")";
  if (translated.size() < 2) {
    v.what = "behind a NAT" + based + "; its mapping type needs the observed port from at least 2 peers";
    v.fix = "give a second --join peer";
    return v;
  }
  if (endpoints.size() == 1) {
    v.level = Level::kOk;
    v.what = "endpoint-independent NAT: every peer sees the listen port " + lp + " as " + *endpoints.begin() +
             (translated.front().port == f.listen_port ? " (port preserved)" : "") +
             ", so hole punching can give direct connections" + based;
    return v;
  }
  v.level = Level::kWarn;
  if (ips.size() > 1) {
    v.what = "peers see this machine at different IPs" + based + ": several NATs or uplinks, so hole punching is "
             "unlikely to work and peers behind NATs reach this node through a relay only";
  } else {
    v.what = "symmetric NAT: each peer sees the listen port " + lp + " mapped to a different port" + based +
             ", so hole punching cannot work and peers behind NATs reach this node through a relay only";
  }
  v.fix = "forward TCP port " + lp + " on the router and set --announce (then no hole punch is needed), or rely on "
          "the relay, which the node reserves by itself";
  return v;
}

Verdict check_clock(const std::vector<ClockFacts>& samples) {
  Verdict v{Level::kSkip, "clock", "", ""};
  std::vector<const ClockFacts*> got;
  std::string errors;
  size_t offered = 0;
  for (const auto& s : samples) {
    offered += s.offered;
    if (s.offset_ms && s.error_ms) got.push_back(&s);
    else if (s.offered) errors += (errors.empty() ? "" : "; ") + s.peer + ": " + (s.error.empty() ? "no answer" : s.error);
  }
  if (got.empty()) {
    v.what = samples.empty() ? "no peer to compare clocks with"
             : offered == 0  ? "none of the reachable peers serves /noloco/time/1.0.0 (an older noloco)"
                             : "no peer answered the time request: " + errors;
    v.fix = samples.empty() ? "give --join addresses, or run doctor on a machine with a joined run" : "";
    return v;
  }
  // The median resists one peer with a wrong clock; its error bound goes with it.
  std::sort(got.begin(), got.end(), [](auto* x, auto* y) { return *x->offset_ms < *y->offset_ms; });
  const ClockFacts& mid = *got[got.size() / 2];
  const int64_t off = *mid.offset_ms, err = *mid.error_ms;
  const int64_t least = std::max<int64_t>(0, (off < 0 ? -off : off) - err);  // |offset| at least this
  v.what = "peers' clocks minus this machine's: " + signed_ms(off) + " (±" + std::to_string(err) +
           " ms, half the round trip; median of " + std::to_string(got.size()) + " peer(s)";
  if (got.size() > 1)
    v.what += ", from " + signed_ms(*got.front()->offset_ms) + " to " + signed_ms(*got.back()->offset_ms);
  v.what += ")";
  v.level = Level::kOk;
  if (least >= kClockFailMs) {
    v.level = Level::kFail;
    v.what += ": relay reservations expire at the relay's Unix time after 1 h, so with this offset a node "
              "behind a NAT loses its relay slot and peers cannot reach it";
  } else if (least > kClockWarnMs) {
    v.level = Level::kWarn;
    v.what += ": more than NTP allows; training does not depend on it (membership times heartbeats on each "
              "node's own clock), but logs, metrics and status times of different machines will not line up, "
              "and at 1 h relay reservations break";
  }
  if (v.level != Level::kOk)
    v.fix = "turn NTP on (timedatectl set-ntp true; timedatectl status shows 'System clock synchronized: yes') "
            "here or on the peers that differ";
  return v;
}

}  // namespace noloco::cli::doctor
