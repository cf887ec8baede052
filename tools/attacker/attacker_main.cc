// noloco-attacker: one hostile peer of a run, for the attack harness (tools/attack, docs/attacks.md).
// It joins like a node (identity key, run id and --join, PSK) and performs ONE attack:
//   flip | scale100 | noise | replay | wrong-run | poison-state
//       the real node (run_node) with its published payload or state rewritten (payload_tamper.h);
//   forged-membership | eclipse-flood | sybil | slow-reader | slow-writer | slow-state
//       a peer on the real p2p Host that abuses membership, exchange and state (peer_attack.h).
// Output as `noloco run --json`: the address line, then JSON events (`start` carries our peer id;
// network attacks add an `attacker` event listing every identity they use). SIGTERM ends it.
#include <CLI/CLI.hpp>

#include <atomic>
#include <csignal>
#include <cstdio>
#include <mutex>

#include "common/log.h"
#include "p2p/key_file.h"
#include "p2p/pnet.h"
#include "tools/attacker/payload_tamper.h"
#include "tools/attacker/peer_attack.h"
#include "trainer/node/node_run.h"

namespace {

std::atomic<bool> g_stop{false};
extern "C" void on_signal(int) { g_stop.store(true); }

void print_line(const std::string& line) {
  static std::mutex mu;  // the checkpoint writer's thread emits too
  std::lock_guard lock(mu);
  std::printf("%s\n", line.c_str());
  std::fflush(stdout);
}

struct Flags {
  noloco::node::NodeOptions node;
  std::string attack, key, psk;
  uint64_t seed = 1, ahead = 30;
  int sybils = 16, fakes = 200;
  bool json = true;
};

void add_flags(CLI::App& app, Flags& f) {
  auto& o = f.node;
  app.add_option("--attack", f.attack, "the one attack this process performs (docs/attacks.md)")->required();
  app.add_option("--db", o.db, "store (node attacks)");
  app.add_option("--key", f.key, "identity key file (created if missing)")->required();
  app.add_option("--listen", o.listen)->capture_default_str();
  app.add_option("--announce", o.announce);
  app.add_option("--dial-from", o.host.dial_from);
  app.add_option("--join", o.join);
  app.add_option("--manifest", o.manifest_path);
  app.add_option("--run-id", o.run_id)->required();
  app.add_option("--psk", f.psk);
  app.add_option("--seed", f.seed, "attacker randomness (noise, forged signatures)")->capture_default_str();
  app.add_option("--ahead", f.ahead, "poison-state, slow-state: outer steps past the swarm we claim")->capture_default_str();
  app.add_option("--sybils", f.sybils, "sybil: identities from our address")->capture_default_str();
  app.add_option("--fakes", f.fakes, "eclipse-flood: fake peer records per gossip")->capture_default_str();
  // The node flags the chaos harness passes (node attacks train like a node).
  app.add_option("--threads", o.threads);
  app.add_option("--checkpoint-every", o.checkpoint_every);
  app.add_option("--keep-last", o.keep_last);
  app.add_option("--exchange-timeout", o.exchange_budget_s);
  app.add_option("--join-wait", o.join_wait_s);
  app.add_option("--min-peers", o.min_peers);
  app.add_option("--resync-behind", o.resync_behind);
  app.add_option("--max-staleness", o.max_staleness);
  app.add_option("--eval-windows", o.eval_windows);
  app.add_option("--eval-every", o.eval_every);
  app.add_option("--linger", o.linger_s);
  app.add_flag("--always-exchange", o.always_exchange);
  app.add_flag("--json", f.json, "accepted for the harness; output is always JSON");
}

int run(Flags& f) {
  using namespace noloco;
  auto id = p2p::load_or_create_key_file(f.key);
  if (!id.ok()) return std::fprintf(stderr, "--key: %s\n", id.status().to_string().c_str()), 2;
  if (!f.psk.empty()) {
    auto psk = p2p::load_swarm_key_file(f.psk);
    if (!psk.ok()) return std::fprintf(stderr, "--psk: %s\n", psk.status().to_string().c_str()), 2;
    f.node.host.psk = *psk;
  }
  if (attacker::is_node_attack(f.attack)) {
    auto tamper = attacker::make_payload_tamper(f.attack, f.seed, f.ahead);
    if (!tamper.ok()) return std::fprintf(stderr, "%s\n", tamper.status().to_string().c_str()), 2;
    f.node.identity = *id;
    node::NodeSinks sinks;
    sinks.on_listening = print_line;
    sinks.on_event = print_line;
    sinks.tamper = std::move(*tamper);
    auto r = node::run_node(f.node, sinks, &g_stop);
    if (!r.ok()) return std::fprintf(stderr, "attacker node: %s\n", r.status().to_string().c_str()), 1;
    return 0;
  }
  if (!attacker::is_peer_attack(f.attack)) return std::fprintf(stderr, "unknown --attack %s\n", f.attack.c_str()), 2;
  attacker::PeerAttackOptions p{f.attack, *id, f.node.host, f.node.listen, f.node.announce, f.node.join,
                                f.node.run_id, f.seed, f.ahead, f.sybils, f.fakes};
  return attacker::run_peer_attack(p, g_stop, print_line);
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"noloco-attacker: one hostile peer of a run (docs/attacks.md)"};
  Flags f;
  add_flags(app, f);
  std::string log_level = "info";
  app.add_option("--log-level", log_level, "trace, debug, info, warn, error or off")->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  noloco::configure_logging(log_level);
  std::signal(SIGINT, on_signal);
  std::signal(SIGTERM, on_signal);
  std::signal(SIGPIPE, SIG_IGN);
  return run(f);
}
