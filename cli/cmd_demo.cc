// `noloco demo [--peers N] [--steps S] [--method diloco]`: the embedded default. Starts N separate `noloco run`
// processes on loopback (node 0 from a fresh manifest, the others joining it by run id), shows
// their progress, and ends with a summary: validation loss before/after per node, exchanges,
// partners, bytes on the wire (compressed vs raw fp32), and a PNG of the loss curves.
// Everything lands in --dir (default ./noloco-demo): manifest, node stores and logs, summary.
// The parts: cli/demo_nodes.h (node command lines), cli/demo_swarm.h (the processes),
// cli/demo_progress.h (their events, live), cli/demo_summary.h (table, summary.json, chart).
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "cli/demo_net.h"
#include "cli/demo_nodes.h"
#include "cli/demo_progress.h"
#include "cli/demo_summary.h"
#include "cli/demo_swarm.h"
#include "cli/p2p_flags.h"
#include "common/bytes.h"
#include "common/encoding.h"
#include "common/hash.h"
#include "trainer/core/data.h"
#include "trainer/node/run_manifest.h"

namespace noloco::cli {
namespace {

namespace fs = std::filesystem;

struct Flags {
  int peers = 4;
  int64_t steps = 600;
  int64_t H = 10;
  std::string dir = "noloco-demo";
  std::string data = "/usr/share/games/fortunes";
  std::string preset = "tiny";
  std::string codec;  // "": bf16 for NoLoCo, fp32 for DiLoCo's all-reduce
  std::string wire = "delta_phi";  // NoLoCo payload: delta_phi (Δ and φ) or theta (θ alone; needs γ = β)
  std::string method = "noloco";  // or "diloco": the all-reduce baseline (α 0.3, docs/algorithm.md §3)
  int64_t batch = 8;
  double lr = 5e-3;
  int64_t warmup = 30;
  double slowdown_last = 1.0;
  std::vector<double> slowdowns;  // cycled over the nodes (cli/demo_nodes.h)
  bool pin = false;
  bool timed = false;
  int64_t eval_steps = 0;    // inner steps between evaluations (0: every outer step); a multiple of H
  int64_t eval_windows = 0;  // 0: the node's default   // same wall-clock per node instead of the same inner steps (DemoNodes::timed_outer)
  std::string net;      // "": loopback as it is; else a linkemu profile (cli/demo_net.h)
  std::string linkemu;  // the linkemu binary (default: next to this build's noloco)
};

// The run's manifest from the flags, and the corpus it names (hashed into the manifest).
Result<node::RunManifest> demo_manifest(const Flags& f, Bytes& corpus) {
  node::RunManifest m;
  m.name = "noloco-demo";
  m.preset = f.preset;
  m.steps = f.steps;
  m.H = f.H;
  m.lr = f.lr;
  m.warmup = f.warmup;
  m.batch = f.batch;
  m.codec = !f.codec.empty() ? f.codec : f.method == "diloco" ? "fp32" : "bf16";
  m.wire_form = f.wire;
  m.data = f.data;
  m.method = f.method;
  if (m.method == "diloco") m.alpha = 0.3;  // heavy-ball DiLoCo as the NoLoCo paper runs it
  auto loaded = trainer::load_corpus(m.data);
  if (!loaded.ok()) return loaded.status().context("--data");
  corpus = std::move(*loaded);
  m.data_sha256 = hex_encode(sha256(corpus));
  if (Status st = m.validate(); !st.ok()) return st;
  return m;
}

// `dir` with no node folders of an earlier demo (its other files are kept).
Status prepare_dir(const fs::path& dir) {
  std::error_code ec;
  for (int i = 0; i < 16; ++i) fs::remove_all(dir / demo_node_name(i), ec);
  fs::create_directories(dir, ec);
  if (ec) return io_error("cannot create " + dir.string() + ": " + ec.message());
  return Status::Ok();
}

// Node 0 first; the others join through the address it prints first (returned). With `net`,
// each node sits behind the link emulator.
Result<std::string> start_nodes(Swarm& swarm, const DemoNodes& nodes, const std::string& run_id,
                                const DemoNet* net) {
  auto behind = [&](NodeLaunch l, int i) {
    if (net) put_behind_linkemu(l, *net, i);
    return l;
  };
  if (Status st = swarm.start(behind(first_node_launch(nodes, nodes.dir / "manifest.json"), 0)); !st.ok()) return st;
  const auto addr = swarm.first_line(0);
  if (!addr) return Status(StatusCode::kUnavailable, "node0 did not start; see " + (nodes.dir / "node0" / "log.txt").string());
  for (int i = 1; i < nodes.peers; ++i)
    if (Status st = swarm.start(behind(joining_node_launch(nodes, i, run_id, *addr), i)); !st.ok()) return st;
  return *addr;
}

// With --net: the link emulator, started and listening before any node (its first stdout line
// says so). Without: nothing.
Result<std::optional<DemoNet>> start_net(Swarm& emulator, const Flags& f, const fs::path& dir, const std::string& exe) {
  if (f.net.empty()) return std::optional<DemoNet>();
  NOLOCO_ASSIGN_OR_RETURN(DemoNet net, plan_demo_net(f.net, f.peers, dir, exe, f.linkemu));
  NOLOCO_RETURN_IF_ERROR(emulator.start(linkemu_launch(net, dir)));
  if (!emulator.first_line(0))
    return Status(StatusCode::kUnavailable, "linkemu did not start; see " + (dir / "linkemu.log").string());
  std::printf("%s\n", describe_demo_net(net).c_str());
  return std::optional<DemoNet>(net);
}

int run_demo(const Flags& f) {
  if (f.peers < 2 || f.peers > 16) return fail(invalid_argument("--peers must be in 2..16"));
  install_stop_signals();
  const fs::path dir = fs::absolute(f.dir);
  if (Status st = prepare_dir(dir); !st.ok()) return fail(st);
  Bytes corpus;
  auto m = demo_manifest(f, corpus);
  if (!m.ok()) return fail(m.status());
  DemoNodes nodes{dir, fs::read_symlink("/proc/self/exe").string(), f.peers, f.slowdown_last, f.pin, f.slowdowns};
  if (f.eval_steps > 0) {
    if (f.eval_steps % f.H != 0) return fail(invalid_argument("--eval-steps must be a multiple of --H"));
    nodes.eval_every = f.eval_steps / f.H;
  }
  nodes.eval_windows = f.eval_windows;
  if (f.timed) {
    // The slowest node trains --steps; the schedule covers the fastest one's s-times-as-many.
    nodes.timed_outer = f.steps / f.H;
    m->steps = static_cast<int64_t>(std::llround(static_cast<double>(f.steps) * demo_max_slowdown(nodes)));
  }
  if (Status st = node::write_manifest_file((dir / "manifest.json").string(), *m); !st.ok()) return fail(st);
  const std::string run_id = node::run_id_of(*m);
  // DiLoCo's all-reduce carries values in the codec's mode, without zstd (docs/protocols/allreduce.md).
  const std::string wire = m->method == "diloco" ? "all-reduce " + m->codec
                                                 : "codec " + m->codec + (m->zstd ? "+zstd" : "");
  std::printf("noloco demo: %d nodes on loopback, method %s, run %s (%s model, %lld inner steps, H=%lld, %s)\n",
              f.peers, m->method.c_str(), run_id.c_str(), m->preset.c_str(), static_cast<long long>(m->steps),
              static_cast<long long>(m->H), wire.c_str());
  std::printf("files: %s\n", dir.c_str());
  std::fflush(stdout);

  Swarm emulator, swarm;
  const auto net = start_net(emulator, f, dir, nodes.exe);
  if (!net.ok()) return fail(net.status());
  const auto addr0 = start_nodes(swarm, nodes, run_id, *net ? &**net : nullptr);
  if (!addr0.ok()) {
    swarm.terminate_all();
    emulator.terminate_all();
    return fail(addr0.status());
  }
  std::vector<NodeState> states(swarm.size());
  for (size_t i = 0; i < states.size(); ++i) states[i].name = swarm.name(i);
  states[0].addr = *addr0;
  Progress progress(m->steps / m->H);
  swarm.pump([&](size_t i, const std::string& line) { progress.on_line(states[i], line); });
  const bool all_ok = swarm.reap_all();
  emulator.terminate_all();
  (void)emulator.reap_all();  // killed on purpose: its exit status says nothing

  const double entropy = trainer::bits_to_nats(trainer::unigram_entropy_bits(corpus));
  const bool all_fell = finish_demo_summary(states, progress, {run_id, dir, f.peers, entropy, m->method});
  if (!all_ok) return 1;
  if (!all_fell && !stop_requested()) {
    std::printf("a node's validation loss did not fall\n");
    return 1;
  }
  return 0;
}

}  // namespace

Command register_demo(CLI::App& app) {
  auto* sub = app.add_subcommand("demo", "run a local swarm of training nodes on loopback and summarise it");
  auto f = std::make_shared<Flags>();
  sub->add_option("--peers", f->peers, "number of node processes")->capture_default_str();
  sub->add_option("--steps", f->steps, "inner steps per node")->capture_default_str();
  sub->add_option("--H", f->H, "inner steps per outer step")->capture_default_str();
  sub->add_option("--dir", f->dir, "working directory (its previous demo files are replaced)")->capture_default_str();
  sub->add_option("--data", f->data, "corpus")->capture_default_str();
  sub->add_option("--preset", f->preset, "model preset")->capture_default_str();
  sub->add_option("--codec", f->codec,
                  "wire codec: fp32 | bf16 | int8 | int4 (default bf16; diloco: fp32, the all-reduce's encoding)");
  sub->add_option("--wire", f->wire, "NoLoCo payload: delta_phi (Δ and φ) or theta (θ alone, one tensor; needs γ = β)")
      ->capture_default_str();
  sub->add_option("--method", f->method, "noloco, or diloco (all-reduce baseline, alpha 0.3)")
      ->check(CLI::IsMember({"noloco", "diloco"}))
      ->capture_default_str();
  sub->add_option("--batch", f->batch, "sequences per inner step per node")->capture_default_str();
  sub->add_option("--lr", f->lr, "peak learning rate")->capture_default_str();
  sub->add_option("--warmup", f->warmup, "warm-up steps")->capture_default_str();
  sub->add_option("--slowdowns", f->slowdowns,
                  "speed factors cycled over the nodes, e.g. 1,1,2,4 (node i: the (i mod 4)-th); overrides "
                  "--slowdown-last")
      ->delimiter(',')
      ->check(CLI::Range(1.0, 1000.0));
  sub->add_option("--eval-steps", f->eval_steps,
                  "inner steps between validation runs (a multiple of --H; default: every outer step); give "
                  "methods with different H the same value to compare them on equal terms")
      ->check(CLI::NonNegativeNumber);
  sub->add_option("--eval-windows", f->eval_windows, "held-out windows per validation run (default: the node's)")
      ->check(CLI::NonNegativeNumber);
  sub->add_flag("--timed", f->timed,
                "every node trains for about the same wall-clock (the slowest --steps, a node s times faster s times "
                "as many; the LR schedule spans the fastest) instead of the same inner steps");
  sub->add_option("--slowdown-last", f->slowdown_last, "make the last node this many times slower")
      ->capture_default_str();
  sub->add_option("--net", f->net,
                  "put every node behind the link emulator: uniform (50 ms, 100 Mbit/s), hetero (10 ms/1 Gbit, "
                  "50 ms/100 Mbit, 150 ms/20 Mbit) or lan");
  sub->add_option("--linkemu", f->linkemu, "the linkemu binary (default: next to this noloco's build)");
  sub->add_flag("--pin", f->pin,
                "pin node i to CPU i mod the CPU count, so nodes do not share cores (for measurements; "
                "needs as many CPUs as nodes to mean anything)");
  return {sub, [f] { return run_demo(*f); }};
}

}  // namespace noloco::cli
