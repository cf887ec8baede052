// The outer-step model (outer_step_model.h): an event loop for NoLoCo's pairs, a barrier plus a
// closed-form collective for DiLoCo.
#include "tools/netsim/outer_step_model.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <queue>

namespace noloco::netsim {
namespace {

// splitmix64: a small seeded generator whose stream is the same on every platform (the
// standard distributions are not), so a config gives the same figures everywhere.
class Rng {
 public:
  explicit Rng(uint64_t seed) : s_(seed) {}
  uint64_t next() {
    uint64_t z = (s_ += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }
  double uniform() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }  // [0, 1)
  size_t below(size_t n) { return static_cast<size_t>(uniform() * static_cast<double>(n)); }
  // Log-normal factor with mean 1 (Box-Muller on two uniforms).
  double lognormal(double sigma) {
    if (sigma <= 0) return 1.0;
    const double u1 = 1.0 - uniform(), u2 = uniform();
    const double z = std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * M_PI * u2);
    return std::exp(sigma * z - sigma * sigma / 2.0);
  }

 private:
  uint64_t s_;
};

double phase_s(const NodeSpec& n, Rng& rng, double sigma) { return n.compute_s * n.slowdown * rng.lognormal(sigma); }

// p-th percentile (0..100) by nearest rank.
double percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const size_t rank = static_cast<size_t>(std::ceil(p / 100.0 * static_cast<double>(v.size())));
  return v[std::clamp<size_t>(rank, 1, v.size()) - 1];
}

MethodResult summarise(Method m, const std::vector<double>& blocked, double wall, double bytes_sent, size_t nodes) {
  MethodResult r;
  r.method = m;
  r.wall_s = wall;
  r.outer_steps_done = static_cast<int64_t>(blocked.size());
  r.blocked_p50_s = percentile(blocked, 50);
  r.blocked_p99_s = percentile(blocked, 99);
  double sum = 0;
  for (double b : blocked) sum += b;
  r.blocked_mean_s = blocked.empty() ? 0 : sum / static_cast<double>(blocked.size());
  const double steps = blocked.empty() ? 1 : static_cast<double>(blocked.size()) / static_cast<double>(nodes);
  r.bytes_per_node_per_step = bytes_sent / static_cast<double>(nodes) / steps;
  return r;
}

// NoLoCo: each node runs on its own clock. At the end of an inner phase it mixes a caller's
// payload if one arrived meanwhile (the caller paired with it); otherwise it calls a uniformly
// random other node, which answers at once from its last snapshot. Transfers leaving a node
// queue on its uplink.
MethodResult simulate_pairs(const ModelConfig& c) {
  const size_t n = c.nodes.size();
  Rng rng(c.seed);
  const double inf = std::numeric_limits<double>::infinity();
  std::vector<double> uplink_free(n, 0.0), inbox_ready(n, inf), last_end(n, 0.0);
  std::vector<int> steps(n, 0);
  using Ev = std::pair<double, size_t>;  // (phase end, node)
  std::priority_queue<Ev, std::vector<Ev>, std::greater<>> q;
  for (size_t i = 0; i < n; ++i) q.push({phase_s(c.nodes[i], rng, c.jitter_sigma), i});
  std::vector<double> blocked;
  double bytes = 0;
  while (!q.empty()) {
    const auto [t, i] = q.top();
    q.pop();
    double wait = 0;
    if (inbox_ready[i] <= t) {
      inbox_ready[i] = inf;  // paired by a caller: mix its payload, call nobody
    } else if (n > 1) {
      size_t j = rng.below(n - 1);
      if (j >= i) ++j;
      const Link l = link_between(c.nodes[i], c.nodes[j]);
      const double t0 = t + 2.0 * l.latency_s * c.handshake_rtts;
      const double xfer = c.payload_bytes / l.bandwidth_Bps;
      const double req_start = std::max(t0, uplink_free[i]);
      uplink_free[i] = req_start + xfer;
      const double req_done = uplink_free[i] + l.latency_s;
      const double ans_start = std::max(t0 + l.latency_s, uplink_free[j]);
      uplink_free[j] = ans_start + xfer;
      const double ans_done = uplink_free[j] + l.latency_s;
      wait = std::max(req_done, ans_done) - t;
      inbox_ready[j] = std::min(inbox_ready[j], req_done);
      bytes += 2 * c.payload_bytes;
    }
    blocked.push_back(wait);
    last_end[i] = t + wait;
    if (++steps[i] < c.outer_steps) q.push({t + wait + phase_s(c.nodes[i], rng, c.jitter_sigma), i});
  }
  return summarise(Method::kNolocoPairs, blocked, *std::max_element(last_end.begin(), last_end.end()), bytes, n);
}

// The ring in a seeded random order (the node orders it by peer id, which is random), over
// each neighbour pair's own link.
double ring_over_nodes_s(const std::vector<NodeSpec>& nodes, double bytes, uint64_t seed) {
  std::vector<size_t> order(nodes.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  Rng rng(seed ^ 0x72696e67ULL);
  for (size_t i = order.size(); i > 1; --i) std::swap(order[i - 1], order[rng.below(i)]);
  std::vector<Link> edges(order.size());
  for (size_t r = 0; r < order.size(); ++r) edges[r] = link_between(nodes[order[r]], nodes[order[(r + 1) % order.size()]]);
  return ring_allreduce_edges_s(edges, bytes);
}

double collective_s(Method m, int n, double bytes, const Link& worst) {
  switch (m) {
    case Method::kRingAllReduce: return ring_allreduce_s(n, bytes, worst);
    case Method::kTreeAllReduce: return tree_allreduce_s(n, bytes, worst);
    case Method::kHalvingDoubling: return halving_doubling_s(n, bytes, worst);
    case Method::kNolocoPairs: break;
  }
  return 0;
}

// DiLoCo: every outer step is one collective among all nodes; it starts once the slowest node
// has finished its phase and said so (one more latency), and ends for everyone at once.
MethodResult simulate_collective(const ModelConfig& c, Method m) {
  const size_t n = c.nodes.size();
  Rng rng(c.seed);
  Link worst{0, std::numeric_limits<double>::infinity()};
  for (const auto& node : c.nodes) {
    worst.latency_s = std::max(worst.latency_s, node.latency_s);
    worst.bandwidth_Bps = std::min(worst.bandwidth_Bps, node.bandwidth_Bps);
  }
  const int ni = static_cast<int>(n);
  const double collective = 2.0 * worst.latency_s * c.handshake_rtts +
                            (m == Method::kRingAllReduce ? ring_over_nodes_s(c.nodes, c.payload_bytes, c.seed)
                                                         : collective_s(m, ni, c.payload_bytes, worst));
  std::vector<double> ready(n, 0.0), blocked;
  double t = 0;
  for (int k = 0; k < c.outer_steps; ++k) {
    for (size_t i = 0; i < n; ++i) ready[i] = t + phase_s(c.nodes[i], rng, c.jitter_sigma);
    const double start = *std::max_element(ready.begin(), ready.end()) + (n > 1 ? worst.latency_s : 0.0);
    const double end = start + collective;
    for (size_t i = 0; i < n; ++i) blocked.push_back(end - ready[i]);
    t = end;
  }
  // Ring and tree both send 2(n-1)/n of the tensor per node per all-reduce.
  const double per_step = n > 1 ? 2.0 * static_cast<double>(n - 1) * c.payload_bytes : 0.0;
  return summarise(m, blocked, t, per_step * c.outer_steps, n);
}

}  // namespace

Status ModelConfig::validate() const {
  if (nodes.empty()) return invalid_argument("no nodes");
  if (nodes.size() > 1'000'000) return invalid_argument("at most 1,000,000 nodes");
  if (!(payload_bytes >= 0)) return invalid_argument("payload bytes must be >= 0");
  if (outer_steps < 1) return invalid_argument("outer steps must be >= 1");
  if (!(jitter_sigma >= 0 && jitter_sigma < 3)) return invalid_argument("jitter sigma must be in [0, 3)");
  if (handshake_rtts < 0) return invalid_argument("handshake round trips must be >= 0");
  for (const auto& n : nodes) {
    if (!(n.compute_s >= 0) || !(n.slowdown >= 1) || !(n.latency_s >= 0) || !(n.bandwidth_Bps > 0))
      return invalid_argument("a node needs compute >= 0, slowdown >= 1, latency >= 0 and bandwidth > 0");
  }
  return Status::Ok();
}

Link link_between(const NodeSpec& a, const NodeSpec& b) {
  return {std::max(a.latency_s, b.latency_s), std::min(a.bandwidth_Bps, b.bandwidth_Bps)};
}

const char* method_name(Method m) {
  switch (m) {
    case Method::kNolocoPairs: return "noloco-pairs";
    case Method::kRingAllReduce: return "ring-allreduce";
    case Method::kTreeAllReduce: return "tree-allreduce";
    case Method::kHalvingDoubling: return "halving-doubling";
  }
  return "?";
}

// Reduce-scatter then all-gather: 2(n-1) dependent steps, each moving 1/n of the tensor over
// every ring edge at once; each step waits for the slowest edge.
double ring_allreduce_s(int n, double bytes, const Link& worst) {
  if (n <= 1) return 0;
  return 2.0 * (n - 1) * (worst.latency_s + bytes / n / worst.bandwidth_Bps);
}

double ring_allreduce_edges_s(const std::vector<Link>& edges, double bytes) {
  const size_t n = edges.size();
  if (n <= 1) return 0;
  const double segment = bytes / static_cast<double>(n);
  // arrive[r]: when member r has the previous step's segment from r-1; free[r]: when r's link
  // has sent its previous segment.
  std::vector<double> arrive(n, 0.0), free(n, 0.0), next(n);
  for (size_t t = 0; t < 2 * (n - 1); ++t) {
    for (size_t r = 0; r < n; ++r) {
      const double done = std::max(arrive[r], free[r]) + segment / edges[r].bandwidth_Bps;
      free[r] = done;
      next[(r + 1) % n] = done + edges[r].latency_s;
    }
    arrive.swap(next);
  }
  return *std::max_element(arrive.begin(), arrive.end());
}

// Binary tree, reduce to the root then broadcast, the tensor cut into m chunks that flow level by
// level, store and forward (a node's link carries one chunk per child per slot; latencies of
// chunks in flight overlap). The best m is taken: the baseline gets its best setting.
double tree_allreduce_s(int n, double bytes, const Link& worst) {
  if (n <= 1) return 0;
  const double depth = std::ceil(std::log2(static_cast<double>(n)));
  const double children = n == 2 ? 1.0 : 2.0;
  double best = std::numeric_limits<double>::infinity();
  for (int m = 1; m <= 4096; ++m) {
    const double slot = children * bytes / m / worst.bandwidth_Bps;
    best = std::min(best, 2.0 * (depth * worst.latency_s + (depth + m - 1) * slot));
  }
  return best;
}

// Recursive halving reduce-scatter then recursive doubling all-gather (Rabenseifner): log2(n)
// exchanges each way, halving then doubling the bytes, so 2 log2(n) latencies and the ring's
// 2(n-1)/n of the tensor. A size that is not a power of two pays one more exchange each way
// (the extra members fold into partners first).
double halving_doubling_s(int n, double bytes, const Link& worst) {
  if (n <= 1) return 0;
  const double rounds = std::ceil(std::log2(static_cast<double>(n)));
  const bool pow2 = (n & (n - 1)) == 0;
  const double extra = pow2 ? 0.0 : 2.0 * (worst.latency_s + bytes / worst.bandwidth_Bps);
  return 2.0 * rounds * worst.latency_s + 2.0 * (n - 1) / n * bytes / worst.bandwidth_Bps + extra;
}

Result<MethodResult> simulate(const ModelConfig& config, Method method) {
  NOLOCO_RETURN_IF_ERROR(config.validate());
  if (method == Method::kNolocoPairs) return simulate_pairs(config);
  return simulate_collective(config, method);
}

}  // namespace noloco::netsim
