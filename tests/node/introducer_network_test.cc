// On loopback: a peer that gossips validly signed records of identities nobody runs (the eclipse
// flood) is struck by the node whose gossip loop dials them, and banned-weight strikes add up
// (trainer/node/introducer_watch.h, NodeNetworkImpl::judge_introduction). The node's own gossip
// never passes the flood on.
#include <catch2/catch.hpp>

#include <asio/io_context.hpp>
#include <asio/post.hpp>
#include <asio/steady_timer.hpp>

#include <set>

#include "p2p/framing.h"
#include "p2p/host.h"
#include "p2p/membership.h"
#include "tests/p2p/host_fixture.h"
#include "trainer/node/node_network.h"
#include "trainer/node/strike_book.h"

using namespace noloco;
using namespace noloco::node;
using namespace std::chrono_literals;
using noloco::p2p::testing::make_host;
using noloco::p2p::testing::run_until;

namespace {

const std::string kRun = "flood-run";

// A flooder: its own record (valid, at its real address) and `n` records of fresh keys at
// loopback addresses where nothing listens, re-signed with a growing heartbeat at every push.
struct Flooder {
  asio::io_context& io;
  std::shared_ptr<p2p::Host> host;
  std::vector<p2p::Identity> fakes;
  uint64_t heartbeat = 0;
  std::set<p2p::PeerId> seen_in_replies;  // what the node's gossip told us

  Flooder(asio::io_context& io, int n) : io(io), host(make_host(io)) {
    for (int i = 0; i < n; ++i) fakes.push_back(*p2p::Identity::generate());
    // The node's gossip loop dials us too (we are a live, verified peer of its view): answer.
    host->set_handler(std::string(p2p::kMembershipProtocolId), [this](std::shared_ptr<p2p::HostStream> s) {
      s->read_message([this, s](Result<Bytes> m) {
        if (m.ok()) note_reply(*m);
        s->write(p2p::encode_length_prefixed(gossip()));
        s->close_write();
      }, p2p::kMaxGossipMessageBytes);
    });
  }

  p2p::SignedPeerRecord record(const p2p::Identity& id, std::string addr) const {
    p2p::PeerRecord r;
    r.peer = id.peer_id();
    r.addrs = {std::move(addr)};
    r.run_id = kRun;
    r.epoch = 1;
    r.heartbeat = heartbeat;
    return p2p::sign_peer_record(r, id);
  }

  Bytes gossip() {
    ++heartbeat;
    std::vector<p2p::SignedPeerRecord> out{record(host->identity(), host->listen_addrs().at(0).without_peer_id().to_string())};
    for (size_t i = 0; i < fakes.size(); ++i)
      out.push_back(record(fakes[i], "/ip4/127.0.3." + std::to_string(1 + i) + "/tcp/" + std::to_string(21000 + i)));
    return p2p::encode_gossip(out);
  }

  void note_reply(ByteView m) {
    if (auto recs = p2p::decode_gossip(m); recs.ok())
      for (const auto& r : *recs) seen_in_replies.insert(r.record.peer);
  }

  void push(const p2p::Multiaddr& to) {
    host->new_stream(to, {std::string(p2p::kMembershipProtocolId)}, [this](Result<std::shared_ptr<p2p::HostStream>> r) {
      if (!r.ok()) return;
      auto s = *r;
      s->write(p2p::encode_length_prefixed(gossip()));
      s->close_write();
      s->read_message([this, s](Result<Bytes> m) {
        if (m.ok()) note_reply(*m);
      }, p2p::kMaxGossipMessageBytes);
    });
  }
};

}  // namespace

TEST_CASE("eclipse flood: the introducer of records nobody answers at is struck until it is banned, "
          "and the flood is not passed on", "[defence][eclipse][introducer]") {
  NetworkOptions o;
  o.identity = *p2p::Identity::generate();
  o.listen = *p2p::Multiaddr::parse("/ip4/127.0.0.1/tcp/0");
  o.run_id = kRun;
  o.expect.run_id = kRun;
  o.gossip_interval = 50ms;
  o.reachability = ReachabilityMode::kPublic;
  auto started = NodeNetwork::start(std::move(o));
  REQUIRE(started.ok());
  auto node = std::move(*started);

  asio::io_context io;
  Flooder flooder(io, 48);
  asio::steady_timer timer(io);
  std::function<void()> again = [&] {
    flooder.push(node->bound_addr());
    timer.expires_after(200ms);
    timer.async_wait([&](const asio::error_code& ec) {
      if (!ec) again();
    });
  };
  again();

  double score = 0;
  std::vector<std::string> reasons;
  const bool banned = run_until(io, [&] {
    for (auto& e : node->take_events())
      if (e.kind == NetworkEvent::Kind::kBadPayload && e.peer == flooder.host->peer_id()) {
        score += e.weight;
        reasons.push_back(e.detail);
      }
    return score >= 5.0;
  });
  INFO("strikes: " << reasons.size() << (reasons.empty() ? std::string() : ", last: " + reasons.back()));
  REQUIRE(banned);
  timer.cancel();
  // Five suspect strikes, one per 8 fake records dialled in vain: 40 in all.
  REQUIRE(reasons.size() == 5);
  CHECK(reasons.back().find("introduced 40 peer records nobody answers at") != std::string::npos);
  // The node's gossip back to the flooder named none of the fakes.
  CHECK_FALSE(flooder.seen_in_replies.empty());
  for (const auto& f : flooder.fakes) CHECK(flooder.seen_in_replies.count(f.peer_id()) == 0);
  asio::post(io, [&] { flooder.host->close(); });
  io.run_for(200ms);
}
