// Training throughput of the C++ trainer (trainer/core Replica: byte GPT + flat-buffer Adam +
// gradient clip) on random byte batches. tools/bench/train_speed.py is the same model and step in
// Python PyTorch; tools/bench/run_train_speed.sh runs both side by side and prints the ratio.
//
//   noloco_bench_train_speed [--preset tiny] [--batch 8] [--threads 2] [--warmup 3] [--steps 10]
//                            [--seed 1] [--matmul N] [--print-trim-threshold]
// Prints one JSON line: {"impl":"cpp","tokens_per_s":...,...} with per-step user/system CPU
// time and minor page faults (getrusage) and peak RSS (VmHWM); with --matmul N also the fp32
// N×N matmul throughput (GFLOP/s) measured with the same thread count (the MFU denominator).
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "matmul_throughput.h"
#include "process_usage.h"
#include "trainer/core/heap_policy.h"
#include "trainer/core/memory_budget.h"
#include "trainer/core/model.h"
#include "trainer/core/replica.h"

namespace {

struct Args {
  std::string preset = "tiny";
  int64_t batch = 8;
  int threads = 2;
  int warmup = 3;
  int steps = 10;
  uint64_t seed = 1;
  int64_t matmul = 0;
  bool print_trim = false;
};

bool parse(int argc, char** argv, Args& a) {
  for (int i = 1; i < argc; ++i) {
    auto val = [&](const char* name) -> const char* {
      return (!std::strcmp(argv[i], name) && i + 1 < argc) ? argv[++i] : nullptr;
    };
    if (const char* v = val("--preset")) a.preset = v;
    else if (const char* v = val("--batch")) a.batch = std::atoll(v);
    else if (const char* v = val("--threads")) a.threads = std::atoi(v);
    else if (const char* v = val("--warmup")) a.warmup = std::atoi(v);
    else if (const char* v = val("--steps")) a.steps = std::atoi(v);
    else if (const char* v = val("--seed")) a.seed = std::strtoull(v, nullptr, 10);
    else if (const char* v = val("--matmul")) a.matmul = std::atoll(v);
    else if (!std::strcmp(argv[i], "--print-trim-threshold")) a.print_trim = true;
    else return false;
  }
  return a.batch > 0 && a.threads > 0 && a.warmup >= 0 && a.steps > 0 && a.matmul >= 0;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace noloco::trainer;
  Args args;
  if (!parse(argc, argv, args)) {
    std::fprintf(stderr,
                 "usage: %s [--preset NAME] [--batch B] [--threads T] [--warmup W] [--steps S] "
                 "[--seed N] [--matmul N] [--print-trim-threshold]\n",
                 argv[0]);
    return 2;
  }
  auto model = model_preset(args.preset);
  if (!model.ok()) {
    std::fprintf(stderr, "%s\n", model.status().to_string().c_str());
    return 2;
  }
  if (args.print_trim) {
    // The malloc trim threshold a replica of this preset and batch sets for itself, so that
    // run_train_speed.sh can give the Python twin the same (MALLOC_TRIM_THRESHOLD_).
    std::printf("%lld\n", static_cast<long long>(heap_trim_threshold_for(
                              training_memory_budget(*model, args.batch).step_peak())));
    return 0;
  }
  noloco::bench::set_torch_threads(args.threads);
  torch::manual_seed(args.seed);

  ReplicaConfig rc;
  rc.model = *model;
  rc.batch = args.batch;
  rc.seed = args.seed;
  rc.inner.schedule.peak = 3e-4;  // constant 3e-4, as the Python twin
  rc.inner.schedule.warmup = 0;
  rc.inner.schedule.final_ratio = 1.0;
  rc.inner.clip = 1.0;
  const int64_t ctx = rc.model.context;
  // The replica wants a training stream; the timed steps use the fixed random batches below
  // (as the Python side does), so this only has to be long enough for the shard reader.
  noloco::Bytes stream(static_cast<size_t>(4 * args.batch * (ctx + 1)), 0);
  for (size_t i = 0; i < stream.size(); ++i) stream[i] = static_cast<uint8_t>((i * 2654435761u) >> 13);
  auto replica = Replica::create(rc, &stream, 0, 1);
  if (!replica.ok()) {
    std::fprintf(stderr, "%s\n", replica.status().to_string().c_str());
    return 1;
  }
  Replica& r = **replica;

  std::vector<torch::Tensor> batches;
  for (int i = 0; i < 4; ++i) batches.push_back(torch::randint(0, 256, {args.batch, ctx + 1}, torch::kInt64));

  const double rss_model_mib = noloco::bench::proc_status_mib("VmRSS");
  for (int i = 0; i < args.warmup; ++i) r.train_step_on(batches[i % batches.size()]);
  std::vector<double> times;
  const noloco::bench::ProcessUsage u0 = noloco::bench::process_usage();
  float loss = 0;
  const auto t_all = std::chrono::steady_clock::now();
  for (int i = 0; i < args.steps; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    loss = r.train_step_on(batches[(args.warmup + i) % batches.size()]);
    times.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - t_all).count();
  const noloco::bench::ProcessUsage u1 = noloco::bench::process_usage();
  const double peak_rss_mib = noloco::bench::proc_status_mib("VmHWM");
  std::vector<double> sorted = times;
  std::sort(sorted.begin(), sorted.end());
  const size_t n = sorted.size();
  const double median = n % 2 ? sorted[n / 2] : 0.5 * (sorted[n / 2 - 1] + sorted[n / 2]);
  const double tokens = static_cast<double>(args.batch * ctx);

  std::printf(
      "{\"impl\": \"cpp\", \"preset\": \"%s\", \"d_model\": %lld, \"n_layer\": %lld, \"n_head\": %lld, "
      "\"context\": %lld, \"params\": %lld, \"batch\": %lld, \"threads\": %d, \"warmup\": %d, "
      "\"steps\": %d, \"tokens_per_s\": %.3f, \"median_step_ms\": %.4f, \"final_loss\": %.6f",
      args.preset.c_str(), (long long)rc.model.d_model, (long long)rc.model.n_layer,
      (long long)rc.model.n_head, (long long)ctx, (long long)parameter_count(rc.model),
      (long long)args.batch, noloco::bench::torch_threads(), args.warmup, args.steps,
      tokens * args.steps / elapsed, median * 1e3, loss);
  // Per timed step: CPU seconds in user space and in the kernel, minor page faults. Peak RSS is
  // the whole run's (model creation and warm-up included); rss_model_mib is after creation.
  std::printf(
      ", \"user_s_per_step\": %.5f, \"sys_s_per_step\": %.5f, \"minflt_per_step\": %.1f, "
      "\"peak_rss_mib\": %.1f, \"rss_model_mib\": %.1f",
      (u1.user_s - u0.user_s) / args.steps, (u1.system_s - u0.system_s) / args.steps,
      static_cast<double>(u1.minor_faults - u0.minor_faults) / args.steps, peak_rss_mib, rss_model_mib);
  if (args.matmul > 0)
    std::printf(", \"matmul_n\": %lld, \"matmul_gflops\": %.3f", (long long)args.matmul,
                noloco::bench::matmul_gflops(args.matmul));
  std::printf("}\n");
  return 0;
}
