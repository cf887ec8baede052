// A hostile peer sends a running node wrong-run, truncated, wrong-shape and NaN exchange payloads
// (issue 5): each is refused and logged, and nothing from it reaches the node's model.
#include <catch2/catch.hpp>

#include <asio/io_context.hpp>
#include <asio/post.hpp>

#include <cmath>
#include <cstring>
#include <future>
#include <memory>
#include <thread>

#include "common/bytes.h"
#include "common/hash.h"
#include "node_proc.h"
#include "node_test_util.h"
#include "p2p/host.h"
#include "trainer/core/codec.h"
#include "trainer/node/exchange_wire.h"

namespace noloco::test {
namespace {

using json = nlohmann::json;

// An fp32 codec message of `n` values whose first value is NaN, with a valid checksum: the
// codec's encoder refuses NaN, so the message is patched and re-checksummed as docs/codec.md says.
Bytes nan_message(uint64_t n) {
  std::vector<float> v(n, 0.01f);
  codec::EncodeOptions o;
  o.mode = codec::Mode::kFp32;
  auto enc = codec::encode(v, {static_cast<int64_t>(n)}, o);
  REQUIRE(enc.ok());
  Bytes m = *enc;
  const size_t header = 40, checksum_at = 40, payload_at = 48;  // ndim = 1
  const float nan = std::nanf("");
  std::memcpy(m.data() + payload_at, &nan, 4);
  const uint64_t seed = xxh3_64(ByteView(m.data(), header));
  const uint64_t sum = xxh3_64(ByteView(m.data() + payload_at, m.size() - payload_at), seed);
  for (int i = 0; i < 8; ++i) m[checksum_at + i] = static_cast<uint8_t>(sum >> (8 * i));
  return m;
}

Bytes fp32_message(uint64_t n, float value) {
  std::vector<float> v(n, value);
  codec::EncodeOptions o;
  o.mode = codec::Mode::kFp32;
  auto enc = codec::encode(v, {static_cast<int64_t>(n)}, o);
  REQUIRE(enc.ok());
  return *enc;
}

// A p2p host on its own thread that sends one exchange stream and returns what came back.
class Attacker {
 public:
  Attacker() {
    auto id = p2p::Identity::generate();
    REQUIRE(id.ok());
    auto h = p2p::Host::create(io_, *id, p2p::HostOptions{});
    REQUIRE(h.ok());
    host_ = *h;
    peer_ = id->peer_id().to_string();
    thread_ = std::thread([this] { io_.run(); });
  }
  ~Attacker() {
    asio::post(io_, [this] { host_->close(); });
    work_.reset();
    io_.stop();
    thread_.join();
  }
  const std::string& peer() const { return peer_; }

  // Sends `bytes` on a new /noloco/exchange/1.0.0 stream and reads the answer until the stream
  // ends; returns whether an answer arrived (a refused payload gets the stream reset instead).
  // With close == false the stream stays open for writing: the answer must come without the
  // end of our payload (the node answers once the header is accepted).
  bool send(const std::string& addr, Bytes bytes, bool close = true) {
    // Shared: after a timed-out wait the callbacks may still run.
    auto done = std::make_shared<std::promise<bool>>();
    auto target = p2p::Multiaddr::parse(addr);
    REQUIRE(target.ok());
    asio::post(io_, [this, done, close, target = *target, bytes = std::move(bytes)]() mutable {
      host_->new_stream(target, {std::string(node::kExchangeProtocolId)},
                        [done, close, bytes = std::move(bytes)](Result<std::shared_ptr<p2p::HostStream>> s) mutable {
                          if (!s.ok()) return done->set_value(false);
                          (*s)->write(std::move(bytes));
                          if (close) (*s)->close_write();
                          (*s)->read_to_end(64u << 20, [done, s = *s](Result<Bytes> r) {
                            s->reset();
                            done->set_value(r.ok() && !r->empty());
                          });
                        });
    });
    // A guard against a hang, not a timing assertion: a missing answer fails the test.
    auto fut = done->get_future();
    if (fut.wait_for(std::chrono::seconds(120)) != std::future_status::ready) return false;
    return fut.get();
  }

 private:
  asio::io_context io_;
  asio::executor_work_guard<asio::io_context::executor_type> work_ = asio::make_work_guard(io_);
  std::shared_ptr<p2p::Host> host_;
  std::string peer_;
  std::thread thread_;
};

// A run of its own (fp32 payloads, H = 5) and one node training it, past its first outer step.
struct LoneNode {
  TempDir t;
  std::string run_id;
  std::unique_ptr<NodeProc> proc;
  LoneNode() {
    RunResult init = run_noloco({"init-run", "--out", t.sub("manifest.json"), "--steps", "100000", "--H", "5",
                                 "--batch", "4", "--codec", "fp32", "--zstd", "false"});
    REQUIRE(init.exit_code == 0);
    run_id = init.out.substr(0, 32);
    proc = std::make_unique<NodeProc>(std::vector<std::string>{"run", "--db", t.sub("db"), "--key", t.sub("key"),
                                                               "--json", "--threads", "1", "--manifest",
                                                               t.sub("manifest.json"), "--eval-windows", "8",
                                                               "--eval-every", "1000"},
                                      t.sub("node.log"));
    REQUIRE(!proc->address().empty());
    REQUIRE(proc->wait_for([](auto& evs) { return NodeProc::max_outer(evs) >= 1; }));
  }
};

}  // namespace

TEST_CASE("swarm: wrong-run, truncated, wrong-shape and NaN payloads are refused and change nobody's model",
          "[swarm]") {
  LoneNode lone;
  TempDir& t = lone.t;
  const std::string& run_id = lone.run_id;
  NodeProc& node = *lone.proc;
  const json start = node.events_of("start").at(0);
  const uint64_t numel = start["params"].get<uint64_t>();

  Attacker bad;
  auto payload = [&](std::string run, uint64_t n, Bytes delta, Bytes phi) {
    node::PayloadHeader h;
    h.run_id = std::move(run);
    h.sender = bad.peer();
    h.outer_step = 1;
    h.inner_step = 5;
    h.numel = n;
    return node::make_payload(h, {{"delta", std::move(delta)}, {"phi", std::move(phi)}});
  };
  // NaN first: it is well-formed on the wire, so the node answers, keeps it for its next outer
  // step, and refuses it there when it decodes the values.
  CHECK(bad.send(node.address(), node::encode_payload(payload(run_id, numel, nan_message(numel), fp32_message(numel, 0.0f)))));
  REQUIRE(node.wait_for([](auto& evs) {
    for (const auto& e : evs)
      if (e.value("event", "") == "refused" && e.value("why", "").find("non-finite") != std::string::npos) return true;
    return false;
  }));
  // Refused by the wire checks, before anything is kept: the stream is reset, no answer. A wire
  // failure is proof (strike weight 2.5, docs/defences.md "Scores and bans"), the NaN a suspect
  // refusal (1): with this one the peer stands at 3.5 of 5.
  CHECK_FALSE(bad.send(node.address(), node::encode_payload(payload("another-run", numel, fp32_message(numel, 0.0f),
                                                                     fp32_message(numel, 0.0f)))));
  REQUIRE(node.wait_for([](auto& evs) {
    int n = 0;
    for (const auto& e : evs) n += e.value("event", "") == "refused";
    return n >= 2;
  }));
  CHECK(node.events_of("banned").empty());
  // A truncated payload: its header is well-formed, so the node may already have answered (it
  // answers once the header is accepted); refused, and the second proof bans the peer.
  Bytes whole = node::encode_payload(payload(run_id, numel, fp32_message(numel, 0.0f), fp32_message(numel, 0.0f)));
  (void)bad.send(node.address(), Bytes(whole.begin(), whole.begin() + whole.size() / 2));
  REQUIRE(node.wait_for([](auto& evs) {
    for (const auto& e : evs)
      if (e.value("event", "") == "banned") return true;
    return false;
  }));
  // Banned: after it, neither a wrong-shape nor a well-formed payload gets an answer or a refusal.
  CHECK_FALSE(bad.send(node.address(), node::encode_payload(payload(run_id, numel - 1, fp32_message(numel - 1, 0.0f),
                                                                     fp32_message(numel - 1, 0.0f)))));
  CHECK_FALSE(bad.send(node.address(), node::encode_payload(payload(run_id, numel, fp32_message(numel, 0.0f),
                                                                     fp32_message(numel, 0.0f)))));
  const int64_t outer_seen = NodeProc::max_outer(node.events());
  REQUIRE(node.wait_for([&](auto& evs) { return NodeProc::max_outer(evs) >= outer_seen + 1; }));
  node.kill(SIGTERM);
  CHECK(node.wait_exit() == 0);

  std::string reasons;
  for (const auto& e : node.events_of("refused")) {
    CHECK(e["peer"].get<std::string>() == bad.peer());
    reasons += e["why"].get<std::string>() + "\n";
  }
  INFO(reasons);
  CHECK(reasons.find("non-finite") != std::string::npos);
  CHECK(reasons.find("another-run") != std::string::npos);
  CHECK(reasons.find("Truncated") != std::string::npos);
  CHECK(node.events_of("refused").size() == 3);  // nothing after the ban
  CHECK(node.events_of("refused").back()["score"].get<double>() == Approx(1 + 2.5 + 2.5));
  // The node was alone: every outer step was solo, so no byte of the attacker's reached the model.
  for (const auto& e : node.events_of("outer")) CHECK(e["group"].empty());
  CHECK(node.events_of("banned").size() == 1);
  // Scored down and banned in the store, so the next start keeps it out too.
  RunResult st = run_noloco({"status", "--db", t.sub("db"), "--json"});
  REQUIRE(st.exit_code == 0);
  const json status = json::parse(st.out);
  CHECK(status["peers"]["active_bans"].get<int>() == 1);
  bool found = false;
  for (const auto& p : status["peers"]["best"])
    if (p["peer_id"].get<std::string>() == bad.peer()) {
      found = true;
      CHECK(p["failures"].get<int>() >= 3);
      CHECK(p["score"].get<double>() < 0);
    }
  CHECK(found);
}

TEST_CASE("swarm: a node answers an exchange once the caller's header is accepted, before the tensors arrive",
          "[swarm]") {
  LoneNode lone;
  const std::string& run_id = lone.run_id;
  NodeProc& node = *lone.proc;
  const uint64_t numel = node.events_of("start").at(0)["params"].get<uint64_t>();

  Attacker caller;
  node::PayloadHeader h;
  h.run_id = run_id;
  h.sender = caller.peer();
  h.outer_step = 1;
  h.inner_step = 5;
  h.numel = numel;
  Bytes whole = node::encode_payload(
      node::make_payload(h, {{"delta", fp32_message(numel, 0.0f)}, {"phi", fp32_message(numel, 0.0f)}}));
  // Only the header frame and a few tensor bytes, and the stream left open: the whole answer
  // (the node's snapshot) still comes back, so the two payloads can cross the link together.
  node::PayloadReader probe(node::ExchangeExpectations{run_id, numel, node::WireForm::kDeltaPhi, whole.size(), caller.peer()});
  size_t head = 0;
  while (!probe.header_accepted()) {
    REQUIRE(probe.feed(ByteView(whole.data() + head, 1)).ok());
    ++head;
  }
  CHECK(caller.send(node.address(), Bytes(whole.begin(), whole.begin() + head + 100), /*close=*/false));
  // The caller then went away with its payload cut short: nothing of it may reach the model.
  const int64_t outer_seen = NodeProc::max_outer(node.events());
  REQUIRE(node.wait_for([&](auto& evs) { return NodeProc::max_outer(evs) >= outer_seen + 1; }));
  node.kill(SIGTERM);
  CHECK(node.wait_exit() == 0);
  for (const auto& e : node.events_of("outer")) CHECK(e["group"].empty());
}

}  // namespace noloco::test
