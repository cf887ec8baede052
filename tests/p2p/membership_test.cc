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
  REQUIRE(b.on_gossip(a.make_gossip(), a.self().peer).ok());
  REQUIRE(a.on_gossip(b.make_gossip(), b.self().peer).ok());
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
  CHECK(report->forged == 0);  // another run's record is a mistake, not a forgery: no strike
  CHECK(report->first_rejection.find("run-b") != std::string::npos);
  CHECK(a.view.size() == 0);

  // A record for peer 3 signed by peer 4.
  Identity victim = make_identity(3), forger = make_identity(4);
  auto forged = sign_peer_record({victim.peer_id(), {"/ip4/127.0.0.1/tcp/9"}, "run-a", 1, 99, 0, 0}, forger);
  report = a.view.on_gossip(encode_gossip({forged}));
  REQUIRE(report.ok());
  CHECK(report->rejected == 1);
  CHECK(report->forged == 1);  // the node strikes the sender for it (node_network.cc merge_gossip)
  CHECK_FALSE(a.view.find(victim.peer_id()).has_value());

  Node b(5, clock);
  Bytes first = b.view.make_gossip();
  REQUIRE(a.view.on_gossip(first, b.id.peer_id())->accepted == 1);
  auto again = a.view.on_gossip(first, b.id.peer_id());
  CHECK(again->stale == 1);
  CHECK(again->accepted == 0);
  CHECK(again->forged == 0);
  // Honest relaying forges nothing: what a node gossips on (its verified view) verifies here.
  Node c(6, clock);
  auto relayed = c.view.on_gossip(a.view.make_gossip());
  REQUIRE(relayed.ok());
  CHECK(relayed->accepted == 2);  // a's own record and b's, relayed
  CHECK(relayed->rejected == 0);
  CHECK(relayed->forged == 0);
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
  o.max_unverified = 3;
  Node a(1, clock, "run-a", 1, o);
  std::vector<PeerId> order;
  for (uint8_t n = 2; n <= 6; ++n) {
    Node p(n, clock);
    REQUIRE(a.view.on_gossip(p.view.make_gossip(), p.id.peer_id()).ok());  // each from itself: verified
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

// ---------------------------------------------------------------- eclipse resistance

namespace {

// A gossip message of `n` records for fresh keys (validly signed, addresses that lead nowhere),
// as an attacker would mint them.
Bytes fake_records(const std::vector<Identity>& ids, uint64_t heartbeat, const std::string& ip_prefix) {
  std::vector<SignedPeerRecord> recs;
  for (size_t i = 0; i < ids.size(); ++i) {
    PeerRecord r{ids[i].peer_id(), {ip_prefix + std::to_string(i % 250 + 1) + "/tcp/9"}, "run-a", 1, heartbeat, 999, 1e9};
    recs.push_back(sign_peer_record(r, ids[i]));
  }
  return encode_gossip(recs);
}

std::vector<Identity> fresh_identities(size_t n) {
  std::vector<Identity> ids;
  for (size_t i = 0; i < n; ++i) ids.push_back(Identity::generate().value());
  return ids;
}

Bytes fake_records(size_t n, uint64_t heartbeat, const std::string& ip_prefix) {
  return fake_records(fresh_identities(n), heartbeat, ip_prefix);
}

}  // namespace

TEST_CASE("membership: a record from its own peer is verified, one relayed by another is hearsay", "[membership][eclipse]") {
  ManualClock clock;
  Node a(1, clock), b(2, clock), c(3, clock);
  REQUIRE(b.view.on_gossip(c.view.make_gossip(), c.id.peer_id()).ok());
  REQUIRE(a.view.on_gossip(b.view.make_gossip(), b.id.peer_id()).ok());
  CHECK(a.view.is_verified(b.id.peer_id()));
  CHECK_FALSE(a.view.is_verified(c.id.peer_id()));  // a only heard of c from b
  CHECK(a.view.unverified_count() == 1);
  REQUIRE(a.view.introducer(c.id.peer_id()).has_value());
  CHECK(*a.view.introducer(c.id.peer_id()) == b.id.peer_id());
  CHECK_FALSE(a.view.introducer(b.id.peer_id()).has_value());
  // Hearsay is not passed on: a's gossip holds a and b, not c.
  auto told = decode_gossip(a.view.make_gossip());
  REQUIRE(told.ok());
  REQUIRE(told->size() == 2);
  CHECK((*told)[1].record.peer == b.id.peer_id());
  // c talks to a itself (the same record, not newer): promoted.
  REQUIRE(a.view.on_gossip(c.view.make_gossip(), c.id.peer_id())->stale == 1);
  CHECK(a.view.is_verified(c.id.peer_id()));
  CHECK(a.view.unverified_count() == 0);
  CHECK_FALSE(a.view.introducer(c.id.peer_id()).has_value());
  CHECK(decode_gossip(a.view.make_gossip())->size() == 3);
  // A message from b carrying a record "from" c is still hearsay: only the stream's remote counts.
  Node d(4, clock);
  REQUIRE(a.view.on_gossip(d.view.make_gossip(), b.id.peer_id()).ok());
  CHECK_FALSE(a.view.is_verified(d.id.peer_id()));
}

TEST_CASE("membership: hearsay is capped per introducing peer and per claimed address prefix", "[membership][eclipse]") {
  ManualClock clock;
  MembershipOptions o;
  o.max_unverified_per_source = 10;
  o.max_unverified_per_prefix = 20;
  Node a(1, clock, "run-a", 1, o);
  const PeerId sybil1 = make_identity(50).peer_id(), sybil2 = make_identity(51).peer_id(),
               sybil3 = make_identity(52).peer_id();
  auto r1 = a.view.on_gossip(fake_records(30, 1, "/ip4/203.0.113."), sybil1);
  REQUIRE(r1.ok());
  CHECK(r1->accepted == 10);
  CHECK(r1->capped == 20);
  CHECK(r1->rejected == 0);
  REQUIRE(a.view.on_gossip(fake_records(30, 1, "/ip4/203.0.114."), sybil2)->accepted == 10);
  // Same /16 as both batches above (203.0.x.x): 20 held already, so nothing more from there.
  CHECK(a.view.on_gossip(fake_records(30, 1, "/ip4/203.0.115."), sybil3)->accepted == 0);
  CHECK(a.view.on_gossip(fake_records(30, 1, "/ip4/198.18.0."), sybil3)->accepted == 10);
  CHECK(a.view.unverified_count() == 30);
}

TEST_CASE("membership: a flood of 10000 fake records does not evict the real peers and the view stays bounded",
          "[membership][eclipse]") {
  ManualClock clock;
  MembershipOptions o;  // defaults: 256 peers, at most 128 of them hearsay
  Node a(1, clock, "run-a", 1, o);
  // Five real peers a has talked to, and two it knows only through them.
  std::vector<std::unique_ptr<Node>> real;
  for (uint8_t n = 2; n <= 8; ++n) real.push_back(std::make_unique<Node>(n, clock, "run-a", 1, o));
  for (size_t i = 0; i < 5; ++i) REQUIRE(real[i]->view.on_gossip(real[5 + i % 2]->view.make_gossip(), real[5 + i % 2]->id.peer_id()).ok());
  for (size_t i = 0; i < 5; ++i) REQUIRE(a.view.on_gossip(real[i]->view.make_gossip(), real[i]->id.peer_id()).ok());
  REQUIRE(a.view.live_peers().size() == 7);
  REQUIRE(a.view.unverified_count() == 2);

  // 40 attacker identities (each a connection of its own) push 250 fresh records each: 10000
  // records, spread over 40 /16s. Then again with newer heartbeats, as a live attacker would.
  std::vector<std::vector<Identity>> fakes;
  for (int s = 0; s < 40; ++s) fakes.push_back(fresh_identities(250));
  size_t accepted = 0;
  for (uint64_t round = 1; round <= 2; ++round) {
    for (int s = 0; s < 40; ++s) {
      const PeerId sybil = make_identity(static_cast<uint8_t>(100 + s)).peer_id();
      const std::string prefix = "/ip4/" + std::to_string(10 + s) + ".0.0.";
      auto r = a.view.on_gossip(fake_records(fakes[s], round, prefix), sybil);
      REQUIRE(r.ok());
      accepted += r->accepted;
    }
    // The real peers keep beating and gossiping with a.
    clock.advance(5s);
    for (auto& p : real) p->view.beat();
    for (size_t i = 0; i < 5; ++i) REQUIRE(a.view.on_gossip(real[i]->view.make_gossip(), real[i]->id.peer_id()).ok());
  }
  CHECK(accepted <= 2 * o.max_unverified);  // round 2 only refreshes what round 1 let in
  CHECK(a.view.size() <= o.max_peers);
  CHECK(a.view.unverified_count() <= o.max_unverified);
  auto live = a.view.live_peers();
  std::set<PeerId> live_ids;
  for (const auto& r : live) live_ids.insert(r.peer);
  for (auto& p : real) CHECK(live_ids.count(p->id.peer_id()) == 1);
  // What a gossips onwards is itself and the five peers it talked to: no hearsay, the flood's
  // records go no further than the flooders' own messages.
  auto out = decode_gossip(a.view.make_gossip());
  REQUIRE(out.ok());
  CHECK(out->size() == 6);
  for (size_t i = 1; i < out->size(); ++i) CHECK(a.view.is_verified((*out)[i].record.peer));
}

TEST_CASE("membership: a verified peer takes the place of hearsay in a full view, hearsay never of a live peer",
          "[membership][eclipse]") {
  ManualClock clock;
  MembershipOptions o;
  o.max_peers = 4;
  o.max_unverified = 4;
  o.max_unverified_per_source = 4;
  Node a(1, clock, "run-a", 1, o);
  const PeerId sybil = make_identity(60).peer_id();
  REQUIRE(a.view.on_gossip(fake_records(4, 1, "/ip4/192.0.2."), sybil)->accepted == 4);
  // Full of live hearsay: more hearsay (from another source) finds no room.
  CHECK(a.view.on_gossip(fake_records(1, 1, "/ip4/198.51.100."), make_identity(61).peer_id())->capped == 1);
  // A peer that talks to us directly does.
  Node real(2, clock, "run-a", 1, o);
  REQUIRE(a.view.on_gossip(real.view.make_gossip(), real.id.peer_id())->accepted == 1);
  CHECK(a.view.size() == 4);
  CHECK(a.view.unverified_count() == 3);
  CHECK(a.view.is_verified(real.id.peer_id()));
  // Once the hearsay goes quiet, new hearsay may replace it.
  clock.advance(o.suspect_after + 1s);
  real.view.beat();
  REQUIRE(a.view.on_gossip(real.view.make_gossip(), real.id.peer_id()).ok());
  CHECK(a.view.on_gossip(fake_records(1, 1, "/ip4/198.51.100."), make_identity(61).peer_id())->accepted == 1);
  CHECK(a.view.find(real.id.peer_id()).has_value());
}

TEST_CASE("membership: hearsay nobody answers at is dropped and kept out a while, so newer hearsay gets tested",
          "[membership][eclipse]") {
  ManualClock clock;
  MembershipOptions o;
  o.max_unverified_per_prefix = 4;
  Node a(1, clock, "run-a", 1, o);
  const PeerId flooder = make_identity(60).peer_id();
  const auto ids = fresh_identities(8);
  const std::vector<Identity> first(ids.begin(), ids.begin() + 4), second(ids.begin() + 4, ids.end());
  // The flood's first four fill the prefix; re-sent with newer heartbeats they stay live and in.
  REQUIRE(a.view.on_gossip(fake_records(first, 1, "/ip4/203.0.113."), flooder)->accepted == 4);
  CHECK(a.view.on_gossip(fake_records(second, 1, "/ip4/203.0.114."), flooder)->capped == 4);
  REQUIRE(a.view.on_gossip(fake_records(first, 2, "/ip4/203.0.113."), flooder)->accepted == 4);
  // Two of them did not answer our dial: their places go to the next two.
  a.view.drop_unreachable(first[0].peer_id());
  a.view.drop_unreachable(first[1].peer_id());
  CHECK_FALSE(a.view.find(first[0].peer_id()));
  CHECK(a.view.unverified_count() == 2);
  // Sent again (first the dropped ones, then the rest): the dropped ones stay out, two new ones come in.
  auto r = a.view.on_gossip(fake_records(first, 3, "/ip4/203.0.113."), flooder);
  CHECK(r->capped == 2);
  CHECK(a.view.on_gossip(fake_records(second, 2, "/ip4/203.0.114."), flooder)->accepted == 2);
  CHECK(a.view.unverified_count() == 4);
  CHECK_FALSE(a.view.find(first[0].peer_id()));
  // After forget_after (everything else expired too) they may come in again.
  // A record of a dropped peer naming other addresses is another claim, tested again (a private
  // node lists only its LAN address until its relay reservation is granted).
  CHECK(a.view.on_gossip(fake_records({first[0]}, 3, "/ip4/198.51.100."), flooder)->accepted == 1);
  CHECK(a.view.find(first[0].peer_id()));
  clock.advance(o.forget_after + 1s);
  a.view.expire();
  CHECK(a.view.on_gossip(fake_records(first, 5, "/ip4/203.0.113."), flooder)->accepted == 4);
  // A verified peer is never dropped this way, and an unknown one is a no-op.
  Node b(2, clock);
  push_pull(a.view, b.view);
  REQUIRE(a.view.is_verified(b.id.peer_id()));
  a.view.drop_unreachable(b.id.peer_id());
  CHECK(a.view.find(b.id.peer_id()));
  a.view.drop_unreachable(make_identity(99).peer_id());
}
