// `noloco simulate`: compare outer methods with N replicas in one process (docs/simulate.md).
#include "cli/commands.h"

#include <cstdio>
#include <fstream>
#include <memory>

#include "trainer/core/simulate.h"

namespace noloco::cli {

Command register_simulate(CLI::App& app) {
  auto* sub = app.add_subcommand("simulate", "train N replicas in one process and compare outer methods");
  struct Flags {
    std::string method = "noloco";
    trainer::SimulateOptions o;
    int64_t H = 0;
    double alpha = 0, beta = 0, gamma = 0;
    std::string out;
  };
  auto f = std::make_shared<Flags>();
  auto& o = f->o;
  sub->add_option("--method", f->method, "sync | diloco | diloco-nesterov | noloco | none")
      ->capture_default_str();
  sub->add_option("--replicas", o.replicas, "number of replicas N")->capture_default_str();
  sub->add_option("--steps", o.steps, "inner steps per replica")->capture_default_str();
  auto* h = sub->add_option("--H", f->H, "inner steps between outer steps (default: noloco 10, diloco 20)");
  auto* a = sub->add_option("--alpha", f->alpha, "outer momentum (noloco 0.5, diloco 0.3, diloco-nesterov 0.9)");
  auto* b = sub->add_option("--beta", f->beta, "outer step size (0.7)");
  auto* g = sub->add_option("--gamma", f->gamma, "NoLoCo pull toward the group mean (0.7)");
  sub->add_option("--group-size", o.group_size, "NoLoCo group size n")->capture_default_str();
  sub->add_option("--partner-lag", o.partner_lag,
                  "NoLoCo: 1 = each group's first member mixes its partners' payloads from their previous "
                  "outer step, as in an asynchronous swarm (0 or 1)")
      ->capture_default_str();
  sub->add_flag("--whole-stream", o.whole_stream,
                "each replica reads the whole training stream from its own offset (as p2p nodes do), not a 1/N shard");
  sub->add_option("--wire", o.wire, "NoLoCo payload: auto | delta-phi | theta")->capture_default_str();
  sub->add_option("--codec", o.codec, "tensor codec for outer-step payloads (default raw fp32)");
  sub->add_option("--seed", o.seed, "seed of init, data offsets and pairings")->capture_default_str();
  sub->add_option("--data-seed", o.data_seed,
                  "with --whole-stream: seed of the data offsets alone (0: from --seed), to vary what the "
                  "replicas read while keeping the initial weights")
      ->capture_default_str();
  sub->add_option("--preset", o.preset, "model preset: tiny | small | medium | gpt-125m")->capture_default_str();
  sub->add_option("--data", o.data, "text file, folder of text files, or .bin of uint16 tokens")
      ->capture_default_str();
  sub->add_option("--lr", o.lr, "peak inner learning rate")->capture_default_str();
  sub->add_option("--warmup", o.warmup, "linear warm-up steps")->capture_default_str();
  sub->add_option("--batch", o.batch, "sequences per replica per inner step")->capture_default_str();
  sub->add_option("--eval-every", o.eval_every, "inner steps between evaluations")->capture_default_str();
  sub->add_option("--eval-batches", o.eval_batches, "held-out set size, in batches")->capture_default_str();
  sub->add_option("--threads", o.threads, "torch threads (0: hardware concurrency)")->capture_default_str();
  sub->add_option("--device", o.device, "cpu or cuda")->capture_default_str();
  sub->add_option("--out", f->out, "write JSON lines here (default stdout)");

  auto run = [f, h, a, b, g]() -> int {
    auto& o = f->o;
    auto m = trainer::parse_method(f->method);
    if (!m.ok()) {
      std::fprintf(stderr, "noloco simulate: %s\n", m.status().message().c_str());
      return 2;
    }
    o.method = *m;
    if (h->count()) o.H = f->H;
    if (a->count()) o.alpha = f->alpha;
    if (b->count()) o.beta = f->beta;
    if (g->count()) o.gamma = f->gamma;
    if (auto st = o.resolve(); !st.ok()) {
      std::fprintf(stderr, "noloco simulate: %s\n", st.message().c_str());
      return 2;
    }
    std::unique_ptr<std::ofstream> file;
    if (!f->out.empty()) {
      file = std::make_unique<std::ofstream>(f->out, std::ios::trunc);
      if (!*file) {
        std::fprintf(stderr, "noloco simulate: cannot write %s\n", f->out.c_str());
        return 2;
      }
    }
    trainer::SimulateSinks sinks;
    sinks.emit = [&](const std::string& line) {
      if (file) {
        *file << line << '\n';
        file->flush();
      } else {
        std::fprintf(stdout, "%s\n", line.c_str());
        std::fflush(stdout);
      }
    };
    sinks.progress = [](const std::string& text) { std::fprintf(stderr, "%s\n", text.c_str()); };
    const Status st = trainer::run_simulation(o, sinks);
    if (!st.ok()) {
      std::fprintf(stderr, "noloco simulate: %s\n", st.to_string().c_str());
      return st.code() == StatusCode::kInvalidArgument || st.code() == StatusCode::kNotFound ||
                     st.code() == StatusCode::kUnsupported
                 ? 2
                 : 1;
    }
    return 0;
  };
  return Command{sub, run};
}

}  // namespace noloco::cli
