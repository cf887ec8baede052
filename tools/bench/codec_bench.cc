// Prints, for each codec mode with and without zstd: encoded bytes, compression vs raw fp32,
// max and RMS error, and encode/decode throughput (MB of fp32 input per second), on
// (a) Gaussian pseudo-gradient-like data and (b) weight-like data.
//
//   codec_bench [elements=4194304] [zstd_level=3] [repeats=3]
//
// Numbers depend on the machine and its load; the ratios and errors do not.
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "trainer/core/codec.h"

using namespace noloco;
using namespace noloco::codec;

namespace {

// Pseudo-gradients (Δ = φ - θ after H inner steps): zero-mean, and their scale varies across
// rows/tensors by orders of magnitude, so each 1024-value row gets its own log-uniform sigma.
std::vector<float> gradient_like(size_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::uniform_real_distribution<float> log_sigma(std::log(1e-5f), std::log(1e-2f));
  std::vector<float> v(n);
  float sigma = 1e-3f;
  for (size_t i = 0; i < n; ++i) {
    if (i % 1024 == 0) sigma = std::exp(log_sigma(rng));
    v[i] = normal(rng) * sigma;
  }
  return v;
}

// Weights of a small trained transformer: matrices ~N(0, 0.02) with a few larger entries, and
// every 64th row a LayerNorm gain (~1 +- 0.1) or bias (~0 +- 0.05).
std::vector<float> weight_like(size_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::uniform_real_distribution<float> uni(0.0f, 1.0f);
  std::vector<float> v(n);
  for (size_t i = 0; i < n; ++i) {
    const size_t row = i / 256;
    if (row % 64 == 62) v[i] = 1.0f + 0.1f * normal(rng);
    else if (row % 64 == 63) v[i] = 0.05f * normal(rng);
    else v[i] = 0.02f * normal(rng) * (uni(rng) < 0.01f ? 5.0f : 1.0f);
  }
  return v;
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

void run(const char* name, const std::vector<float>& x, int level, int repeats) {
  const double mb = x.size() * 4.0 / 1e6;
  double ms = 0;
  for (float f : x) ms += double(f) * f;
  const double rms = std::sqrt(ms / x.size());
  std::printf("\ndata=%s elements=%zu (%.1f MB fp32) rms=%.3g zstd_level=%d\n", name, x.size(), mb, rms, level);
  std::printf("%-5s %5s %4s %12s %7s %10s %10s %8s %9s %9s\n", "mode", "block", "zstd", "bytes", "vs_fp32",
              "max_err", "rms_err", "rel_rms", "enc_MB/s", "dec_MB/s");
  struct Row {
    Mode mode;
    uint32_t block;
  };
  const Row rows[] = {{Mode::kFp32, 0},    {Mode::kBf16, 0},   {Mode::kInt8, 32}, {Mode::kInt8, 64},
                      {Mode::kInt8, 128},  {Mode::kInt8, 256}, {Mode::kInt4, 32}, {Mode::kInt4, 64},
                      {Mode::kInt4, 128},  {Mode::kInt4, 256}};
  const std::vector<int64_t> shape = {static_cast<int64_t>(x.size())};
  std::vector<float> y(x.size());
  for (const Row& r : rows) {
    for (bool z : {false, true}) {
      EncodeOptions opt;
      opt.mode = r.mode;
      opt.block_size = r.block ? r.block : kDefaultBlockSize;
      opt.zstd = z;
      opt.zstd_level = level;
      double best_enc = 1e30, best_dec = 1e30;
      Bytes msg;
      for (int k = 0; k < repeats; ++k) {
        auto t0 = std::chrono::steady_clock::now();
        auto e = encode(x, shape, opt);
        best_enc = std::min(best_enc, seconds_since(t0));
        if (!e.ok()) {
          std::printf("encode failed: %s\n", e.status().to_string().c_str());
          std::exit(1);
        }
        msg = std::move(e).value();
        DecodeLimits limits{x.size(), msg.size()};
        t0 = std::chrono::steady_clock::now();
        Status st = decode_into(msg, limits, y);
        best_dec = std::min(best_dec, seconds_since(t0));
        if (!st.ok()) {
          std::printf("decode failed: %s\n", st.to_string().c_str());
          std::exit(1);
        }
      }
      double max_err = 0, se = 0;
      for (size_t i = 0; i < x.size(); ++i) {
        const double d = std::fabs(double(x[i]) - y[i]);
        max_err = std::max(max_err, d);
        se += d * d;
      }
      const double rms_err = std::sqrt(se / x.size());
      std::printf("%-5s %5s %4s %12zu %6.2fx %10.3g %10.3g %8.2g %9.0f %9.0f\n", mode_name(r.mode),
                  r.block ? std::to_string(r.block).c_str() : "-", z ? "yes" : "no", msg.size(),
                  x.size() * 4.0 / msg.size(), max_err, rms_err, rms_err / rms, mb / best_enc, mb / best_dec);
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  const size_t n = argc > 1 ? std::strtoull(argv[1], nullptr, 10) : (size_t{1} << 22);
  const int level = argc > 2 ? std::atoi(argv[2]) : 3;
  const int repeats = argc > 3 ? std::atoi(argv[3]) : 3;
  if (n == 0 || repeats < 1) {
    std::fprintf(stderr, "usage: codec_bench [elements] [zstd_level] [repeats]\n");
    return 2;
  }
  run("gradient-like", gradient_like(n, 1), level, repeats);
  run("weight-like", weight_like(n, 2), level, repeats);
  return 0;
}
