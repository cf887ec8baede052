#include <catch2/catch.hpp>

#include <set>

#include "p2p/membership.h"

using namespace noloco;
using namespace noloco::p2p;
using namespace std::chrono_literals;

namespace {

Identity make_identity(uint8_t n) {
  Bytes seed(32, n);
  return Identity::from_seed(seed).value();
}

struct Node {
  Identity id;
  ManualClock& clock;
  MembershipView view;
  Node(uint8_t n, ManualClock& c, std::string run = "run-a", uint64_t epoch = 1,
       MembershipOptions o = {})
      : id(make_identity(n)), clock(c), view(id, std::move(run), epoch, o, c) {
    view.set_self({"/ip4/127.0.0.1/tcp/" + std::to_string(4000 + n)}, 0, 10.0);
  }
};

// Push-pull between two views, as the protocol does over one stream.
void push_pull(MembershipView& a, MembershipView& b) {
  REQUIRE(b.on_gossip(a.make_gossip()).ok());
  REQUIRE(a.on_gossip(b.make_gossip()).ok());
}

}  // namespace

TEST_CASE("a signed peer record verifies and any changed field breaks it", "[membership]") {
  Identity id = make_identity(1);
  PeerRecord r{id.peer_id(), {"/ip4/127.0.0.1/tcp/4001"}, "run-a", 7, 3, 12, 55.5};
  SignedPeerRecord s = sign_peer_record(r, id);
  REQUIRE(verify_peer_record(s).ok());

  auto tampered = s;
  tampered.record.outer_step = 13;
  CHECK_FALSE(verify_peer_record(tampered).ok());
  tampered = s;
  tampered.record.addrs[0] = "/ip4/10.0.0.1/tcp/4001";
  CHECK_FALSE(verify_peer_record(tampered).ok());
  // Signed by someone else: the key inside the peer id does not match.
  auto forged = sign_peer_record(r, make_identity(2));
  CHECK_FALSE(verify_peer_record(forged).ok());
}

TEST_CASE("gossip messages round trip", "[membership]") {
  Identity a = make_identity(1), b = make_identity(2);
  std::vector<SignedPeerRecord> recs{
      sign_peer_record({a.peer_id(), {"/ip4/127.0.0.1/tcp/1"}, "run", 1, 2, 3, 4.0}, a),
      sign_peer_record({b.peer_id(), {}, "run", 5, 6, 7, 0.0}, b)};
  auto decoded = decode_gossip(encode_gossip(recs));
  REQUIRE(decoded.ok());
  REQUIRE(decoded->size() == 2);
  CHECK((*decoded)[0].record.peer == a.peer_id());
  CHECK((*decoded)[0].record.addrs == recs[0].record.addrs);
  CHECK((*decoded)[1].record.outer_step == 7);
  CHECK(verify_peer_record((*decoded)[0]).ok());
  CHECK(verify_peer_record((*decoded)[1]).ok());
}

TEST_CASE("two nodes learn each other and a third learns both through relay", "[membership]") {
  ManualClock clock;
  Node a(1, clock), b(2, clock), c(3, clock);
  push_pull(a.view, b.view);
  CHECK(a.view.live_peers().size() == 1);
  CHECK(b.view.find(a.id.peer_id()).has_value());
  push_pull(b.view, c.view);  // c never talked to a
  auto live = c.view.live_peers();
  REQUIRE(live.size() == 2);
  std::set<PeerId> ids{live[0].peer, live[1].peer};
  CHECK(ids.count(a.id.peer_id()) == 1);
  CHECK(ids.count(b.id.peer_id()) == 1);
}

TEST_CASE("records of another run, forged or stale records are not believed", "[membership]") {
  ManualClock clock;
  Node a(1, clock), other_run(2, clock, "run-b");
  auto report = a.view.on_gossip(other_run.view.make_gossip());
  REQUIRE(report.ok());
  CHECK(report->rejected == 1);
  CHECK(report->first_rejection.find("run-b") != std::string::npos);
  CHECK(a.view.size() == 0);

  // A record for peer 3 signed by peer 4.
  Identity victim = make_identity(3), forger = make_identity(4);
  auto forged = sign_peer_record({victim.peer_id(), {"/ip4/127.0.0.1/tcp/9"}, "run-a", 1, 99, 0, 0}, forger);
  report = a.view.on_gossip(encode_gossip({forged}));
  REQUIRE(report.ok());
  CHECK(report->rejected == 1);
  CHECK_FALSE(a.view.find(victim.peer_id()).has_value());

  Node b(5, clock);
  Bytes first = b.view.make_gossip();
  REQUIRE(a.view.on_gossip(first)->accepted == 1);
  auto again = a.view.on_gossip(first);
  CHECK(again->stale == 1);
  CHECK(again->accepted == 0);
}

TEST_CASE("a peer whose heartbeat stops is suspected, then forgotten", "[membership]") {
  ManualClock clock;
  MembershipOptions o;
  o.suspect_after = 10s;
  o.forget_after = 30s;
  Node a(1, clock, "run-a", 1, o), b(2, clock, "run-a", 1, o), c(3, clock, "run-a", 1, o);
  push_pull(a.view, b.view);
  push_pull(a.view, c.view);
  REQUIRE(a.view.live_peers().size() == 2);

  // b keeps beating, c is silent.
  for (int i = 0; i < 3; ++i) {
    clock.advance(5s);
    b.view.beat();
    push_pull(a.view, b.view);
  }
  auto live = a.view.live_peers();
  REQUIRE(live.size() == 1);
  CHECK(live[0].peer == b.id.peer_id());
  CHECK(a.view.size() == 2);  // suspected, not yet forgotten
  // Re-gossiping c's old record (say via b, which holds a copy) does not revive it.
  push_pull(a.view, b.view);
  CHECK(a.view.live_peers().size() == 1);

  clock.advance(20s);
  b.view.beat();
  push_pull(a.view, b.view);
  CHECK(a.view.expire() == 1);
  CHECK_FALSE(a.view.find(c.id.peer_id()).has_value());
}

TEST_CASE("a restarted peer with a new epoch replaces its old record", "[membership]") {
  ManualClock clock;
  Node a(1, clock);
  Identity b_id = make_identity(2);
  {
    MembershipView b_old(b_id, "run-a", /*epoch=*/100, {}, clock);
    for (int i = 0; i < 50; ++i) b_old.beat();
    REQUIRE(a.view.on_gossip(b_old.make_gossip())->accepted == 1);
  }
  MembershipView b_new(b_id, "run-a", /*epoch=*/200, {}, clock);
  b_new.set_self({"/ip4/127.0.0.1/tcp/5555"}, 0, 0);
  REQUIRE(a.view.on_gossip(b_new.make_gossip())->accepted == 1);
  CHECK(a.view.find(b_id.peer_id())->epoch == 200);
  CHECK(a.view.find(b_id.peer_id())->addrs[0] == "/ip4/127.0.0.1/tcp/5555");
}

TEST_CASE("the view is bounded and evicts the peer heard from least recently", "[membership]") {
  ManualClock clock;
  MembershipOptions o;
  o.max_peers = 3;
  Node a(1, clock, "run-a", 1, o);
  std::vector<PeerId> order;
  for (uint8_t n = 2; n <= 6; ++n) {
    Node p(n, clock);
    REQUIRE(a.view.on_gossip(p.view.make_gossip()).ok());
    order.push_back(p.id.peer_id());
    clock.advance(1s);
  }
  CHECK(a.view.size() == 3);
  CHECK_FALSE(a.view.find(order[0]).has_value());
  CHECK_FALSE(a.view.find(order[1]).has_value());
  CHECK(a.view.find(order[4]).has_value());
}

TEST_CASE("malformed gossip is refused whole", "[membership]") {
  ManualClock clock;
  Node a(1, clock), b(2, clock);
  Bytes good = b.view.make_gossip();

  CHECK_FALSE(a.view.on_gossip(Bytes{0xde, 0xad, 0xbe, 0xef}).ok());
  for (size_t cut : {size_t{1}, good.size() / 2, good.size() - 1})
    CHECK_FALSE(a.view.on_gossip(ByteView(good.data(), cut)).ok());
  Bytes trailing = good;
  trailing.push_back(0);
  CHECK_FALSE(a.view.on_gossip(trailing).ok());
  // An array header claiming 2^32-1 records: refused by the length cap, not allocated.
  Bytes huge{0x92, 0x01, 0xdd, 0xff, 0xff, 0xff, 0xff};
  auto r = a.view.on_gossip(huge);
  REQUIRE_FALSE(r.ok());
  CHECK(r.status().code() == StatusCode::kTooLarge);
  Bytes too_big(kMaxGossipMessageBytes + 1, 0x90);
  CHECK(a.view.on_gossip(too_big).status().code() == StatusCode::kTooLarge);
  CHECK(a.view.size() == 0);
  // The good message still works afterwards.
  CHECK(a.view.on_gossip(good)->accepted == 1);
}

TEST_CASE("sampling picks only live peers, every one of them, honouring exclusions", "[membership]") {
  ManualClock clock;
  Node a(1, clock), b(2, clock), c(3, clock), d(4, clock);
  for (Node* p : {&b, &c, &d}) push_pull(a.view, p->view);
  std::mt19937_64 rng(42);
  std::set<PeerId> seen;
  for (int i = 0; i < 200; ++i) {
    auto p = a.view.sample_live(rng, {d.id.peer_id()});
    REQUIRE(p.has_value());
    seen.insert(p->peer);
  }
  CHECK(seen == std::set<PeerId>{b.id.peer_id(), c.id.peer_id()});
  CHECK_FALSE(a.view.sample_live(rng, {b.id.peer_id(), c.id.peer_id(), d.id.peer_id()}).has_value());
}
