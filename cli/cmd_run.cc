// `noloco run`: one training node of a peer-to-peer NoLoCo run (docs/node.md).
// The first line of stdout is the node's dialable multiaddr; then one progress line per outer
// step (or, with --json, one JSON event per line, which `noloco demo` reads). Logs go to stderr.
// SIGINT/SIGTERM: checkpoint, say goodbye to peers, exit 0.
#include <atomic>
#include <csignal>
#include <cstdio>
#include <memory>
#include <mutex>
#include <string>

#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "cli/node_command.h"
#include "cli/p2p_flags.h"
#include "cli/run_endpoint.h"
#include "trainer/node/node_run.h"

namespace noloco::cli {
namespace {

std::atomic<bool> g_stop{false};
extern "C" void on_run_signal(int) { g_stop.store(true); }

std::string short_id(const std::string& id) { return id.size() > 8 ? id.substr(id.size() - 6) : id; }

std::string human_bytes(double b) {
  char buf[32];
  if (b >= 1e6) std::snprintf(buf, sizeof buf, "%.2f MB", b / 1e6);
  else std::snprintf(buf, sizeof buf, "%.1f kB", b / 1e3);
  return buf;
}

// One readable line per event, for people watching a terminal.
void print_human(const std::string& line) {
  auto j = nlohmann::json::parse(line, nullptr, false);
  if (j.is_discarded()) return;
  const std::string ev = j.value("event", "");
  if (ev == "start") {
    std::printf("node %s run %s %s at step %lld, val loss %.4f\n", short_id(j["peer"]).c_str(),
                j["run_id"].get<std::string>().c_str(), j["resumed"].get<bool>() ? "resumed" : "starting",
                static_cast<long long>(j["inner_step"].get<int64_t>()), j["val_loss"].get<double>());
  } else if (ev == "outer") {
    std::string val = j.contains("val_loss") ? " val " + std::to_string(j["val_loss"].get<double>()).substr(0, 6) : "";
    const std::string partner = j["partner"].get<std::string>();
    // Which of the group was reached through a circuit relay (a NATed peer): shown so that a user
    // can tell a relayed run from a direct one without --json.
    std::string relayed;
    if (j.contains("relayed") && !j["relayed"].empty()) relayed = ", " + std::to_string(j["relayed"].size()) + " via relay";
    std::printf("outer %lld step %lld loss %.4f%s tok/s %.0f peers %zu partner %s (%.3f s, group %zu%s) out %s in %s\n",
                static_cast<long long>(j["outer_step"].get<int64_t>()),
                static_cast<long long>(j["inner_step"].get<int64_t>()), j["loss"].get<double>(), val.c_str(),
                j["tokens_per_s"].get<double>(), j["live_peers"].get<size_t>(),
                partner.empty() ? "none (solo step)" : short_id(partner).c_str(), j["exchange_s"].get<double>(),
                j["group"].size() + 1, relayed.c_str(), human_bytes(j["bytes_out"].get<double>()).c_str(),
                human_bytes(j["bytes_in"].get<double>()).c_str());
  } else if (ev == "state_sync") {
    std::printf("state sync from %s: outer step %lld, %s, val loss %.4f -> %.4f\n",
                short_id(j["peer"]).c_str(), static_cast<long long>(j["outer_step"].get<int64_t>()),
                human_bytes(j["bytes"].get<double>()).c_str(), j["val_loss_before"].get<double>(),
                j["val_loss_after"].get<double>());
  } else if (ev == "checkpoint") {
    std::printf("checkpoint of outer step %lld written\n", static_cast<long long>(j["outer_step"].get<int64_t>()));
  } else if (ev == "checkpoint_failed") {
    std::printf("checkpoint of outer step %lld FAILED, training goes on: %s\n",
                static_cast<long long>(j["outer_step"].get<int64_t>()), j["why"].get<std::string>().c_str());
  } else if (ev == "refused") {
    std::printf("refused a payload from %s: %s\n", short_id(j["peer"]).c_str(), j["why"].get<std::string>().c_str());
  } else if (ev == "done") {
    std::printf("%s at step %lld: val loss %.4f -> %.4f, %lld exchanges, %lld solo steps\n",
                j["interrupted"].get<bool>() ? "stopped" : "finished",
                static_cast<long long>(j["inner_step"].get<int64_t>()), j["first_val_loss"].get<double>(),
                j["val_loss"].get<double>(), static_cast<long long>(j["exchanges"].get<int64_t>()),
                static_cast<long long>(j["solo_steps"].get<int64_t>()));
  }
  std::fflush(stdout);
}

}  // namespace

void add_node_tuning_flags(CLI::App* app, node::NodeOptions& o, bool& json, std::string& metrics) {
  app->add_option("--threads", o.threads, "torch threads (0: one for models under 2M parameters, else one per core)")->capture_default_str();
  app->add_option("--slowdown", o.slowdown, "make each inner step this many times slower (tests, demos)")
      ->capture_default_str();
  app->add_option("--checkpoint-every", o.checkpoint_every, "outer steps between checkpoints (0: only at the end)")
      ->capture_default_str();
  app->add_option("--keep-last", o.keep_last, "checkpoints kept")->capture_default_str();
  app->add_option("--exchange-timeout", o.exchange_budget_s,
                  "seconds to find a partner (NoLoCo) or to finish the all-reduce with its barrier (DiLoCo) before a "
                  "solo outer step; default 10 for NoLoCo, 300 for DiLoCo, each plus the time the run's payload takes at "
                  "50 Mbit/s");
  app->add_option("--exchange-tries", o.exchange_tries, "partners tried per outer step")->capture_default_str();
  app->add_option("--join-wait", o.join_wait_s, "seconds a starting node waits for the swarm")->capture_default_str();
  app->add_option("--min-peers", o.min_peers, "live peers to wait for (up to --join-wait) before training (0: 1 with --join)")
      ->capture_default_str();
  app->add_option("--resync-behind", o.resync_behind, "outer steps behind the swarm that trigger a state sync")
      ->capture_default_str();
  app->add_option("--max-staleness", o.max_staleness, "outer steps a peer's payload may lag and still be mixed")
      ->capture_default_str();
  app->add_option("--eval-windows", o.eval_windows, "held-out windows for the validation loss")->capture_default_str();
  app->add_option("--eval-every", o.eval_every, "outer steps between evaluations")->capture_default_str();
  app->add_option("--linger", o.linger_s, "seconds to keep serving peers after the last step")->capture_default_str();
  app->add_option("--stop-after-outer", o.stop_after_outer, "stop (with a checkpoint) after this many outer steps")
      ->capture_default_str();
  app->add_option("--reachability", o.reachability,
                  "auto: judge from the addresses peers see us at; private: reserve a slot on a public peer and be "
                  "reached through it (circuit relay); public: dialable directly, relay for others")
      ->capture_default_str();
  app->add_flag("--always-exchange", o.always_exchange,
                "call a random partner at every outer step, also when callers already paired with us (bigger groups)");
  app->add_flag("--json", json, "progress as JSON events, one per line");
  app->add_option("--metrics", metrics,
                  "serve Prometheus metrics at http://ADDR/metrics and the node's live status at http://ADDR/status, "
                  "ADDR as HOST:PORT (e.g. 127.0.0.1:9464; keep it loopback; default off)");
}

Command register_run(CLI::App& app) {
  auto* sub = app.add_subcommand("run", "join or start a peer-to-peer NoLoCo run (resumes from --db by itself)");
  struct Flags {
    node::NodeOptions node;
    std::string key, psk, metrics;
    bool json = false;
  };
  auto f = std::make_shared<Flags>();
  auto& o = f->node;
  sub->add_option("--db", o.db, "the node's store (created if missing; resumed from if it holds the run)")->required();
  sub->add_option("--key", f->key, "identity key file (created 0600 if missing)")->required();
  sub->add_option("--listen", o.listen, "multiaddr to listen on (port 0: any)")->capture_default_str();
  sub->add_option("--announce", o.announce, "multiaddr peers should dial instead of the bound one");
  sub->add_option("--dial-from", o.host.dial_from, "source IP of outgoing connections (e.g. behind tools/linkemu)");
  sub->add_option("--join", o.join, "multiaddr (with /p2p/) of a peer of the run; repeatable");
  sub->add_option("--manifest", o.manifest_path, "start (or serve) the run described by this manifest file");
  sub->add_option("--run-id", o.run_id, "join this run: its manifest is fetched from --join and hash-checked");
  sub->add_option("--psk", f->psk, "private-network swarm key file");
  sub->add_option("--data", o.data, "corpus path (default: the manifest's; its sha256 must match)");
  sub->add_option("--device", o.device, "cpu or cuda")->capture_default_str();
  add_node_tuning_flags(sub, o, f->json, f->metrics);

  return {sub, [f] {
            auto id = p2p::load_or_create_key_file(f->key);
            if (!id.ok()) return fail(id.status().context("--key " + f->key));
            f->node.identity = *id;
            if (Status st = apply_psk_flag(f->psk, f->node.host); !st.ok()) return fail(st);
            return run_node_command("run", f->node, f->json, f->metrics);
          }};
}

int run_node_command(const char* verb, const node::NodeOptions& options, bool json, const std::string& metrics_addr) {
  std::signal(SIGINT, on_run_signal);
  std::signal(SIGTERM, on_run_signal);
  std::signal(SIGPIPE, SIG_IGN);
  node::NodeSinks sinks;
  sinks.on_listening = [](const std::string& addr) {
    std::printf("%s\n", addr.c_str());
    std::fflush(stdout);
  };
  sinks.on_event = [json](const std::string& line) {
    static std::mutex mu;  // the checkpoint writer's thread emits too
    std::lock_guard lock(mu);
    if (json) {
      std::printf("%s\n", line.c_str());
      std::fflush(stdout);
    } else {
      print_human(line);
    }
  };
  // --metrics: /metrics and /status, fed by the same events plus progress samples
  // (docs/metrics.md, docs/status.md).
  std::shared_ptr<RunEndpoint> endpoint;
  if (!metrics_addr.empty()) {
    auto e = RunEndpoint::start(metrics_addr, options.db);
    if (!e.ok()) return fail(e.status().context("--metrics " + metrics_addr));
    endpoint = std::move(*e);
    sinks.on_event = [endpoint, print = sinks.on_event](const std::string& line) {
      endpoint->on_event(line);
      print(line);
    };
    sinks.on_progress = [endpoint](const node::NodeProgress& p) { endpoint->on_progress(p); };
  }
  auto r = node::run_node(options, sinks, &g_stop);
  if (endpoint) endpoint->stop();
  if (!r.ok()) {
    std::fprintf(stderr, "noloco %s: %s\n", verb, r.status().to_string().c_str());
    return r.status().code() == StatusCode::kInvalidArgument ? 2 : 1;
  }
  return 0;
}

}  // namespace noloco::cli
