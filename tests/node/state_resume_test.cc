// State sync survives a cut mid-transfer (node_network.h fetch_state, docs/protocols/state.md):
// a download cut after a fixed number of bytes resumes from the bytes already held, on a new
// stream to the same peer or from another peer serving the same snapshot, asks only for the rest,
// and the weights adopted from it are bit-identical to the server's. A partial download is never
// handed out, and a peer with another snapshot makes it start over.
#include "../trainer/torch_catch.h"

#include <future>
#include <thread>

#include "../trainer/test_corpus.h"
#include "common/hash.h"
#include "cut_proxy.h"
#include "p2p/identity.h"
#include "trainer/core/replica.h"
#include "trainer/node/node_network.h"
#include "trainer/node/node_payload.h"

using namespace noloco;
using namespace noloco::node;

namespace {

std::unique_ptr<trainer::Replica> make(const Bytes* train, uint64_t seed) {
  trainer::ReplicaConfig rc;
  rc.model = *trainer::model_preset("small");  // 0.84M parameters: a 3.4 MB state, four chunks
  rc.model.context = 32;
  rc.batch = 2;
  rc.seed = seed;
  rc.inner.schedule = trainer::LrSchedule{3e-3, 2, 50, 0.1};
  auto r = trainer::Replica::create(rc, train, 0, 1);
  REQUIRE(r.ok());
  return std::move(*r);
}

std::unique_ptr<NodeNetwork> start_net() {
  NetworkOptions o;
  o.identity = *p2p::Identity::generate();
  o.listen = *p2p::Multiaddr::parse("/ip4/127.0.0.1/tcp/0");
  o.run_id = "resume-run";
  auto net = NodeNetwork::start(std::move(o));
  REQUIRE(net.ok());
  return std::move(*net);
}

uint16_t port_of(const NodeNetwork& n) {
  const std::string a = n.bound_addr().without_peer_id().to_string();
  return static_cast<uint16_t>(std::stoi(a.substr(a.rfind('/') + 1)));
}

p2p::PeerRecord record(const NodeNetwork& n, uint16_t port) {
  p2p::PeerRecord r;
  r.peer = n.peer_id();
  r.addrs = {"/ip4/127.0.0.1/tcp/" + std::to_string(port)};
  return r;
}

void serve(NodeNetwork& n, const Bytes& blob) {
  auto s = std::make_shared<StateSnapshot>();
  s->blob = blob;
  const auto d = sha256(blob);
  s->sha256.assign(d.begin(), d.end());
  s->outer_step = 3;
  s->inner_step = 30;
  n.publish_state(s);
  (void)n.live_peers();  // a round trip through its network thread: the snapshot is in place
}

}  // namespace

TEST_CASE("state resume: a stream cut mid-transfer resumes on a new stream and asks only for the rest", "[state]") {
  const Bytes train = trainer::testing::synthetic_text(100000);
  auto a = make(&train, 1), b = make(&train, 2);
  auto blob = build_state_blob(*a);
  REQUIRE(blob.ok());
  auto server = start_net(), client = start_net();
  serve(*server, *blob);
  test::CutProxy proxy(port_of(*server), 5 * kStateChunkBytes / 2, /*refuse_after_cut=*/false);
  auto got = client->fetch_state(record(*server, proxy.port()), blob->size() + 4096, std::chrono::seconds(60));
  REQUIRE(got.ok());
  CHECK(proxy.cut());
  REQUIRE(got->stream_offsets.size() == 2);
  CHECK(got->stream_offsets[0] == 0);
  // The second stream starts where the first stopped: after whole chunks, before the end.
  CHECK(got->stream_offsets[1] >= kStateChunkBytes);
  CHECK(got->stream_offsets[1] < blob->size());
  CHECK(got->stream_offsets[1] % kStateChunkBytes == 0);
  CHECK(got->chunk_bytes == blob->size());  // no byte fetched twice
  CHECK(got->blob == *blob);
  REQUIRE(adopt_state(*b, got->blob, got->outer_step, got->inner_step).ok());
  CHECK(torch::equal(b->phi(), a->phi()));
  CHECK(torch::equal(b->theta(), a->phi()));
}

TEST_CASE("state resume: after the server dies mid-transfer, another peer with the same snapshot serves only the rest",
          "[state]") {
  const Bytes train = trainer::testing::synthetic_text(100000);
  auto a = make(&train, 1), b = make(&train, 2);
  auto blob = build_state_blob(*a);
  REQUIRE(blob.ok());
  auto first = start_net(), second = start_net(), client = start_net();
  serve(*first, *blob);
  serve(*second, *blob);
  const uint64_t cap = blob->size() + 4096;
  uint64_t held = 0;
  {
    test::CutProxy proxy(port_of(*first), 5 * kStateChunkBytes / 2, /*refuse_after_cut=*/true);
    auto cut = client->fetch_state(record(*first, proxy.port()), cap, std::chrono::seconds(60));
    REQUIRE_FALSE(cut.ok());  // nothing partial is handed out
    CHECK(proxy.cut());
    held = client->partial_state_bytes();
    CHECK(held >= kStateChunkBytes);
    CHECK(held < blob->size());
  }
  first->stop();
  auto got = client->fetch_state(record(*second, port_of(*second)), cap, std::chrono::seconds(60));
  REQUIRE(got.ok());
  CHECK(got->resumed_from == held);
  CHECK(got->stream_offsets == std::vector<uint64_t>{held});
  CHECK(got->chunk_bytes == blob->size() - held);
  CHECK(client->partial_state_bytes() == 0);
  REQUIRE(adopt_state(*b, got->blob, got->outer_step, got->inner_step).ok());
  CHECK(torch::equal(b->phi(), a->phi()));
}

TEST_CASE("state resume: a peer serving another snapshot makes the download start over from it", "[state]") {
  const Bytes train = trainer::testing::synthetic_text(100000);
  auto a = make(&train, 1), c = make(&train, 3), b = make(&train, 2);
  auto blob_a = build_state_blob(*a), blob_c = build_state_blob(*c);
  REQUIRE(blob_a.ok());
  REQUIRE(blob_c.ok());
  REQUIRE(*blob_a != *blob_c);
  auto first = start_net(), other = start_net(), client = start_net();
  serve(*first, *blob_a);
  serve(*other, *blob_c);
  const uint64_t cap = blob_a->size() + 4096;
  {
    test::CutProxy proxy(port_of(*first), 5 * kStateChunkBytes / 2, /*refuse_after_cut=*/true);
    REQUIRE_FALSE(client->fetch_state(record(*first, proxy.port()), cap, std::chrono::seconds(60)).ok());
  }
  REQUIRE(client->partial_state_bytes() > 0);
  auto got = client->fetch_state(record(*other, port_of(*other)), cap, std::chrono::seconds(60));
  REQUIRE(got.ok());
  CHECK(got->chunk_bytes == blob_c->size());  // from zero: nothing of a's snapshot is kept
  CHECK(got->blob == *blob_c);
  REQUIRE(adopt_state(*b, got->blob, got->outer_step, got->inner_step).ok());
  CHECK(torch::equal(b->phi(), c->phi()));
}

TEST_CASE("state fetch: a server with no snapshot yet is asked again, and serves once it has one", "[state]") {
  const Bytes train = trainer::testing::synthetic_text(100000);
  auto a = make(&train, 1);
  auto blob = build_state_blob(*a);
  REQUIRE(blob.ok());
  auto server = start_net(), client = start_net();
  const uint64_t cap = blob->size() + 4096;
  // Between dropping its old snapshot and publishing the next one a server refuses with "no state
  // yet"; the download waits that out instead of failing the sync.
  auto fetch = std::async(std::launch::async, [&] {
    return client->fetch_state(record(*server, port_of(*server)), cap, std::chrono::seconds(60));
  });
  for (int i = 0; i < 3000 && server->traffic().state_out == 0; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  REQUIRE(server->traffic().state_out > 0);  // it has refused at least once
  serve(*server, *blob);
  auto got = fetch.get();
  REQUIRE(got.ok());
  CHECK(got->blob == *blob);

  // A server that never gets a snapshot: the client gives up with its reason.
  auto empty = start_net();
  auto none = client->fetch_state(record(*empty, port_of(*empty)), cap, std::chrono::seconds(60));
  REQUIRE_FALSE(none.ok());
  CHECK(none.status().message().find("no state yet") != std::string::npos);
}
