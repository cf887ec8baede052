// One NoLoCo outer step's exchange between two processes at a real model size, through the node's
// own code (build_payload / NodeNetwork / verify_payload / apply_outer_step), printing per side:
// encode, transfer, verify and apply time, bytes on the wire, and peak memory above the model
// state in each phase (VmHWM, restarted through /proc/self/clear_refs at each phase start, minus
// VmRSS before the step; what a phase keeps, such as our payload, counts in the later phases too).
//
//   exchange_bench [--preset gpt-125m] [--codec bf16|int8|int4|fp32] [--zstd] [--form delta_phi|theta]
//                  [--port P] [--dial HOST:PORT] [--listen-ip IP] [--dial-from IP] [--via IP]
//                  [--spool DIR | --in-memory]
//
// Our payload is spooled to an unlinked file in DIR (default: the current folder), as the node
// does in its --db folder (trainer/node/payload_spool.h); --in-memory keeps it in the heap.
// The process spawns its partner (itself with --role serve) listening on 127.0.0.1:P (0: any;
// --listen-ip another loopback address), then dials it (or HOST:PORT instead). Through linkemu
// (tools/bench/exchange_wan.sh): the partner listens on its node's real address, the dialer binds
// its sockets to its own node's address (--dial-from, how linkemu tells nodes apart) and dials the
// partner's proxy address (--via: the partner's announced IP with its port). Both build their
// payload, swap it (the dialer's exchange_with, the listener's answer + inbox), then each
// verifies and applies the other's. Memory: large allocations are mmapped (M_MMAP_THRESHOLD
// 1 MiB) so that freed buffers leave the RSS and the high-water mark shows real peaks.
#include <malloc.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <torch/torch.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <string>
#include <thread>
#include <vector>

#include "p2p/identity.h"
#include "p2p/multiaddr.h"
#include "trainer/core/replica.h"
#include "trainer/node/node_network.h"
#include "trainer/node/node_payload.h"

extern char** environ;

using namespace noloco;
using namespace noloco::node;
using Clk = std::chrono::steady_clock;

namespace {

struct Args {
  std::string preset = "gpt-125m", codec = "bf16", form = "delta_phi", role = "dial", dial;
  std::string listen_ip = "127.0.0.1", dial_from, via, spool = ".";
  bool zstd = false;
  int port = 0;
};

Args parse(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    std::string k = argv[i];
    auto val = [&]() -> std::string { return i + 1 < argc ? argv[++i] : ""; };
    if (k == "--preset") a.preset = val();
    else if (k == "--codec") a.codec = val();
    else if (k == "--form") a.form = val();
    else if (k == "--role") a.role = val();
    else if (k == "--dial") a.dial = val();
    else if (k == "--port") a.port = std::stoi(val());
    else if (k == "--listen-ip") a.listen_ip = val();
    else if (k == "--dial-from") a.dial_from = val();
    else if (k == "--via") a.via = val();
    else if (k == "--spool") a.spool = val();
    else if (k == "--in-memory") a.spool.clear();
    else if (k == "--zstd") a.zstd = true;
    else { std::cerr << "unknown argument " << k << "\n"; std::exit(2); }
  }
  return a;
}

// kB fields of /proc/self/status.
double status_mb(const char* field) {
  std::ifstream f("/proc/self/status");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind(field, 0) == 0) return std::stod(line.substr(std::string(field).size())) / 1024.0;
  return -1;
}
void reset_hwm() { std::ofstream("/proc/self/clear_refs") << "5"; }
double secs(Clk::time_point t0) { return std::chrono::duration<double>(Clk::now() - t0).count(); }

codec::Mode mode_of(const std::string& s) {
  if (s == "fp32") return codec::Mode::kFp32;
  if (s == "int8") return codec::Mode::kInt8;
  if (s == "int4") return codec::Mode::kInt4;
  return codec::Mode::kBf16;
}

std::unique_ptr<trainer::Replica> make_replica(const Args& a, const Bytes* corpus, uint64_t noise_seed) {
  trainer::ReplicaConfig rc;
  rc.model = *trainer::model_preset(a.preset);
  rc.batch = 1;
  rc.seed = 7;  // the same initial weights on both sides, as in a run
  rc.inner.schedule = trainer::LrSchedule{1e-3, 1, 100, 0.1};
  auto r = trainer::Replica::create(rc, corpus, 0, 1);
  if (!r.ok()) { std::cerr << r.status().to_string() << "\n"; std::exit(1); }
  torch::NoGradGuard ng;
  // A phase of training, roughly: θ moved away from φ by a small update of its own.
  auto gen = at::make_generator<at::CPUGeneratorImpl>(noise_seed);
  (*r)->theta().add_(torch::randn((*r)->theta().sizes(), gen) * 1e-3);
  return std::move(*r);
}

struct Measure {
  double base = 0;
  void start() {
    malloc_trim(0);
    base = status_mb("VmRSS:");
    reset_hwm();
  }
  // The phase's peak above the baseline; restarts the high-water mark for the next phase.
  double peak() const {
    const double p = status_mb("VmHWM:") - base;
    reset_hwm();
    return p;
  }
};

// The listener's side: answer the dialer, keep its payload, verify and apply it.
Result<Payload> wait_inbox(NodeNetwork& net) {
  for (int i = 0; i < 600000; ++i) {
    auto in = net.take_inbox();
    if (!in.empty()) return std::move(in.front().payload);
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return Status(StatusCode::kTimeout, "no payload");
}

int run(const Args& a) {
  const bool dialer = a.role == "dial";
  torch::set_num_threads(1);
  mallopt(M_MMAP_THRESHOLD, 1 << 20);
  Bytes corpus(1 << 20, 'a');
  auto r = make_replica(a, &corpus, dialer ? 1 : 2);
  const uint64_t numel = static_cast<uint64_t>(r->phi().numel());
  PayloadSettings ps;
  ps.codec.mode = mode_of(a.codec);
  ps.codec.zstd = a.zstd;
  ps.form = *wire_form_from_name(a.form);
  ps.run_id = "bench";
  ps.spool_dir = a.spool;
  NetworkOptions no;
  no.identity = *p2p::Identity::generate();
  no.listen = *p2p::Multiaddr::parse("/ip4/" + (dialer && !a.dial_from.empty() ? a.dial_from : a.listen_ip) +
                                      "/tcp/" + std::to_string(dialer ? 0 : a.port));
  if (dialer) no.host.dial_from = a.dial_from;
  no.run_id = "bench";
  no.expect = {ps.run_id, numel, ps.form, numel * 4 + numel / 64 + 4096, ""};
  ps.sender = no.identity->peer_id().to_string();
  auto started = NodeNetwork::start(std::move(no));
  if (!started.ok()) { std::cerr << started.status().to_string() << "\n"; return 1; }
  std::unique_ptr<NodeNetwork> net = std::move(*started);

  Measure m;
  m.start();
  auto t = Clk::now();
  auto payload = build_payload(*r, ps);
  if (!payload.ok()) { std::cerr << payload.status().to_string() << "\n"; return 1; }
  auto mine = std::make_shared<const WirePayload>(std::move(*payload));
  payload = Status(StatusCode::kInternal, "moved");
  const double enc_s = secs(t), enc_mb = m.peak();
  net->publish_exchange_payload(mine);
  if (!dialer) std::cout << "ADDR " << net->listen_addr().to_string() << std::endl;

  t = Clk::now();
  Result<Payload> got = Status(StatusCode::kInternal, "none");
  uint64_t bytes_in = 0;
  if (dialer) {
    std::string line, addr = a.dial;
    if (addr.empty()) {  // the partner's address from its first line
      std::getline(std::cin, line);
      addr = line.substr(5);
    }
    if (!a.via.empty()) {  // /ip4/IP/tcp/... -> /ip4/VIA/tcp/...
      const size_t b = addr.find("/ip4/") + 5, e = addr.find('/', b);
      addr = addr.substr(0, b) + a.via + addr.substr(e);
    }
    auto ma = *p2p::Multiaddr::parse(addr.find("/p2p/") == std::string::npos ? addr : addr.substr(0, addr.find("/p2p/")));
    p2p::PeerRecord rec;
    rec.peer = *p2p::PeerId::parse(addr.substr(addr.find("/p2p/") + 5));
    rec.addrs = {ma.to_string()};
    auto out = net->exchange_with(rec, mine, std::chrono::seconds(600));
    for (auto& f : out.failures) std::cerr << "exchange: " << f << "\n";
    if (out.partner) got = std::move(out.partner->payload);
    bytes_in = out.bytes_received;
  } else {
    got = wait_inbox(*net);
    bytes_in = net->traffic().exchange_in;
  }
  const double xfer_s = secs(t), xfer_mb = m.peak();
  if (!got.ok()) { std::cerr << got.status().to_string() << "\n"; return 1; }

  t = Clk::now();
  ExchangeExpectations e{ps.run_id, numel, ps.form, numel * 4 + numel / 64 + 4096, ""};
  auto c = verify_payload(std::move(*got), *r, e, VerifyLimits{});
  const double ver_s = secs(t), ver_mb = m.peak();
  if (!c.ok()) { std::cerr << c.status().to_string() << "\n"; return 1; }
  t = Clk::now();
  if (Status st = apply_outer_step(*r, std::span<const PeerContribution>(&*c, 1), trainer::NolocoParams{}, ps.form);
      !st.ok()) {
    std::cerr << st.to_string() << "\n";
    return 1;
  }
  const double app_s = secs(t);
  c = Status(StatusCode::kInternal, "done");
  got = Status(StatusCode::kInternal, "done");
  const double app_mb = m.peak();
  std::printf("%s %s%s %s%s params %llu model_MB %.0f | bytes out %zu in %llu | encode %.2f s transfer %.2f s "
              "verify %.2f s apply %.2f s | peak MB above the model state: encode %.0f transfer %.0f verify %.0f apply %.0f\n",
              dialer ? "dialer  " : "listener", a.codec.c_str(), a.zstd ? "+zstd" : "", a.form.c_str(),
              a.spool.empty() ? " in-memory" : " spooled",
              static_cast<unsigned long long>(numel), numel * 4 / 1048576.0, mine->size(),
              static_cast<unsigned long long>(bytes_in), enc_s, xfer_s, ver_s, app_s, enc_mb, xfer_mb, ver_mb, app_mb);
  std::fflush(stdout);
  if (dialer && a.dial.empty()) {
    // Our payload may still be on its way after the answer came in (the network thread goes on
    // sending): stay up until the partner has printed its line, which it does once it has ours.
    std::string theirs;
    if (std::getline(std::cin, theirs)) std::cout << theirs << std::endl;
  }
  if (!dialer) {  // stay up until the dialer has our answer (it closes our stdin)
    std::string rest;
    while (std::getline(std::cin, rest)) {}
  }
  net->stop();
  return 0;
}

// Spawns the listener with pipes on its stdin/stdout, then runs the dialer here.
int spawn_and_dial(int argc, char** argv, Args a) {
  int to_child[2], from_child[2];
  if (pipe(to_child) != 0 || pipe(from_child) != 0) return 1;
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, to_child[0], 0);
  posix_spawn_file_actions_adddup2(&fa, from_child[1], 1);
  posix_spawn_file_actions_addclose(&fa, to_child[1]);
  posix_spawn_file_actions_addclose(&fa, from_child[0]);
  std::vector<std::string> args(argv, argv + argc);
  args.push_back("--role");
  args.push_back("serve");
  std::vector<char*> cargs;
  for (auto& s : args) cargs.push_back(s.data());
  cargs.push_back(nullptr);
  pid_t pid;
  if (posix_spawn(&pid, "/proc/self/exe", &fa, nullptr, cargs.data(), environ) != 0) return 1;
  close(to_child[0]);
  close(from_child[1]);
  // Our stdin becomes the child's stdout: its ADDR line, then its RESULT line.
  dup2(from_child[0], 0);
  const int keep_child = to_child[1];
  int rc = run(a);
  close(keep_child);  // the listener may exit now
  std::string line;
  while (std::getline(std::cin, line)) std::cout << line << "\n";
  int st = 0;
  waitpid(pid, &st, 0);
  return rc != 0 ? rc : (WIFEXITED(st) ? WEXITSTATUS(st) : 1);
}

}  // namespace

int main(int argc, char** argv) {
  Args a = parse(argc, argv);
  if (a.role == "serve") return run(a);
  if (!a.dial.empty()) return run(a);
  return spawn_and_dial(argc, argv, a);
}
