// The swarm simulator's trace, counters, JSON output and config checks (swarm_sim_trace.h).
#include <algorithm>
#include <cmath>
#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <string_view>

#include "trainer/node/swarm_sim_trace.h"

namespace noloco::node {
namespace {

std::string micros(double t) { return std::to_string(std::llround(t * 1e6)); }

template <typename T>
std::string list(const std::vector<T>& v) {
  std::string out = "[";
  for (size_t k = 0; k < v.size(); ++k) out += (k ? "," : "") + std::to_string(v[k]);
  return out + "]";
}

const char* notice_name(Notice::Kind k) {
  switch (k) {
    case Notice::Kind::kStale: return "stale";
    case Notice::Kind::kRefused: return "refused";
    case Notice::Kind::kBanned: return "banned";
    case Notice::Kind::kStateSync: return "state_sync";
    case Notice::Kind::kStateSyncFailed: return "state_sync_failed";
    case Notice::Kind::kUnchanged: return "unchanged";
  }
  return "?";
}

// Nearest rank on the sorted values.
double percentile(const std::vector<double>& sorted, double q) {
  if (sorted.empty()) return 0;
  return sorted[static_cast<size_t>(q * static_cast<double>(sorted.size() - 1))];
}

std::string fixed(double x, int digits = 6) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", digits, x);
  return buf;
}

}  // namespace

void SimTrace::line(double t, int node, const char* what, const std::string& fields) {
  std::string s = "{\"t\":" + micros(t) + ",\"node\":" + std::to_string(node) + ",\"ev\":\"" + what + "\"";
  if (!fields.empty()) s += "," + fields;
  s += "}";
  for (unsigned char ch : s) hash_ = (hash_ ^ ch) * 0x100000001b3ULL;
  hash_ = (hash_ ^ '\n') * 0x100000001b3ULL;
  if (sink_) sink_(s);
}

void SimTrace::notice(double t, int node, const Notice& n) {
  std::string f = "\"peer\":" + std::to_string(n.peer);
  if (n.kind == Notice::Kind::kStale) f += ",\"lag\":" + std::to_string(n.lag) + ",\"via\":\"" + n.via + "\"";
  if (n.kind == Notice::Kind::kStateSync)
    f += ",\"outer\":" + std::to_string(n.outer_step) + ",\"inner\":" + std::to_string(n.inner_step);
  line(t, node, notice_name(n.kind), f);
}

void SimTrace::outer(double t, int node, const OuterReport& r) {
  std::string f = "\"outer\":" + std::to_string(r.outer_step) +
                  ",\"partner\":" + (r.partner_found ? std::to_string(r.partner) : std::string("null")) +
                  ",\"called\":" + (r.called ? "true" : "false") + ",\"group\":" + list(r.group) +
                  ",\"lag\":" + list(r.staleness) + ",\"failed\":" + list(r.failed_peers) +
                  ",\"blocked_us\":" + micros(r.blocked_s);
  line(t, node, "outer", f);
}

SimNodeStats sim_stats(const CoreCounters& now, const CoreCounters& before, std::vector<double> blocked,
                       const std::vector<int64_t>& staleness_hist, size_t distinct_partners, int crashes,
                       int64_t mixed_callers, int64_t final_outer, bool finished) {
  SimNodeStats s;
  s.outer_steps = now.outer_steps + before.outer_steps;
  s.exchanges = now.exchanges + before.exchanges;
  s.solo_steps = now.solo_steps + before.solo_steps;
  s.resyncs = now.resyncs + before.resyncs;
  s.calls = now.calls + before.calls;
  s.call_failures = now.call_failures + before.call_failures;
  s.refused = now.refused + before.refused;
  s.stale = now.stale + before.stale;
  s.bans = now.bans + before.bans;
  s.checkpoints = now.checkpoints + before.checkpoints;
  s.crashes = crashes;
  s.mixed_callers = mixed_callers;
  s.distinct_partners = static_cast<int64_t>(distinct_partners);
  s.staleness_hist = staleness_hist;
  std::sort(blocked.begin(), blocked.end());
  s.blocked_p50 = percentile(blocked, 0.5);
  s.blocked_p99 = percentile(blocked, 0.99);
  s.blocked_max = blocked.empty() ? 0 : blocked.back();
  s.final_outer = final_outer;
  s.finished = finished;
  return s;
}

std::string sim_node_json(int node, const SimNodeStats& s) {
  return "{\"node\":" + std::to_string(node) + ",\"outer_steps\":" + std::to_string(s.outer_steps) +
         ",\"exchanges\":" + std::to_string(s.exchanges) + ",\"solo_steps\":" + std::to_string(s.solo_steps) +
         ",\"resyncs\":" + std::to_string(s.resyncs) + ",\"calls\":" + std::to_string(s.calls) +
         ",\"call_failures\":" + std::to_string(s.call_failures) + ",\"mixed_callers\":" +
         std::to_string(s.mixed_callers) + ",\"distinct_partners\":" + std::to_string(s.distinct_partners) +
         ",\"refused\":" + std::to_string(s.refused) + ",\"stale\":" + std::to_string(s.stale) +
         ",\"bans\":" + std::to_string(s.bans) + ",\"checkpoints\":" + std::to_string(s.checkpoints) +
         ",\"crashes\":" + std::to_string(s.crashes) + ",\"staleness_hist\":" + list(s.staleness_hist) +
         ",\"blocked_p50_s\":" + fixed(s.blocked_p50) + ",\"blocked_p99_s\":" + fixed(s.blocked_p99) +
         ",\"blocked_max_s\":" + fixed(s.blocked_max) + ",\"final_outer\":" + std::to_string(s.final_outer) +
         ",\"finished\":" + (s.finished ? "true" : "false") + "}";
}

std::string sim_summary_json(const SimConfig& c, const SimResult& r) {
  int64_t outer = 0, solo = 0, resyncs = 0, bans = 0, finished = 0;
  std::vector<double> p99;
  for (const auto& s : r.nodes) {
    outer += s.outer_steps, solo += s.solo_steps, resyncs += s.resyncs, bans += s.bans;
    finished += s.finished;
    p99.push_back(s.blocked_p99);
  }
  std::sort(p99.begin(), p99.end());
  char hash[32];
  std::snprintf(hash, sizeof hash, "%016llx", static_cast<unsigned long long>(r.trace_hash));
  return "{\"summary\":true,\"nodes\":" + std::to_string(c.nodes) + ",\"seed\":" + std::to_string(c.seed) +
         ",\"events\":" + std::to_string(r.events) + ",\"virtual_s\":" + fixed(r.end_time, 3) +
         ",\"outer_steps\":" + std::to_string(outer) + ",\"solo_steps\":" + std::to_string(solo) +
         ",\"resyncs\":" + std::to_string(resyncs) + ",\"bans\":" + std::to_string(bans) +
         ",\"finished\":" + std::to_string(finished) + ",\"blocked_p99_median_s\":" + fixed(percentile(p99, 0.5)) +
         ",\"weight_spread\":" + fixed(r.weight_spread) + ",\"optimum_spread\":" + fixed(r.initial_spread) +
         ",\"trace_hash\":\"" + hash + "\"}";
}

namespace {

// "<int>" or "<number>" at the front of `s`, consuming it.
bool take_number(std::string_view& s, double& out) {
  size_t n = 0;
  while (n < s.size() && (std::isdigit(static_cast<unsigned char>(s[n])) || s[n] == '.')) ++n;
  if (n == 0 || n > 32) return false;
  const std::string text(s.substr(0, n));
  char* end = nullptr;
  out = std::strtod(text.c_str(), &end);
  if (end != text.c_str() + text.size()) return false;
  s.remove_prefix(n);
  return true;
}

bool take(std::string_view& s, char c) {
  if (s.empty() || s.front() != c) return false;
  s.remove_prefix(1);
  return true;
}

}  // namespace

Result<SimFault> parse_sim_fault(const std::string& text) {
  const auto colon = text.find(':');
  const auto bad = [&] { return invalid_argument("bad fault '" + text + "' (see docs/simulate-swarm.md)"); };
  if (colon == std::string::npos || text.size() > 200) return bad();
  const std::string kind = text.substr(0, colon);
  std::string_view rest(text);
  rest.remove_prefix(colon + 1);
  SimFault f{SimFault::Kind::kCrash};
  double who = 0;
  if (!take_number(rest, who) || who > 1e6) return bad();
  f.node = static_cast<int>(who);
  if (kind == "crash" || kind == "partition" || kind == "join") {
    f.kind = kind == "crash" ? SimFault::Kind::kCrash : kind == "join" ? SimFault::Kind::kJoin : SimFault::Kind::kPartition;
    if (!take(rest, '@') || !take_number(rest, f.at)) return bad();
    if (take(rest, '+') && (!take_number(rest, f.duration) || f.kind == SimFault::Kind::kJoin)) return bad();
    if (f.kind == SimFault::Kind::kPartition) {
      if (f.duration <= 0) return bad();
      f.split = f.node;
      f.node = 0;
    }
  } else if (kind == "hostile") {
    f.kind = SimFault::Kind::kHostile;
  } else if (kind == "slow") {
    f.kind = SimFault::Kind::kSlow;
    if (!take(rest, '*') || !take_number(rest, f.factor)) return bad();
  } else {
    return bad();
  }
  if (!rest.empty()) return bad();
  return f;
}

Status SimConfig::validate() const {
  if (nodes < 1 || nodes > 100000) return invalid_argument("--nodes must be in [1, 100000]");
  if (outer_steps < 1 || H < 1) return invalid_argument("--outer-steps and --H must be >= 1");
  if (!(step_s > 0) || !(bandwidth_Bps > 0)) return invalid_argument("--step-s and --bandwidth must be positive");
  if (!(delay_s >= 0) || !(delay_spread >= 0) || !(speed_spread >= 0) || !(phase_jitter >= 0 && phase_jitter < 1))
    return invalid_argument("delays, spreads and jitter must be >= 0 (jitter < 1)");
  if (!(loss >= 0 && loss < 1)) return invalid_argument("--loss must be in [0, 1)");
  if (!(exchange_budget_s > 0) || exchange_tries < 1) return invalid_argument("bad exchange budget or tries");
  if (max_staleness < 0 || resync_behind < 1 || checkpoint_every < 0 || strikes_to_ban < 1)
    return invalid_argument("bad --max-staleness, --resync-behind, --checkpoint-every or strikes");
  if (dim < 1 || dim > 4096) return invalid_argument("--dim must be in [1, 4096]");
  if (max_inbox < 1) return invalid_argument("max_inbox must be >= 1");
  for (const auto& f : faults) {
    if (f.node < 0 || f.node >= nodes) return invalid_argument("a fault names node " + std::to_string(f.node));
    if (!(f.at >= 0) || !(f.duration >= 0) || !(f.factor >= 1)) return invalid_argument("bad fault time or factor");
    if (f.kind == SimFault::Kind::kPartition && (f.split < 1 || f.split >= nodes))
      return invalid_argument("a partition's split must be in [1, nodes)");
  }
  return Status::Ok();
}

}  // namespace noloco::node
