// `noloco train`: single-node training that checkpoints into --db and resumes from it
// (docs/checkpoints.md). SIGINT/SIGTERM stop after the current step with a synchronous checkpoint.
#include "cli/commands.h"

#include <atomic>
#include <csignal>
#include <cstdio>
#include <memory>

#include "trainer/node/solo_train.h"

namespace noloco::cli {
namespace {

std::atomic<bool> g_stop{false};
extern "C" void on_stop_signal(int) { g_stop.store(true); }

}  // namespace

Command register_train(CLI::App& app) {
  auto* sub = app.add_subcommand("train", "train one replica, checkpointing into --db and resuming from it");
  auto o = std::make_shared<node::SoloTrainOptions>();
  sub->add_option("--db", o->db, "store directory (created if missing; resumed from if it holds a run)")
      ->required();
  sub->add_option("--steps", o->steps, "total inner steps of the run")->capture_default_str();
  sub->add_option("--checkpoint-every", o->checkpoint_every, "inner steps between checkpoints (0: only at the end)")
      ->capture_default_str();
  sub->add_option("--H", o->H, "inner steps between solo NoLoCo outer steps (0: none)")->capture_default_str();
  sub->add_option("--alpha", o->alpha, "outer momentum")->capture_default_str();
  sub->add_option("--beta", o->beta, "outer step size")->capture_default_str();
  sub->add_option("--seed", o->seed, "seed of init and data offsets")->capture_default_str();
  sub->add_option("--preset", o->preset, "model preset: tiny | small | medium | gpt-125m")->capture_default_str();
  sub->add_option("--data", o->data, "text file, folder of text files, or .bin of uint16 tokens")
      ->capture_default_str();
  sub->add_option("--lr", o->lr, "peak inner learning rate")->capture_default_str();
  sub->add_option("--warmup", o->warmup, "linear warm-up steps")->capture_default_str();
  sub->add_option("--batch", o->batch, "sequences per inner step")->capture_default_str();
  sub->add_option("--threads", o->threads, "torch threads (0: one for models under 2M parameters, else one per core)")->capture_default_str();
  sub->add_option("--device", o->device, "cpu or cuda")->capture_default_str();
  sub->add_option("--keep-last", o->keep_last, "checkpoints kept in the store")->capture_default_str();
  sub->add_option("--log-every", o->log_every, "inner steps between progress lines on stdout (0: none)")
      ->capture_default_str();

  auto run = [o]() -> int {
    std::signal(SIGINT, on_stop_signal);
    std::signal(SIGTERM, on_stop_signal);
    node::SoloTrainSinks sinks;
    sinks.line = [](const std::string& s) {
      std::fprintf(stdout, "%s\n", s.c_str());
      std::fflush(stdout);
    };
    auto r = node::run_solo_training(*o, sinks, &g_stop);
    if (!r.ok()) {
      std::fprintf(stderr, "noloco train: %s\n", r.status().to_string().c_str());
      const StatusCode c = r.status().code();
      return c == StatusCode::kInvalidArgument || c == StatusCode::kNotFound ? 2 : 1;
    }
    const auto& res = *r;
    if (res.resumed) std::fprintf(stderr, "resumed run %s from step %lld\n", res.run_id.c_str(),
                                  static_cast<long long>(res.start_step));
    std::fprintf(stdout, "%s run=%s step=%lld theta_sha256=%s phi_sha256=%s\n",
                 res.interrupted ? "interrupted" : "final", res.run_id.c_str(),
                 static_cast<long long>(res.end_step), res.theta_sha256.c_str(), res.phi_sha256.c_str());
    std::fflush(stdout);
    return res.interrupted ? 130 : 0;
  };
  return Command{sub, run};
}

}  // namespace noloco::cli
