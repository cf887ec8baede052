// Slow peers (docs/defences.md, "Slow peers"): the trickle detector fed synthetic arrivals, the
// state-stream limiter, the state-server memory and the lone-claim rule on their own; then real
// NodeNetworks on loopback: a client holding more state streams than ours ever does is refused
// and struck, one that sends requests without reading holds a bounded number of answers, and
// trickling senders are struck on state and exchange streams while silent ones are not.
#include <catch2/catch.hpp>

#include <asio/executor_work_guard.hpp>
#include <asio/io_context.hpp>
#include <asio/post.hpp>
#include <asio/steady_timer.hpp>

#include <thread>

#include "p2p/framing.h"
#include "p2p/host.h"
#include "tests/p2p/host_fixture.h"
#include "trainer/node/exchange_wire.h"
#include "trainer/node/node_network.h"
#include "trainer/node/state_serve_limits.h"
#include "trainer/node/state_server_memory.h"
#include "trainer/node/state_wire.h"
#include "trainer/node/trickle_detector.h"

using namespace noloco;
using namespace noloco::node;
using noloco::p2p::testing::make_host;
using noloco::p2p::testing::run_until;
using std::chrono::milliseconds;
using std::chrono::seconds;

namespace {

// Feeds `bytes` every `every` from t0 for `total`; returns the time of the trickle verdict, if any.
std::optional<Duration> feed(TrickleDetector& d, size_t bytes, Duration every, Duration total) {
  const TimePoint t0{};
  for (Duration t = Duration::zero(); t <= total; t += every)
    if (d.on_bytes(t0 + t, bytes)) return t;
  return std::nullopt;
}

}  // namespace

TEST_CASE("trickle detector: a byte a second is a trickle once the whole window has dribbles", "[defence][slow]") {
  TrickleDetector d;  // 8 s window, 4 slots, 1 KiB/s
  auto at = feed(d, 1, seconds(1), seconds(30));
  REQUIRE(at.has_value());
  CHECK(*at >= seconds(6));  // not before every 2 s slot of the window has seen a byte
  CHECK(*at <= seconds(8));
  CHECK(d.trickling());
  CHECK(d.window_bytes() < 8 * 1024);
}

TEST_CASE("trickle detector: real links, bursts then silence, and no bytes at all are not trickles",
          "[defence][slow]") {
  SECTION("a congested link: one 1400-byte segment a second") {
    TrickleDetector d;
    CHECK_FALSE(feed(d, 1400, seconds(1), seconds(60)));
  }
  SECTION("a fast link: 64 KiB every 10 ms") {
    TrickleDetector d;
    CHECK_FALSE(feed(d, 64 << 10, milliseconds(10), seconds(20)));
  }
  SECTION("a sender stopped mid-message (SIGSTOP, a cut link): small pieces, then nothing, then one more") {
    TrickleDetector d;
    CHECK_FALSE(feed(d, 10, milliseconds(200), seconds(1)));
    CHECK_FALSE(d.on_bytes(TimePoint{} + seconds(31), 10));  // resumed 30 s later
    CHECK_FALSE(d.on_bytes(TimePoint{} + seconds(32), 10));
    CHECK_FALSE(d.trickling());
  }
  SECTION("a sender that keeps dribbling but far above the floor: 2 KiB/s in 100-byte pieces") {
    TrickleDetector d;
    CHECK_FALSE(feed(d, 100, milliseconds(50), seconds(30)));
  }
}

TEST_CASE("state stream limiter: the third stream of one peer is abuse, the cap in all is only busy",
          "[defence][slow]") {
  StateStreamLimiter<std::string> l(StateServeLimits{2, 3});
  CHECK(l.admit("a") == StateAdmit::kServe);
  CHECK(l.admit("a") == StateAdmit::kServe);
  CHECK(l.admit("a") == StateAdmit::kRefuseAbuse);
  CHECK(l.open("a") == 2);
  CHECK(l.admit("b") == StateAdmit::kServe);
  CHECK(l.admit("c") == StateAdmit::kRefuseBusy);  // three in all
  CHECK(l.open("c") == 0);
  l.release("a");
  CHECK(l.admit("c") == StateAdmit::kServe);
  l.release("zzz");  // never admitted: no effect
  CHECK(l.total() == 3);
}

TEST_CASE("state server memory: a failed server is avoided for a cooldown that doubles, forgotten once it serves",
          "[defence][slow]") {
  StateServerMemory<std::string> m(StateServerMemoryOptions{30, 100});
  CHECK_FALSE(m.avoid("s", 0));
  m.failed("s", 0);
  CHECK(m.avoid("s", 29));
  CHECK_FALSE(m.avoid("s", 30));
  m.failed("s", 30);
  CHECK(m.avoid("s", 89));
  CHECK_FALSE(m.avoid("s", 90));
  m.failed("s", 90);  // 120 capped at 100
  CHECK(m.avoid("s", 189));
  CHECK_FALSE(m.avoid("s", 190));
  CHECK(m.failures("s") == 3);
  m.served("s");
  CHECK(m.failures("s") == 0);
  m.failed("s", 200);
  CHECK_FALSE(m.avoid("s", 230));  // back to the first cooldown
  CHECK_FALSE(m.avoid("other", 0));
}

TEST_CASE("lone claim: a server far ahead of every other peer and of us, not one the swarm backs",
          "[defence][slow]") {
  const std::vector<uint64_t> swarm = {40, 41, 39};
  CHECK(lone_claim(71, swarm, 40, 20));
  CHECK_FALSE(lone_claim(55, swarm, 40, 20));               // within the gap of the next peer
  CHECK_FALSE(lone_claim(71, std::vector<uint64_t>{70}, 40, 20));  // another peer backs it
  CHECK(lone_claim(30, {}, 0, 20));                         // a joiner meeting one peer: checked, not refused
}

// ---------------------------------------------------------------- on loopback

namespace {

std::unique_ptr<NodeNetwork> start_net(Duration idle = seconds(30), Duration stall = seconds(20),
                                       TrickleLimits trickle = {}) {
  NetworkOptions o;
  o.identity = *p2p::Identity::generate();
  o.listen = *p2p::Multiaddr::parse("/ip4/127.0.0.1/tcp/0");
  o.run_id = "slow-run";
  o.expect.run_id = "slow-run";
  o.exchange_idle_timeout = idle;
  o.state_stall_timeout = stall;
  o.trickle = trickle;
  auto net = NodeNetwork::start(std::move(o));
  REQUIRE(net.ok());
  return std::move(*net);
}

void serve_blob(NodeNetwork& n, size_t bytes) {
  auto s = std::make_shared<StateSnapshot>();
  s->blob.assign(bytes, 0x5a);
  s->sha256.assign(32, 1);
  s->outer_step = 3;
  n.publish_state(s);
  (void)n.live_peers();  // a round trip through the network thread: the snapshot is in place
}

std::shared_ptr<p2p::HostStream> open_stream(asio::io_context& io, p2p::Host& client, const NodeNetwork& node,
                                             std::string_view protocol) {
  std::optional<Result<std::shared_ptr<p2p::HostStream>>> r;
  client.new_stream(node.bound_addr(), {std::string(protocol)}, [&](auto x) { r = std::move(x); });
  REQUIRE(run_until(io, [&] { return r.has_value(); }));
  REQUIRE(r->ok());
  return **r;
}

Bytes state_requests(int n) {
  StateRequest req;
  req.run_id = "slow-run";
  Bytes one = p2p::encode_length_prefixed(encode_state_request(req)), all;
  for (int i = 0; i < n; ++i) all.insert(all.end(), one.begin(), one.end());
  return all;
}

// Events of the node that strike `peer`, gathered until `pred(events)` holds.
std::vector<NetworkEvent> strikes_of(NodeNetwork& node, const p2p::PeerId& peer, asio::io_context& io,
                                     const std::function<bool(const std::vector<NetworkEvent>&)>& pred) {
  std::vector<NetworkEvent> got;
  (void)run_until(io, [&] {
    for (auto& e : node.take_events())
      if (e.kind == NetworkEvent::Kind::kBadPayload && e.peer == peer) got.push_back(e);
    return pred(got);
  });
  return got;
}

// A peer on its own thread that answers state requests with a 1 MiB frame's length, then one byte
// every `every` (the slow-state attacker), or nothing at all when `every` is zero (a stopped peer).
struct SlowStateServer {
  asio::io_context io;
  std::shared_ptr<p2p::Host> host;
  p2p::Multiaddr bound;
  std::vector<std::shared_ptr<p2p::HostStream>> held;
  std::vector<std::shared_ptr<asio::steady_timer>> timers;
  Duration every;
  std::thread thread;
  explicit SlowStateServer(Duration every) : every(every) {
    host = *p2p::Host::create(io, *p2p::Identity::generate(), {});
    bound = *host->listen(*p2p::Multiaddr::parse("/ip4/127.0.0.1/tcp/0"));
    host->set_handler(std::string(kStateProtocolId), [this](std::shared_ptr<p2p::HostStream> s) {
      held.push_back(s);
      if (this->every == Duration::zero()) return;
      s->write(Bytes{0x80, 0x80, 0x40});
      auto t = std::make_shared<asio::steady_timer>(io);
      timers.push_back(t);
      drip(s, t);
    });
    thread = std::thread([this] {
      auto work = asio::make_work_guard(io);
      io.run();
    });
  }
  void drip(std::shared_ptr<p2p::HostStream> s, std::shared_ptr<asio::steady_timer> t) {
    t->expires_after(every);
    t->async_wait([this, s, t](const asio::error_code& ec) {
      if (ec) return;
      s->write(Bytes{0x20}, [this, s, t](Status st) {
        if (st.ok()) drip(s, t);
      });
    });
  }
  p2p::PeerRecord record() const {
    p2p::PeerRecord r;
    r.peer = host->peer_id();
    r.addrs = {bound.without_peer_id().to_string()};
    return r;
  }
  ~SlowStateServer() {
    asio::post(io, [this] {
      for (auto& t : timers) t->cancel();
      held.clear();
      host->close();
      io.stop();
    });
    thread.join();
  }
};

const TrickleLimits kFastTrickle{milliseconds(400), 4, 1024};

}  // namespace

TEST_CASE("state server: a third state stream of one peer is refused and struck as proof", "[defence][slow][streams]") {
  auto node = start_net();
  serve_blob(*node, 64 << 10);
  asio::io_context io;
  auto client = make_host(io);
  auto s1 = open_stream(io, *client, *node, kStateProtocolId);
  auto s2 = open_stream(io, *client, *node, kStateProtocolId);
  auto s3 = open_stream(io, *client, *node, kStateProtocolId);
  bool s3_ended = false, s1_ended = false, s2_ended = false;
  s3->read_some([&](Result<Bytes> b) { s3_ended = !b.ok() || b->empty(); });
  s1->read_some([&](Result<Bytes> b) { s1_ended = !b.ok() || b->empty(); });
  s2->read_some([&](Result<Bytes> b) { s2_ended = !b.ok() || b->empty(); });
  auto strikes = strikes_of(*node, client->peer_id(), io, [](auto& e) { return !e.empty(); });
  REQUIRE(strikes.size() == 1);
  CHECK(strikes[0].weight == kProofStrike);
  REQUIRE(run_until(io, [&] { return s3_ended; }));
  CHECK_FALSE(s1_ended);  // the two within the limit are still served
  // Streams that end free their places (the node half-closes each in turn): a new one is served.
  s1->close_write();
  s2->close_write();
  REQUIRE(run_until(io, [&] { return s1_ended && s2_ended; }));
  auto s4 = open_stream(io, *client, *node, kStateProtocolId);
  s4->write(state_requests(1));
  std::optional<Result<Bytes>> answer;
  s4->read_message([&](Result<Bytes> m) { answer = std::move(m); }, kStateChunkBytes + 4096);
  REQUIRE(run_until(io, [&] { return answer.has_value(); }));
  REQUIRE(answer->ok());
  auto resp = decode_state_response(**answer);
  REQUIRE(resp.ok());
  CHECK(resp->error.empty());
  CHECK(resp->chunk.size() == 64u << 10);
}

TEST_CASE("state server: requests sent without reading the answers hold a bounded number of answers, then a reset",
          "[defence][slow][streams]") {
  auto node = start_net(milliseconds(500));
  serve_blob(*node, 2 * kStateChunkBytes);
  asio::io_context io;
  auto client = make_host(io);
  auto s = open_stream(io, *client, *node, kStateProtocolId);
  s->write(state_requests(32));  // 32 MiB of answers asked for; never read
  // Reset once an answer waits longer than the idle limit: no strike (a stopped client looks the same).
  bool ended = false, probing = false;
  REQUIRE(run_until(io, [&] {
    if (!probing) {  // an empty write fails once the node's reset has arrived
      probing = true;
      s->write(Bytes{}, [&](Status st) {
        probing = false;
        ended = ended || !st.ok();
      });
    }
    return ended;
  }));
  // What the node queued for this stream: one answer beyond what the stream's send buffer
  // (4 MiB) and window (256 KiB) took, far from the 32 answers asked for.
  const uint64_t out = node->traffic().state_out;
  CHECK(out >= kStateChunkBytes);
  CHECK(out <= 7 * (kStateChunkBytes + 4096));
  for (auto& e : node->take_events()) CHECK(e.kind != NetworkEvent::Kind::kBadPayload);
}

TEST_CASE("state client: a trickling server is struck and dropped, a silent one only times out", "[defence][slow]") {
  asio::io_context io;  // unused by the nodes; run_until needs one
  SECTION("trickling: a byte every 50 ms") {
    SlowStateServer server(milliseconds(50));
    auto client = start_net(seconds(30), seconds(60), kFastTrickle);
    auto got = client->fetch_state(server.record(), 4 << 20, seconds(60));
    REQUIRE_FALSE(got.ok());
    CHECK(got.status().message().find("trickle") != std::string::npos);
    auto strikes = strikes_of(*client, server.host->peer_id(), io, [](auto& e) { return !e.empty(); });
    REQUIRE(strikes.size() == 1);
    CHECK(strikes[0].weight == kProofStrike);
  }
  SECTION("silent: nothing after the request") {
    SlowStateServer server(Duration::zero());
    auto client = start_net(seconds(30), milliseconds(500), kFastTrickle);
    auto got = client->fetch_state(server.record(), 4 << 20, seconds(60));
    REQUIRE_FALSE(got.ok());
    CHECK(got.status().message().find("stalled") != std::string::npos);
    for (auto& e : client->take_events()) CHECK(e.kind != NetworkEvent::Kind::kBadPayload);
  }
}

TEST_CASE("exchange server: a caller that trickles its payload is reset and struck", "[defence][slow][streams]") {
  auto node = start_net(seconds(30), seconds(20), kFastTrickle);
  asio::io_context io;
  auto client = make_host(io);
  auto s = open_stream(io, *client, *node, kExchangeProtocolId);
  s->write(Bytes{0x80, 0x7d});  // a 16000-byte header frame, sent a byte every 50 ms
  bool ended = false;
  s->read_some([&](Result<Bytes> b) { ended = !b.ok(); });
  asio::steady_timer t(io);
  std::function<void()> drip = [&] {
    t.expires_after(milliseconds(50));
    t.async_wait([&](const asio::error_code& ec) {
      if (ec || ended) return;
      s->write(Bytes{0x20});
      drip();
    });
  };
  drip();
  auto strikes = strikes_of(*node, client->peer_id(), io, [&](auto& e) { return !e.empty() && ended; });
  t.cancel();
  REQUIRE(strikes.size() == 1);
  CHECK(strikes[0].weight == kProofStrike);
  CHECK(strikes[0].detail.find("trickle") != std::string::npos);
  CHECK(ended);
}
