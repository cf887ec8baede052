// `noloco simulate-swarm`: the deterministic swarm simulator on the node core
// (docs/simulate-swarm.md). Prints one JSON line per node and a summary; --trace writes every
// decision as JSON lines.
#include "cli/commands.h"

#include <chrono>
#include <cstdio>
#include <fstream>
#include <memory>

#include "cli/p2p_flags.h"
#include "trainer/node/swarm_sim.h"

namespace noloco::cli {

Command register_simulate_swarm(CLI::App& app) {
  auto* sub = app.add_subcommand("simulate-swarm", "simulate N nodes' decisions on a virtual clock and network");
  struct Flags {
    node::SimConfig c;
    std::vector<std::string> faults;
    std::string trace;
    bool quiet = false;
  };
  auto f = std::make_shared<Flags>();
  auto& c = f->c;
  sub->add_option("--seed", c.seed, "seed of everything")->capture_default_str();
  sub->add_option("--nodes", c.nodes, "virtual nodes")->capture_default_str();
  sub->add_option("--outer-steps", c.outer_steps, "the run's length in outer steps")->capture_default_str();
  sub->add_option("--H", c.H, "inner steps per outer step")->capture_default_str();
  sub->add_option("--step-s", c.step_s, "seconds per inner step at speed 1")->capture_default_str();
  sub->add_option("--speed-spread", c.speed_spread, "speed factors uniform in [1, 1+this]")->capture_default_str();
  sub->add_option("--delay", c.delay_s, "one-way link delay, seconds")->capture_default_str();
  sub->add_option("--delay-spread", c.delay_spread, "per-link delay factor in [1, 1+this]")->capture_default_str();
  sub->add_option("--bandwidth", c.bandwidth_Bps, "bytes per second per transfer")->capture_default_str();
  sub->add_option("--loss", c.loss, "probability a message is lost")->capture_default_str();
  sub->add_option("--payload-bytes", c.payload_bytes, "one exchange payload")->capture_default_str();
  sub->add_option("--state-bytes", c.state_bytes, "one state-sync download")->capture_default_str();
  sub->add_option("--membership-timeout", c.membership_timeout_s, "a dead peer leaves views after this")
      ->capture_default_str();
  sub->add_option("--max-staleness", c.max_staleness, "as noloco run")->capture_default_str();
  sub->add_option("--resync-behind", c.resync_behind, "as noloco run")->capture_default_str();
  sub->add_flag("--always-exchange", c.always_exchange, "as noloco run");
  sub->add_option("--exchange-tries", c.exchange_tries, "as noloco run")->capture_default_str();
  sub->add_option("--exchange-timeout", c.exchange_budget_s, "as noloco run")->capture_default_str();
  sub->add_option("--checkpoint-every", c.checkpoint_every, "as noloco run")->capture_default_str();
  sub->add_option("--join-wait", c.join_wait_s, "as noloco run")->capture_default_str();
  sub->add_option("--dim", c.dim, "size of each node's weight vector")->capture_default_str();
  sub->add_option("--fault", f->faults,
                  "crash:N@T[+DOWN] | partition:SPLIT@T+FOR | join:N@T | hostile:N | slow:N*F (repeatable)");
  sub->add_option("--trace", f->trace, "write every decision here as JSON lines");
  sub->add_flag("--quiet", f->quiet, "only the summary line");

  return {sub, [f] {
            node::SimConfig c = f->c;
            for (const auto& text : f->faults) {
              auto fault = node::parse_sim_fault(text);
              if (!fault.ok()) return fail(fault.status());
              c.faults.push_back(*fault);
            }
            std::unique_ptr<std::ofstream> out;
            if (!f->trace.empty()) {
              out = std::make_unique<std::ofstream>(f->trace, std::ios::trunc);
              if (!*out) return fail(Status(StatusCode::kIoError, "cannot write " + f->trace));
            }
            std::function<void(const std::string&)> sink;
            if (out) sink = [&](const std::string& line) { *out << line << '\n'; };
            const auto t0 = std::chrono::steady_clock::now();
            auto r = node::run_swarm_sim(c, sink);
            if (!r.ok()) return fail(r.status());
            const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
            if (!f->quiet)
              for (size_t i = 0; i < r->nodes.size(); ++i)
                std::printf("%s\n", node::sim_node_json(static_cast<int>(i), r->nodes[i]).c_str());
            std::string summary = node::sim_summary_json(c, *r);
            summary.pop_back();
            std::printf("%s,\"wall_s\":%.3f}\n", summary.c_str(), wall);
            if (out && !out->flush()) return fail(Status(StatusCode::kIoError, "writing " + f->trace));
            return 0;
          }};
}

}  // namespace noloco::cli
