// What training pays while a checkpoint is written: tokens/s of one replica's inner steps with
// and without a checkpoint of its own state being written in the background, the way the node
// does it (make_checkpoint on the training thread, then CheckpointWriter::submit; the writer
// thread hashes and writes).
//
//   checkpoint_train_bench [--preset gpt-125m] [--batch 1] [--threads 2] [--steps 4] [--rounds 2]
//                          [--dir /tmp/noloco-ckpt-train-bench]
//
// Each round trains `steps` steps without a checkpoint, then `steps` steps with one submitted
// just before the first of them. "during" counts the steps that started before the writer
// reported the checkpoint committed (snapshot included); "window" all `steps` steps. Random
// byte batches, as tools/bench/train_speed.cc. Prints figures; not a test.
#include <torch/torch.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "matmul_throughput.h"
#include "storage/checkpoint_writer.h"
#include "storage/store.h"
#include "trainer/core/model.h"
#include "trainer/core/replica.h"
#include "trainer/node/checkpointing.h"

using namespace noloco;
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

namespace {

struct Args {
  std::string preset = "gpt-125m";
  std::string dir = (fs::temp_directory_path() / "noloco-ckpt-train-bench").string();
  int64_t batch = 1;
  int threads = 2;
  int steps = 4;
  int rounds = 2;
};

bool parse(int argc, char** argv, Args& a) {
  for (int i = 1; i < argc; ++i) {
    auto val = [&](const char* name) -> const char* {
      return (!std::strcmp(argv[i], name) && i + 1 < argc) ? argv[++i] : nullptr;
    };
    if (const char* v = val("--preset")) a.preset = v;
    else if (const char* v = val("--dir")) a.dir = v;
    else if (const char* v = val("--batch")) a.batch = std::atoll(v);
    else if (const char* v = val("--threads")) a.threads = std::atoi(v);
    else if (const char* v = val("--steps")) a.steps = std::atoi(v);
    else if (const char* v = val("--rounds")) a.rounds = std::atoi(v);
    else return false;
  }
  return a.batch > 0 && a.threads > 0 && a.steps > 0 && a.rounds > 0;
}

double secs(Clock::time_point a, Clock::time_point b) { return std::chrono::duration<double>(b - a).count(); }

struct Window {
  double seconds = 0;        // all steps
  double during_s = 0;       // steps that started before the checkpoint was committed
  int during_steps = 0;
  double snapshot_s = 0;     // make_checkpoint on the training thread
  double submit_s = 0;       // waiting in submit (back-pressure)
  double write_s = 0;        // submit to committed, on the writer thread
};

// `steps` steps; with a writer, a checkpoint of the replica is submitted first.
Window train_window(trainer::Replica& r, const std::vector<torch::Tensor>& batches, int steps,
                    storage::CheckpointWriter* writer, std::atomic<int64_t>* committed_at_ns) {
  Window w;
  const auto t0 = Clock::now();
  if (writer) {
    committed_at_ns->store(0);
    auto cp = node::make_checkpoint(r, "bench", "bench-config");
    if (!cp.ok()) std::fprintf(stderr, "%s\n", cp.status().to_string().c_str()), std::exit(1);
    const auto t1 = Clock::now();
    if (Status s = writer->submit(std::move(*cp)); !s.ok())
      std::fprintf(stderr, "%s\n", s.to_string().c_str()), std::exit(1);
    w.snapshot_s = secs(t0, t1);
    w.submit_s = secs(t1, Clock::now());
  }
  for (int i = 0; i < steps; ++i) {
    const auto s0 = Clock::now();
    r.train_step_on(batches[i % batches.size()]);
    const auto s1 = Clock::now();
    const int64_t done = writer ? committed_at_ns->load() : 0;
    const bool during = writer && (done == 0 || done > s0.time_since_epoch().count());
    if (during) {
      w.during_s += secs(i == 0 ? t0 : s0, s1);  // the first step carries the snapshot
      ++w.during_steps;
    }
  }
  w.seconds = secs(t0, Clock::now());
  if (writer) {
    if (Status s = writer->flush(); !s.ok()) std::fprintf(stderr, "%s\n", s.to_string().c_str()), std::exit(1);
    const int64_t done = committed_at_ns->load();
    w.write_s = std::chrono::duration<double>(std::chrono::nanoseconds(done) - t0.time_since_epoch()).count() -
                w.snapshot_s;
    if (w.during_steps == steps) std::printf("  (the write outlasted the window: use more --steps)\n");
  }
  return w;
}

}  // namespace

int main(int argc, char** argv) {
  Args a;
  if (!parse(argc, argv, a)) {
    std::fprintf(stderr, "usage: %s [--preset P] [--batch B] [--threads T] [--steps S] [--rounds R] [--dir D]\n",
                 argv[0]);
    return 2;
  }
  auto model = trainer::model_preset(a.preset);
  if (!model.ok()) return std::fprintf(stderr, "%s\n", model.status().to_string().c_str()), 2;
  bench::set_torch_threads(a.threads);
  torch::manual_seed(1);
  trainer::ReplicaConfig rc;
  rc.model = *model;
  rc.batch = a.batch;
  const int64_t ctx = rc.model.context;
  Bytes stream(static_cast<size_t>(4 * a.batch * (ctx + 1)), 0);
  for (size_t i = 0; i < stream.size(); ++i) stream[i] = static_cast<uint8_t>((i * 2654435761u) >> 13);
  auto replica = trainer::Replica::create(rc, &stream, 0, 1);
  if (!replica.ok()) return std::fprintf(stderr, "%s\n", replica.status().to_string().c_str()), 1;
  std::vector<torch::Tensor> batches;
  for (int i = 0; i < 4; ++i) batches.push_back(torch::randint(0, 256, {a.batch, ctx + 1}, torch::kInt64));

  fs::remove_all(a.dir);
  storage::StoreOptions so;
  so.path = a.dir;
  so.retention.keep_last = 2;
  auto store = storage::Store::open(so);
  if (!store.ok()) return std::fprintf(stderr, "%s\n", store.status().to_string().c_str()), 1;
  std::atomic<int64_t> committed_at{0};
  storage::CheckpointWriterOptions wo;
  wo.on_done = [&](const Result<storage::CheckpointInfo>&) {
    committed_at.store(Clock::now().time_since_epoch().count());
  };
  storage::CheckpointWriter writer(**store, wo);

  const double params = static_cast<double>(trainer::parameter_count(rc.model));
  const double tokens = static_cast<double>(a.batch * ctx);
  std::printf("preset %s (%.0f params, checkpoint %.3f GB), batch %lld x %lld tokens, torch threads %d\n",
              a.preset.c_str(), params, params * 20 / 1e9, (long long)a.batch, (long long)ctx, a.threads);
  (*replica)->train_step_on(batches[0]);  // warm-up
  std::vector<double> base, during, window;
  for (int round = 0; round < a.rounds; ++round) {
    Window off = train_window(**replica, batches, a.steps, nullptr, nullptr);
    Window on = train_window(**replica, batches, a.steps, &writer, &committed_at);
    base.push_back(tokens * a.steps / off.seconds);
    during.push_back(on.during_steps ? tokens * on.during_steps / on.during_s : 0);
    window.push_back(tokens * a.steps / on.seconds);
    std::printf("round %d: without %.1f tok/s | with: during the write %.1f tok/s over %d step(s) (%.2fx), "
                "window %.1f tok/s (%.2fx); snapshot %.3f s, submit wait %.3f s, write %.3f s\n",
                round, base.back(), during.back(), on.during_steps, during.back() / base.back(), window.back(),
                window.back() / base.back(), on.snapshot_s, on.submit_s, on.write_s);
    std::fflush(stdout);
  }
  double b = 0, d = 0, w = 0;
  for (int i = 0; i < a.rounds; ++i) b += base[i], d += during[i], w += window[i];
  std::printf("mean: without %.1f tok/s, during the write %.1f tok/s (%.2fx), window %.1f tok/s (%.2fx)\n",
              b / a.rounds, d / a.rounds, d / b, w / a.rounds, w / b);
  if (Status s = writer.close(); !s.ok()) std::fprintf(stderr, "%s\n", s.to_string().c_str());
  store->reset();
  fs::remove_all(a.dir);
  return 0;
}
