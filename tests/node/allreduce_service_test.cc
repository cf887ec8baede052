// The all-reduce service over real Hosts on 127.0.0.1: each member has its own io_context thread
// (its network thread) and calls allreduce() from a thread of its own, as the trainer would.
// Deadlines only bound a broken test; nothing asserts how long anything took.
#include <catch2/catch.hpp>

#include <asio/executor_work_guard.hpp>
#include <asio/io_context.hpp>
#include <asio/post.hpp>
#include <spdlog/spdlog.h>

#include <atomic>
#include <cmath>
#include <future>
#include <random>
#include <thread>

#include "p2p/host.h"
#include "ring_harness.h"
#include "trainer/node/allreduce_service.h"
#include "trainer/node/node_network.h"

using namespace noloco;
using namespace noloco::node;

namespace {

struct Member {
  asio::io_context io;
  asio::executor_work_guard<asio::io_context::executor_type> work{asio::make_work_guard(io)};
  std::shared_ptr<p2p::Host> host;
  std::shared_ptr<AllReduceService> service;
  std::thread thread;
  AllReduceMember me;

  explicit Member(AllReduceOptions opt) {
    auto id = p2p::Identity::generate();
    REQUIRE(id.ok());
    auto h = p2p::Host::create(io, *id, {});
    REQUIRE(h.ok());
    host = *h;
    auto addr = host->listen(*p2p::Multiaddr::parse("/ip4/127.0.0.1/tcp/0"));
    REQUIRE(addr.ok());
    me = {host->peer_id(), *addr};
    opt.run_id = "test-run";
    auto s = AllReduceService::create(io, host, std::move(opt));
    REQUIRE(s.ok());
    service = *s;
    // spdlog's registry (a function-local static in uninstrumented libspdlog) is built here, before
    // the thread, as NodeNetwork::start does: in one TSan run (2026-12-05) two members' io threads
    // made the process's first log calls at once, and the guard that ordered them is invisible to TSan.
    spdlog::default_logger_raw();
    thread = std::thread([this] { io.run(); });
  }
  // Closes the host on its network thread (as a crash would, minus the process exit).
  void close_host() {
    asio::post(io, [h = host] { h->close(); });
  }
  ~Member() {
    service->close();
    close_host();
    work.reset();
    asio::post(io, [this] { io.stop(); });
    thread.join();
  }
};

std::vector<float> random_vector(size_t len, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> d(-2.f, 2.f);
  std::vector<float> v(len);
  for (auto& x : v) x = d(rng);
  return v;
}

// Mean over the inputs of the given members, in double.
std::vector<double> reference(const std::vector<std::vector<float>>& inputs, const std::vector<size_t>& who) {
  std::vector<double> m(inputs[0].size(), 0.0);
  for (size_t w : who)
    for (size_t i = 0; i < m.size(); ++i) m[i] += inputs[w][i];
  for (auto& x : m) x /= static_cast<double>(who.size());
  return m;
}

void require_close(const std::vector<float>& got, const std::vector<double>& want) {
  REQUIRE(got.size() == want.size());
  for (size_t i = 0; i < got.size(); ++i) {
    INFO("element " << i);
    REQUIRE(std::abs(got[i] - want[i]) <= 1e-5 * (1 + std::abs(want[i])));
  }
}

// n members on real hosts, two rounds in a row: every member gets the mean (within the
// encoding's bound; fp32: 1e-5 relative), bit-identical, and with an encoding the ring bytes the
// members counted are exactly the encoded ones.
void agree_on_mean(size_t n, codec::Mode encoding) {
  AllReduceOptions opt;
  opt.chunk_elems = 1000;
  opt.encoding = encoding;
  std::vector<std::unique_ptr<Member>> m;
  for (size_t i = 0; i < n; ++i) m.push_back(std::make_unique<Member>(opt));
  std::vector<AllReduceMember> all;
  for (auto& x : m) all.push_back(x->me);
  const size_t len = 10007;  // not divisible by any n here
  std::vector<std::vector<float>> inputs, outputs(n);
  for (size_t i = 0; i < n; ++i) inputs.push_back(random_vector(len, static_cast<uint32_t>(i + 10 * n)));
  for (uint64_t step = 1; step <= 2; ++step) {  // two rounds in a row on the same hosts
    std::vector<std::future<Result<AllReduceOutcome>>> calls;
    for (size_t i = 0; i < n; ++i) {
      outputs[i] = inputs[i];
      calls.push_back(std::async(std::launch::async, [&, i, step] {
        return m[i]->service->allreduce(outputs[i], step, all, std::chrono::seconds(60));
      }));
    }
    std::vector<size_t> everyone(n);
    for (size_t i = 0; i < n; ++i) everyone[i] = i;
    const auto want = reference(inputs, everyone);
    uint64_t sent = 0;
    for (size_t i = 0; i < n; ++i) {
      auto r = calls[i].get();
      INFO("n=" << n << " " << codec::mode_name(encoding) << " member " << i << ": " << r.status().to_string());
      REQUIRE(r.ok());
      REQUIRE(r->members.size() == n);
      if (encoding == codec::Mode::kFp32) {
        require_close(outputs[i], want);
      } else {
        // |x| <= 2, so every block's sum of magnitudes is at most 2n.
        const double bound = ring_error_bound(encoding, static_cast<uint32_t>(n), 2.0 * n);
        for (size_t k = 0; k < len; ++k) REQUIRE(std::abs(outputs[i][k] - want[k]) <= bound);
        REQUIRE(r->attempts == 1);
        sent += r->bytes_sent;
      }
      REQUIRE(outputs[i] == outputs[0]);
      if (n > 1) REQUIRE(r->bytes_sent > 2 * (n - 1) * (len / n) * (encoding == codec::Mode::kFp32 ? 4 : 1));
    }
    if (encoding != codec::Mode::kFp32)
      REQUIRE(sent == test::expected_total_bytes(encoding, static_cast<uint32_t>(n), len, opt.chunk_elems));
  }
}

}  // namespace

TEST_CASE("allreduce service: N hosts on loopback agree on the mean", "[allreduce]") {
  for (size_t n : {size_t{1}, size_t{2}, size_t{3}, size_t{5}}) agree_on_mean(n, codec::Mode::kFp32);
}

TEST_CASE("allreduce service: bf16 and int8 rings on loopback agree on the mean", "[allreduce]") {
  agree_on_mean(2, codec::Mode::kBf16);
  agree_on_mean(3, codec::Mode::kInt8);
}

TEST_CASE("allreduce service: members with different encodings never mix and say why", "[allreduce]") {
  AllReduceOptions bf16, int8;
  bf16.encoding = codec::Mode::kBf16;
  int8.encoding = codec::Mode::kInt8;
  Member a(bf16), b(int8);
  std::vector<std::vector<float>> v = {random_vector(500, 1), random_vector(500, 2)};
  const auto original = v;
  auto call = [&](Member& m, std::vector<float>& data) {
    return std::async(std::launch::async, [&] { return m.service->allreduce(data, 1, {a.me, b.me}, std::chrono::seconds(2)); });
  };
  auto fa = call(a, v[0]), fb = call(b, v[1]);
  const Result<AllReduceOutcome> r[2] = {fa.get(), fb.get()};
  const char* want[2] = {"encodes values as int8, we use bf16", "encodes values as bf16, we use int8"};
  int named = 0;
  for (int i = 0; i < 2; ++i) {
    // The first message shows the other encoding: that member is left out of the round's later
    // attempts, so each ends with a ring of one (its own vector back, the reason in `failures`)
    // or, if the budget ran out first, kTimeout. Never a mean over both. The member that refused
    // first may end its stream before its own first message went out, so only one of the two
    // is sure to have seen the other's bytes and to name the mismatch.
    std::string why = r[i].ok() ? "" : r[i].status().message();
    if (r[i].ok()) {
      REQUIRE(r[i]->members.size() == 1);
      for (const auto& f : r[i]->failures) why += f + "; ";
    } else {
      REQUIRE(r[i].status().code() == StatusCode::kTimeout);
    }
    named += why.find(want[i]) != std::string::npos;
    CHECK(v[i] == original[i]);
  }
  CHECK(named >= 1);
}

TEST_CASE("allreduce service: a member closed mid-ring leaves the survivors with their mean", "[allreduce]") {
  const size_t n = 4, victim = 2, len = 200000;
  std::vector<std::unique_ptr<Member>> m;
  std::atomic<bool> closed{false};
  for (size_t i = 0; i < n; ++i) {
    AllReduceOptions opt;
    opt.chunk_elems = 512;  // many chunks: the victim cannot have sent its share before it dies
    opt.gather_timeout = std::chrono::seconds(20);
    if (i == victim)
      opt.on_progress = [&closed, &m, victim](uint64_t) {
        if (!closed.exchange(true)) m[victim]->host->close();  // on its network thread
      };
    m.push_back(std::make_unique<Member>(opt));
  }
  std::vector<AllReduceMember> all;
  for (auto& x : m) all.push_back(x->me);
  std::vector<std::vector<float>> inputs, outputs(n);
  for (size_t i = 0; i < n; ++i) inputs.push_back(random_vector(len, static_cast<uint32_t>(100 + i)));
  std::vector<std::future<Result<AllReduceOutcome>>> calls;
  for (size_t i = 0; i < n; ++i) {
    outputs[i] = inputs[i];
    calls.push_back(std::async(std::launch::async, [&, i] {
      return m[i]->service->allreduce(outputs[i], 5, all, std::chrono::seconds(90));
    }));
  }
  std::vector<size_t> survivors;
  for (size_t i = 0; i < n; ++i)
    if (i != victim) survivors.push_back(i);
  const auto want = reference(inputs, survivors);
  for (size_t i : survivors) {
    auto r = calls[i].get();
    INFO("member " << i << ": " << r.status().to_string());
    REQUIRE(r.ok());
    REQUIRE(closed);
    REQUIRE(r->attempts >= 2);
    REQUIRE_FALSE(r->failures.empty());
    REQUIRE(r->members.size() == n - 1);
    REQUIRE(std::find(r->members.begin(), r->members.end(), m[victim]->me.peer) == r->members.end());
    require_close(outputs[i], want);
  }
  (void)calls[victim].get();  // returns (whatever it says) instead of hanging
}

TEST_CASE("allreduce service: an expected member that never joins costs the gather timeout, not the round", "[allreduce]") {
  const size_t n = 3;
  AllReduceOptions opt;
  opt.gather_timeout = std::chrono::milliseconds(500);
  std::vector<std::unique_ptr<Member>> m;
  for (size_t i = 0; i < n; ++i) m.push_back(std::make_unique<Member>(opt));
  std::vector<AllReduceMember> all;
  for (auto& x : m) all.push_back(x->me);
  // Member 2 is alive but never calls allreduce for this step.
  std::vector<std::vector<float>> inputs = {random_vector(999, 1), random_vector(999, 2)}, outputs = inputs;
  auto a = std::async(std::launch::async, [&] { return m[0]->service->allreduce(outputs[0], 3, all, std::chrono::seconds(60)); });
  auto b = std::async(std::launch::async, [&] { return m[1]->service->allreduce(outputs[1], 3, all, std::chrono::seconds(60)); });
  auto ra = a.get(), rb = b.get();
  REQUIRE(ra.ok());
  REQUIRE(rb.ok());
  REQUIRE(ra->members.size() == 2);
  REQUIRE(ra->members == rb->members);
  require_close(outputs[0], reference(inputs, {0, 1}));
  REQUIRE(outputs[0] == outputs[1]);
}

TEST_CASE("allreduce service: a budget that runs out gives an error and the vector back", "[allreduce]") {
  AllReduceOptions opt;
  opt.gather_timeout = std::chrono::seconds(30);  // longer than the budget
  Member a(opt), b(opt);
  std::vector<float> v = {1.f, 2.f, 3.f};
  // b is expected but never joins: a waits for it until the budget ends.
  auto r = a.service->allreduce(v, 1, {a.me, b.me}, std::chrono::milliseconds(300));
  REQUIRE_FALSE(r.ok());
  REQUIRE(r.status().code() == StatusCode::kTimeout);
  REQUIRE(v == std::vector<float>{1.f, 2.f, 3.f});
}

TEST_CASE("allreduce service: NodeNetwork serves it on the node's own host", "[allreduce]") {
  std::vector<std::unique_ptr<NodeNetwork>> nets;
  for (int i = 0; i < 3; ++i) {
    NetworkOptions o;
    auto id = p2p::Identity::generate();
    REQUIRE(id.ok());
    o.identity = *id;
    o.listen = *p2p::Multiaddr::parse("/ip4/127.0.0.1/tcp/0");
    o.run_id = "net-run";
    auto net = NodeNetwork::start(std::move(o));
    REQUIRE(net.ok());
    nets.push_back(std::move(*net));
  }
  std::vector<AllReduceMember> all;
  for (auto& n : nets) all.push_back({n->peer_id(), n->listen_addr()});
  std::vector<std::vector<float>> inputs, outputs;
  for (uint32_t i = 0; i < 3; ++i) inputs.push_back(random_vector(5000, 50 + i));
  outputs = inputs;
  std::vector<std::future<Result<AllReduceOutcome>>> calls;
  for (size_t i = 0; i < 3; ++i)
    calls.push_back(std::async(std::launch::async, [&, i] {
      return nets[i]->allreduce().allreduce(outputs[i], 9, all, std::chrono::seconds(60));
    }));
  for (size_t i = 0; i < 3; ++i) {
    auto r = calls[i].get();
    INFO(r.status().to_string());
    REQUIRE(r.ok());
    REQUIRE(r->members.size() == 3);
    require_close(outputs[i], reference(inputs, {0, 1, 2}));
  }
}
