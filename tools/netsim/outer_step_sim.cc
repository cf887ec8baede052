// outer_step_sim: the outer-step model (outer_step_model.h) swept over swarm sizes; prints a
// table and optionally CSV for tools/netsim/plot.py. docs/netsim.md has the commands and figures.
#include <CLI/CLI.hpp>

#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "tools/netsim/outer_step_model.h"

namespace {

using noloco::netsim::Method;
using noloco::netsim::ModelConfig;
using noloco::netsim::NodeSpec;

struct Flags {
  std::string sizes = "4,8,16,32,64,128,256,512,1024";
  std::string profile = "uniform";
  double compute_s = 2.0;       // one inner phase at speed 1
  double payload_mb = 1.0;      // NoLoCo payload each way = DiLoCo's all-reduced tensor
  double latency_ms = 50, rate_mbit = 100;  // uniform profile
  int outer_steps = 100;
  double jitter = 0.1;
  int handshake_rtts = 1;
  std::vector<double> speeds;   // hetero: slowdowns by i mod 4 (default 1,1,2,4)
  uint64_t seed = 1;
  std::string csv;
};

// uniform: every node the same link. hetero: node i gets speed factor 1,1,2,4 (or --speeds) and
// link 10 ms/1 Gbit, 50 ms/100 Mbit, 150 ms/20 Mbit by i mod 4 and i mod 3 (issue 10's mix).
std::vector<NodeSpec> make_nodes(const Flags& f, int n) {
  const std::vector<double> kSlow = f.speeds.empty() ? std::vector<double>{1, 1, 2, 4} : f.speeds;
  static const double kLat[] = {0.010, 0.050, 0.150}, kRate[] = {1000e6 / 8, 100e6 / 8, 20e6 / 8};
  std::vector<NodeSpec> out(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) {
    NodeSpec& s = out[static_cast<size_t>(i)];
    s.compute_s = f.compute_s;
    if (f.profile == "hetero") {
      s.slowdown = kSlow[static_cast<size_t>(i) % kSlow.size()];
      s.latency_s = kLat[i % 3];
      s.bandwidth_Bps = kRate[i % 3];
    } else {
      s.latency_s = f.latency_ms / 1000.0;
      s.bandwidth_Bps = f.rate_mbit * 1e6 / 8;
    }
  }
  return out;
}

// "4,8,16" -> {4, 8, 16}; empty when an item is not a positive whole number.
std::vector<int> parse_sizes(const std::string& text) {
  std::vector<int> out;
  std::stringstream ss(text);
  for (std::string item; std::getline(ss, item, ',');) {
    size_t used = 0;
    int n = 0;
    try {
      n = std::stoi(item, &used);
    } catch (const std::exception&) {
      return {};
    }
    if (used != item.size() || n < 1) return {};
    out.push_back(n);
  }
  return out;
}

int run(const Flags& f) {
  if (f.profile != "uniform" && f.profile != "hetero") {
    std::fprintf(stderr, "outer_step_sim: --profile is uniform or hetero\n");
    return 2;
  }
  const std::vector<int> sizes = parse_sizes(f.sizes);
  if (sizes.empty()) {
    std::fprintf(stderr, "outer_step_sim: --sizes takes positive whole numbers separated by commas, not '%s'\n",
                 f.sizes.c_str());
    return 2;
  }
  std::ofstream csv;
  if (!f.csv.empty()) {
    csv.open(f.csv);
    csv << "nodes,method,wall_s,blocked_p50_s,blocked_p99_s,blocked_mean_s,bytes_per_node_per_step\n";
  }
  std::printf("profile %s, compute %.3f s per phase, payload %.2f MB, %d outer steps, jitter %.2f, seed %llu\n",
              f.profile.c_str(), f.compute_s, f.payload_mb, f.outer_steps, f.jitter,
              static_cast<unsigned long long>(f.seed));
  std::printf("%6s %-15s %10s %12s %12s %14s %10s\n", "nodes", "method", "wall s", "blocked p50", "blocked p99",
              "MB/node/step", "p50 vs pairs");
  for (int n : sizes) {
    ModelConfig c;
    c.nodes = make_nodes(f, n);
    c.payload_bytes = f.payload_mb * 1e6;
    c.outer_steps = f.outer_steps;
    c.jitter_sigma = f.jitter;
    c.handshake_rtts = f.handshake_rtts;
    c.seed = f.seed;
    double pairs_p50 = 0;
    for (Method m : {Method::kNolocoPairs, Method::kRingAllReduce, Method::kTreeAllReduce, Method::kHalvingDoubling}) {
      auto r = noloco::netsim::simulate(c, m);
      if (!r.ok()) {
        std::fprintf(stderr, "outer_step_sim: %s\n", r.status().to_string().c_str());
        return 2;
      }
      if (m == Method::kNolocoPairs) pairs_p50 = r->blocked_p50_s;
      const double ratio = pairs_p50 > 0 ? r->blocked_p50_s / pairs_p50 : 0;
      std::printf("%6d %-15s %10.1f %12.3f %12.3f %14.2f %9.1fx\n", n, method_name(m), r->wall_s, r->blocked_p50_s,
                  r->blocked_p99_s, r->bytes_per_node_per_step / 1e6, ratio);
      if (csv.is_open())
        csv << n << ',' << method_name(m) << ',' << r->wall_s << ',' << r->blocked_p50_s << ',' << r->blocked_p99_s
            << ',' << r->blocked_mean_s << ',' << r->bytes_per_node_per_step << '\n';
    }
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"outer_step_sim: NoLoCo pairs vs ring and tree all-reduce, outer-step time by swarm size"};
  Flags f;
  app.add_option("--sizes", f.sizes, "comma-separated swarm sizes")->capture_default_str();
  app.add_option("--profile", f.profile, "uniform | hetero (speeds 1,1,2,4; links 10ms/1G, 50ms/100M, 150ms/20M)")
      ->capture_default_str();
  app.add_option("--compute-s", f.compute_s, "seconds of one inner phase at speed 1 (measured)")->capture_default_str();
  app.add_option("--payload-mb", f.payload_mb, "MB per payload / all-reduced tensor (measured)")->capture_default_str();
  app.add_option("--latency-ms", f.latency_ms, "uniform profile: one-way latency")->capture_default_str();
  app.add_option("--rate-mbit", f.rate_mbit, "uniform profile: link rate")->capture_default_str();
  app.add_option("--outer-steps", f.outer_steps, "outer steps per node")->capture_default_str();
  app.add_option("--jitter", f.jitter, "log-normal sigma of phase times")->capture_default_str();
  app.add_option("--handshake-rtts", f.handshake_rtts, "round trips before payload bytes flow")->capture_default_str();
  app.add_option("--speeds", f.speeds,
                 "hetero: slowdowns cycled over the nodes (default 1,1,2,4); measured ones when checking a real run")
      ->delimiter(',')
      ->check(CLI::Range(1.0, 1000.0));
  app.add_option("--seed", f.seed, "seed of jitter and partner choice")->capture_default_str();
  app.add_option("--csv", f.csv, "also write the rows as CSV");
  CLI11_PARSE(app, argc, argv);
  return run(f);
}
