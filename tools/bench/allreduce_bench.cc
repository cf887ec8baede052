// One member of a loopback all-reduce benchmark over our overlay (TCP + Noise + yamux, protocol
// /noloco/allreduce/1.0.0). tools/bench/run_allreduce.sh starts N of these; they find each other
// through address files in a shared directory. Rank 0 prints one line of figures.
//
//   allreduce_bench --rank I --n N --dir DIR [--floats 2500000] [--iters 10] [--warmup 2] [--chunk 32768]
//                   [--codec fp32|bf16|int8|int4]
#include <asio/executor_work_guard.hpp>
#include <asio/io_context.hpp>
#include <asio/post.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>

#include "p2p/host.h"
#include "tools/bench/allreduce_bench_args.h"
#include "trainer/node/allreduce_ring.h"
#include "trainer/node/allreduce_service.h"

using namespace noloco;
namespace fs = std::filesystem;

namespace {

using bench::cpu_seconds;

struct Args : bench::MemberArgs {
  uint32_t chunk = 32768, inflight = 4;
  codec::Mode encoding = codec::Mode::kFp32;
  size_t read_buffer = 0, send_buffer = 0;  // 0: the host's defaults
};

bool codec_of(const std::string& name, codec::Mode& out) {
  for (codec::Mode m : {codec::Mode::kFp32, codec::Mode::kBf16, codec::Mode::kInt8, codec::Mode::kInt4})
    if (name == codec::mode_name(m)) return out = m, true;
  return false;
}

bool parse(int argc, char** argv, Args& a) {
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string k = argv[i], v = argv[i + 1];
    if (a.take(k, v)) continue;
    if (k == "--codec") {
      if (!codec_of(v, a.encoding)) return false;
      continue;
    }
    if (k == "--chunk") a.chunk = static_cast<uint32_t>(std::stoul(v));
    else if (k == "--inflight") a.inflight = static_cast<uint32_t>(std::stoul(v));
    else if (k == "--read-buffer") a.read_buffer = std::stoull(v);
    else if (k == "--send-buffer") a.send_buffer = std::stoull(v);
    else return false;
  }
  return a.valid();
}

// Publishes our address and waits for everyone's (a file per member, written by rename).
std::vector<node::AllReduceMember> rendezvous(const Args& a, const p2p::Multiaddr& me) {
  const fs::path tmp = fs::path(a.dir) / ("tmp." + std::to_string(a.rank));
  std::ofstream(tmp) << me.to_string();
  fs::rename(tmp, fs::path(a.dir) / ("member." + std::to_string(a.rank)));
  std::vector<node::AllReduceMember> out;
  for (int r = 0; r < a.n; ++r) {
    const fs::path f = fs::path(a.dir) / ("member." + std::to_string(r));
    while (!fs::exists(f)) std::this_thread::sleep_for(std::chrono::milliseconds(20));
    std::string text;
    std::ifstream(f) >> text;
    auto addr = p2p::Multiaddr::parse(text);
    if (!addr.ok() || !addr->peer_id()) {
      std::fprintf(stderr, "bad address file %s\n", f.c_str());
      std::exit(2);
    }
    out.push_back({*addr->peer_id(), *addr});
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  Args a;
  if (!parse(argc, argv, a)) {
    std::fprintf(stderr, "usage: allreduce_bench --rank I --n N --dir DIR [--floats F] [--iters K] [--warmup W] [--chunk C] [--inflight K] [--codec fp32|bf16|int8|int4]\n");
    return 2;
  }
  asio::io_context io;
  auto work = asio::make_work_guard(io);
  auto id = p2p::Identity::generate();
  p2p::HostOptions host_opt;
  if (a.read_buffer) host_opt.read_buffer_size = a.read_buffer;
  if (a.send_buffer) host_opt.max_stream_send_buffer = a.send_buffer;
  auto host = p2p::Host::create(io, *id, host_opt);
  if (!host.ok()) return 1;
  auto bound = (*host)->listen(*p2p::Multiaddr::parse("/ip4/127.0.0.1/tcp/0"));
  if (!bound.ok()) return 1;
  node::AllReduceOptions opt;
  opt.run_id = "allreduce-bench";
  opt.chunk_elems = a.chunk;
  opt.writes_in_flight = a.inflight;
  opt.encoding = a.encoding;
  opt.gather_timeout = std::chrono::seconds(60);
  auto service = node::AllReduceService::create(io, *host, opt);
  if (!service.ok()) return 1;
  std::thread net([&] { io.run(); });
  auto members = rendezvous(a, *bound);

  std::vector<double> secs, gather;
  uint64_t bytes_out = 0;
  int bad = 0;
  double cpu0 = 0;
  // Exact for fp32 but for the rounding of the mean; lossy encodings get the ring's error bound
  // (every |x| <= n + 5, so a block's sum of magnitudes is at most n(n + 5)).
  const double tolerance = std::max(1e-4, node::ring_error_bound(a.encoding, a.n, a.n * (a.n + 5.0)));
  for (int it = 0; it < a.warmup + a.iters; ++it) {
    // Member r holds r + (i % 7): the mean is (n-1)/2 + (i % 7), checked below.
    std::vector<float> data(a.floats);
    for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<float>(a.rank + static_cast<int>(i % 7));
    if (it == a.warmup) cpu0 = cpu_seconds();
    auto r = (*service)->allreduce(data, static_cast<uint64_t>(it), members, std::chrono::seconds(120));
    if (!r.ok() || r->members.size() != static_cast<size_t>(a.n)) {
      std::fprintf(stderr, "rank %d iteration %d: %s\n", a.rank, it, r.ok() ? "fewer members" : r.status().to_string().c_str());
      return 1;
    }
    for (size_t i = 0; i < data.size(); i += 997)
      if (std::abs(data[i] - ((a.n - 1) / 2.0 + static_cast<double>(i % 7))) > tolerance) ++bad;
    if (it >= a.warmup) {
      secs.push_back(r->seconds);
      gather.push_back(r->gather_seconds);
      bytes_out = r->bytes_sent;
    }
  }
  const double cpu = cpu_seconds() - cpu0;  // includes filling and checking the vectors
  std::this_thread::sleep_for(std::chrono::seconds(2));  // let the last messages leave before we close
  (*service)->close();
  asio::post(io, [h = *host] { h->close(); });
  work.reset();
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  io.stop();
  net.join();
  if (bad) {
    std::fprintf(stderr, "rank %d: %d wrong values\n", a.rank, bad);
    return 1;
  }
  std::sort(secs.begin(), secs.end());
  std::sort(gather.begin(), gather.end());
  const double med = secs[secs.size() / 2];
  const double bytes = static_cast<double>(a.floats) * 4;
  std::printf("cpu %d %.4f\n", a.rank, cpu / a.iters);  // summed over members by run_allreduce.sh
  if (a.rank == 0)
    std::printf("noloco %-4s n=%d  %.1f MB  median %.4f s  (min %.4f max %.4f, %d iters)  algbw %.1f MB/s  busbw %.1f MB/s  sent/member %.1f MB  gather median %.4f s",
                codec::mode_name(a.encoding), a.n, bytes / 1e6, med, secs.front(), secs.back(), a.iters, bytes / med / 1e6,
                bytes / med / 1e6 * 2.0 * (a.n - 1) / a.n, static_cast<double>(bytes_out) / 1e6, gather[gather.size() / 2]);
  return 0;
}
