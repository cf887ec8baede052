// What training pays while a checkpoint is written: one replica's inner steps with a checkpoint
// of its own state submitted every N steps, the way the node does it (make_checkpoint on the
// training thread, then CheckpointWriter::submit; the writer thread hashes and writes, paced
// over the checkpoint interval), against the same steps with no checkpoint at all.
//
//   checkpoint_train_bench [--preset gpt-125m] [--batch 1] [--threads 2] [--steps 12] [--every 4]
//                          [--rounds 1] [--dir /tmp/noloco-ckpt-train-bench]
//
// Each round trains `steps` steps with no checkpoint ("none"), then `steps` steps with a
// checkpoint submitted before every `every`-th step ("every N"), same replica, same batches,
// same settings. Per step it records the time (the snapshot is part of the step it precedes)
// and whether the step overlapped a write: it began before the writer reported the checkpoint
// committed and after it was submitted. It prints
//   overlap:   tokens/s over the overlapping steps, and over the steps with the same indices in
//              the "none" run of the same round (the bar: within 10 %);
//   whole run: tokens/s over all `steps` steps, every N vs none.
// Random byte batches, as tools/bench/train_speed.cc. Prints figures; not a test.
#include <sys/resource.h>
#include <torch/torch.h>

#include <ctime>

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
  int steps = 12;
  int every = 4;
  int rounds = 1;
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
    else if (const char* v = val("--every")) a.every = std::atoi(v);
    else if (const char* v = val("--rounds")) a.rounds = std::atoi(v);
    else return false;
  }
  return a.batch > 0 && a.threads > 0 && a.steps > 0 && a.every > 0 && a.rounds > 0;
}

double secs(Clock::time_point a, Clock::time_point b) { return std::chrono::duration<double>(b - a).count(); }

// Page faults (minor + major) of the calling thread so far.
long thread_faults() {
  rusage u{};
  ::getrusage(RUSAGE_THREAD, &u);
  return u.ru_minflt + u.ru_majflt;
}

// CPU seconds of the calling thread so far.
double thread_cpu_s() {
  timespec t{};
  ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_nsec) / 1e9;
}

struct Run {
  std::vector<double> step_s;   // per step, the snapshot included in the step it precedes
  std::vector<bool> overlap;    // the step began while a submitted checkpoint was not yet committed
  double snapshot_s = 0;        // make_checkpoint on the training thread, summed
  long snapshot_faults = 0;     // page faults the training thread took in make_checkpoint, summed
  double submit_s = 0;          // waiting in submit (back-pressure), summed
  int checkpoints = 0;
};

// `steps` steps; with a writer, a checkpoint is submitted before every `every`-th step
// (steps 0, every, 2*every, ...).
Run train_run(trainer::Replica& r, const std::vector<torch::Tensor>& batches, int steps, int every,
              storage::CheckpointWriter* writer, std::atomic<int>* committed) {
  Run run;
  int submitted = 0;
  const int base = committed ? committed->load() : 0;
  for (int i = 0; i < steps; ++i) {
    const auto s0 = Clock::now();
    if (writer && i % every == 0) {
      const long faults0 = thread_faults();
      auto cp = node::make_checkpoint(r, "bench", "bench-config", {}, &writer->snapshots());
      run.snapshot_faults += thread_faults() - faults0;
      if (!cp.ok()) std::fprintf(stderr, "%s\n", cp.status().to_string().c_str()), std::exit(1);
      const auto t1 = Clock::now();
      if (Status s = writer->submit(std::move(*cp)); !s.ok())
        std::fprintf(stderr, "%s\n", s.to_string().c_str()), std::exit(1);
      run.snapshot_s += secs(s0, t1);
      run.submit_s += secs(t1, Clock::now());
      ++submitted;
      ++run.checkpoints;
    }
    run.overlap.push_back(writer && committed->load() - base < submitted);
    r.train_step_on(batches[i % batches.size()]);
    run.step_s.push_back(secs(s0, Clock::now()));
  }
  if (writer)
    if (Status s = writer->flush(); !s.ok()) std::fprintf(stderr, "%s\n", s.to_string().c_str()), std::exit(1);
  return run;
}

}  // namespace

int main(int argc, char** argv) {
  Args a;
  if (!parse(argc, argv, a)) {
    std::fprintf(stderr, "usage: %s [--preset P] [--batch B] [--threads T] [--steps S] [--every N] [--rounds R] [--dir D]\n",
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
  std::atomic<int> committed{0};
  std::atomic<double> writer_cpu_s{0};  // the writer thread's CPU so far (its hashing is on it too)
  storage::CheckpointWriterOptions wo;
  wo.on_done = [&](const Result<storage::CheckpointInfo>&) {
    writer_cpu_s.store(thread_cpu_s());
    committed.fetch_add(1);
  };
  storage::CheckpointWriter writer(**store, wo);

  const double params = static_cast<double>(trainer::parameter_count(rc.model));
  const double tokens = static_cast<double>(a.batch * ctx);
  std::printf("preset %s (%.0f params, checkpoint %.3f GB), batch %lld x %lld tokens, torch threads %d, %d steps, "
              "checkpoint every %d\n",
              a.preset.c_str(), params, params * 20 / 1e9, (long long)a.batch, (long long)ctx, a.threads, a.steps,
              a.every);
  (*replica)->train_step_on(batches[0]);  // warm-up
  {
    // As the node does at start: the snapshot buffer is faulted in once, before training.
    const auto t0 = Clock::now();
    if (Status s = node::prepare_snapshots(**replica, writer.snapshots()); !s.ok())
      return std::fprintf(stderr, "%s\n", s.to_string().c_str()), 1;
    std::printf("snapshot buffer prepared at start: %.3f s\n", secs(t0, Clock::now()));
  }
  double ov_on = 0, ov_off = 0, all_on = 0, all_off = 0;
  int ov_steps = 0;
  for (int round = 0; round < a.rounds; ++round) {
    Run off = train_run(**replica, batches, a.steps, a.every, nullptr, nullptr);
    const double writer_cpu0 = writer_cpu_s.load();
    Run on = train_run(**replica, batches, a.steps, a.every, &writer, &committed);
    const double writer_cpu = writer_cpu_s.load() - writer_cpu0;
    double on_s = 0, off_s = 0, on_all = 0, off_all = 0;
    int n = 0;
    for (int i = 0; i < a.steps; ++i) {
      on_all += on.step_s[i];
      off_all += off.step_s[i];
      if (!on.overlap[i]) continue;
      on_s += on.step_s[i];
      off_s += off.step_s[i];
      ++n;
    }
    std::printf("round %d steps (s, * = overlapped a write): every %d:", round, a.every);
    for (int i = 0; i < a.steps; ++i) std::printf(" %.2f%s", on.step_s[i], on.overlap[i] ? "*" : "");
    std::printf(" | none:");
    for (int i = 0; i < a.steps; ++i) std::printf(" %.2f", off.step_s[i]);
    std::printf("\n");
    std::printf("round %d: overlap %d of %d steps: %.1f tok/s with the write vs %.1f tok/s for the same steps with "
                "none (%.2fx) | whole run: every %d %.1f tok/s vs none %.1f tok/s (%.2fx) | %d checkpoint(s), "
                "snapshot %.3f s (%ld page faults), submit wait %.3f s, writer thread CPU %.3f s, snapshot buffers "
                "%llu allocated / %llu reused so far\n",
                round, n, a.steps, n ? tokens * n / on_s : 0, n ? tokens * n / off_s : 0, n ? off_s / on_s : 0,
                a.every, tokens * a.steps / on_all, tokens * a.steps / off_all, off_all / on_all, on.checkpoints,
                on.snapshot_s, on.snapshot_faults, on.submit_s, writer_cpu,
                (unsigned long long)writer.snapshots().allocations(), (unsigned long long)writer.snapshots().reuses());
    std::fflush(stdout);
    ov_on += on_s, ov_off += off_s, ov_steps += n, all_on += on_all, all_off += off_all;
  }
  std::printf("all rounds: overlap %d steps %.1f vs %.1f tok/s (%.2fx); whole run every %d %.1f vs none %.1f tok/s "
              "(%.2fx)\n",
              ov_steps, ov_steps ? tokens * ov_steps / ov_on : 0, ov_steps ? tokens * ov_steps / ov_off : 0,
              ov_steps ? ov_off / ov_on : 0, a.every, tokens * a.steps * a.rounds / all_on,
              tokens * a.steps * a.rounds / all_off, all_off / all_on);
  if (Status s = writer.close(); !s.ok()) std::fprintf(stderr, "%s\n", s.to_string().c_str());
  store->reset();
  fs::remove_all(a.dir);
  return 0;
}
