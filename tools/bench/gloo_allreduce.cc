// One member of gloo's ring all-reduce on loopback (TCP transport, FileStore rendezvous in a
// shared directory), the comparison for allreduce_bench. Same data, same mean (sum then /n),
// same output line. tools/bench/run_allreduce.sh starts N of these.
//
//   gloo_allreduce --rank I --n N --dir DIR [--floats 2500000] [--iters 10] [--warmup 2]
#include <gloo/allreduce.h>
#include <gloo/math.h>
#include <gloo/rendezvous/context.h>
#include <gloo/rendezvous/file_store.h>
#include <gloo/transport/tcp/device.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "tools/bench/allreduce_bench_args.h"

namespace {

using noloco::bench::cpu_seconds;
using Args = noloco::bench::MemberArgs;

bool parse(int argc, char** argv, Args& a) {
  for (int i = 1; i + 1 < argc; i += 2)
    if (!a.take(argv[i], argv[i + 1])) return false;
  return a.valid();
}

}  // namespace

int main(int argc, char** argv) {
  Args a;
  if (!parse(argc, argv, a)) {
    std::fprintf(stderr, "usage: gloo_allreduce --rank I --n N --dir DIR [--floats F] [--iters K] [--warmup W]\n");
    return 2;
  }
  try {
    std::filesystem::create_directories(a.dir);
    gloo::rendezvous::FileStore store(a.dir);
    gloo::transport::tcp::attr attr("127.0.0.1");
    auto dev = gloo::transport::tcp::CreateDevice(attr);
    auto ctx = std::make_shared<gloo::rendezvous::Context>(a.rank, a.n);
    ctx->setTimeout(std::chrono::seconds(120));
    ctx->connectFullMesh(store, dev);

    std::vector<double> secs;
    int bad = 0;
    double cpu0 = 0;
    for (int it = 0; it < a.warmup + a.iters; ++it) {
      std::vector<float> data(a.floats);
      for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<float>(a.rank + static_cast<int>(i % 7));
      if (it == a.warmup) cpu0 = cpu_seconds();
      const auto t0 = std::chrono::steady_clock::now();
      gloo::AllreduceOptions opts(ctx);
      opts.setOutput(data.data(), data.size());
      opts.setReduceFunction(static_cast<void (*)(void*, const void*, const void*, size_t)>(&gloo::sum<float>));
      opts.setTag(static_cast<uint32_t>(it));
      gloo::allreduce(opts);
      const float inv = 1.0f / static_cast<float>(a.n);
      for (auto& x : data) x *= inv;
      const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      for (size_t i = 0; i < data.size(); i += 997)
        if (std::abs(data[i] - ((a.n - 1) / 2.0 + static_cast<double>(i % 7))) > 1e-4) ++bad;
      if (it >= a.warmup) secs.push_back(s);
    }
    if (bad) {
      std::fprintf(stderr, "rank %d: %d wrong values\n", a.rank, bad);
      return 1;
    }
    std::printf("cpu %d %.4f\n", a.rank, (cpu_seconds() - cpu0) / a.iters);  // summed by run_allreduce.sh
    std::sort(secs.begin(), secs.end());
    const double med = secs[secs.size() / 2];
    const double bytes = static_cast<double>(a.floats) * 4;
    if (a.rank == 0)
      std::printf("gloo   fp32 n=%d  %.1f MB  median %.4f s  (min %.4f max %.4f, %d iters)  algbw %.1f MB/s  busbw %.1f MB/s\n",
                  a.n, bytes / 1e6, med, secs.front(), secs.back(), a.iters, bytes / med / 1e6,
                  bytes / med / 1e6 * 2.0 * (a.n - 1) / a.n);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "rank %d: gloo: %s\n", a.rank, e.what());
    return 1;
  }
  return 0;
}
