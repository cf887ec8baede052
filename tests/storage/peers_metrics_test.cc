// Peer book bounds and eviction, bans with expiry, metrics history range reads.
#include <catch2/catch.hpp>

#include "storage_test_util.h"

using namespace noloco;
using namespace noloco::storage;
using namespace noloco::storage::test;

namespace {

struct FakeWallClock {
  int64_t now = 1'000'000;
  StoreOptions options(const std::string& path) {
    auto o = options_for(path);
    o.now_unix = [this] { return now; };
    return o;
  }
};

std::vector<std::string> peer_ids(Store& s) {
  std::vector<std::string> out;
  auto peers = s.list_peers().value();
  for (const auto& p : peers) out.push_back(p.peer_id);
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace

TEST_CASE("peer records round trip and survive a restart") {
  TempDir dir;
  FakeWallClock clock;
  {
    auto store = open_or_fail(clock.options(dir.str()));
    REQUIRE(store->record_seen("A", {"/ip4/10.0.0.1/tcp/4001"}).ok());
    clock.now += 10;
    REQUIRE(store->record_seen("A", {"/ip4/10.0.0.1/tcp/4001", "/ip4/10.0.0.2/tcp/4001"}).ok());
    REQUIRE(store->record_outcome("A", true, 1.5).ok());
    REQUIRE(store->record_outcome("A", false, -0.5).ok());
    REQUIRE(store->put_peer(PeerRecord{"B", {}, 5, 6, 7, 8, 9.0}).ok());
  }
  auto store = open_or_fail(clock.options(dir.str()));
  auto a = store->get_peer("A").value();
  REQUIRE(a.has_value());
  CHECK(a->addresses == std::vector<std::string>{"/ip4/10.0.0.1/tcp/4001", "/ip4/10.0.0.2/tcp/4001"});
  CHECK(a->first_seen_unix == 1'000'000);
  CHECK(a->last_seen_unix == 1'000'010);
  CHECK(a->successes == 1);
  CHECK(a->failures == 1);
  CHECK(a->score == 1.0);
  CHECK(store->get_peer("B").value() == PeerRecord{"B", {}, 5, 6, 7, 8, 9.0});
  CHECK_FALSE(store->get_peer("C").value().has_value());
  REQUIRE(store->remove_peer("B").ok());
  CHECK(peer_ids(*store) == std::vector<std::string>{"A"});
  auto summary = store->peer_summary().value();
  CHECK(summary.peers == 1);
  CHECK(summary.best.at(0).peer_id == "A");
  CHECK(store->update_peer("A", [](PeerRecord& p) { p.peer_id = "Z"; }).code() == StatusCode::kInvalidArgument);
}

TEST_CASE("the peer book is bounded: stale entries go first, then the lowest scores") {
  TempDir dir;
  FakeWallClock clock;
  auto o = clock.options(dir.str());
  o.max_peers = 4;
  o.peer_stale_after_s = 1000;
  {
    auto store = open_or_fail(o);
    REQUIRE(store->put_peer(PeerRecord{"old-good", {}, 0, clock.now - 5000, 0, 0, 100.0}).ok());
    REQUIRE(store->put_peer(PeerRecord{"low", {}, 0, clock.now, 0, 0, -3.0}).ok());
    REQUIRE(store->put_peer(PeerRecord{"mid", {}, 0, clock.now, 0, 0, 1.0}).ok());
    REQUIRE(store->put_peer(PeerRecord{"high", {}, 0, clock.now, 0, 0, 5.0}).ok());
    // Replacing an existing entry never evicts.
    REQUIRE(store->put_peer(PeerRecord{"mid", {}, 0, clock.now, 0, 0, 2.0}).ok());
    CHECK(peer_ids(*store).size() == 4);
    // A fifth: the stale one goes even though its score is the best.
    REQUIRE(store->record_seen("new1", {}).ok());
    CHECK(peer_ids(*store) == std::vector<std::string>{"high", "low", "mid", "new1"});
  }
  // The count is rebuilt on reopen, so the cap still holds after a restart.
  auto store = open_or_fail(o);
  REQUIRE(store->put_peer(PeerRecord{"new2", {}, 0, clock.now, 0, 0, -10.0}).ok());
  // The lowest score among the others goes; the entry just written stays even with the worst.
  CHECK(peer_ids(*store) == std::vector<std::string>{"high", "mid", "new1", "new2"});
  REQUIRE(store->record_seen("new3", {}).ok());
  CHECK(peer_ids(*store).size() == 4);
}

TEST_CASE("bans expire, are ignored once expired and cleaned") {
  TempDir dir;
  FakeWallClock clock;
  auto store = open_or_fail(clock.options(dir.str()));
  REQUIRE(store->ban("short", "bad tensor hash", 60).ok());
  REQUIRE(store->ban("forever", "wrong run id", 0).ok());
  REQUIRE(store->ban("mid", "flood", 600).ok());
  auto b = store->active_ban("short").value();
  REQUIRE(b.has_value());
  CHECK(b->reason == "bad tensor hash");
  CHECK(b->expires_unix == clock.now + 60);
  CHECK(store->list_active_bans().value().size() == 3);

  clock.now += 61;
  CHECK_FALSE(store->active_ban("short").value().has_value());  // expired: ignored and deleted
  CHECK(store->active_ban("forever").value().has_value());
  CHECK(store->list_active_bans().value().size() == 2);

  clock.now += 600;
  CHECK(store->list_active_bans().value().size() == 1);  // "mid" expired but still stored
  CHECK(store->purge_expired_bans().value() == 1);
  CHECK(store->purge_expired_bans().value() == 0);
  REQUIRE(store->unban("forever").ok());
  CHECK(store->list_active_bans().value().empty());
  CHECK(store->peer_summary().value().active_bans == 0);

  store.reset();
  store = open_or_fail(clock.options(dir.str()));
  REQUIRE(store->ban("x", "r", 0).ok());
  store.reset();
  store = open_or_fail(clock.options(dir.str()));
  CHECK(store->active_ban("x").value()->reason == "r");
  CHECK(store->ban("y", "r", -1).code() == StatusCode::kInvalidArgument);
}

TEST_CASE("metrics history: range reads, recent, replace, prune, restart") {
  TempDir dir;
  {
    auto store = open_or_fail(options_for(dir.str()));
    for (uint64_t s = 1; s <= 300; ++s) {
      MetricsRecord r{s, static_cast<int64_t>(s) * 1000, 10.0 / s, 100.0 * s, s, 2 * s, "peer" + std::to_string(s % 3),
                      s * 0.5, {{"grad_norm", s * 0.1}}};
      REQUIRE(store->put_metrics(r).ok());
    }
  }
  auto store = open_or_fail(options_for(dir.str()));
  auto range = store->metrics_range(255, 260).value();
  REQUIRE(range.size() == 6);
  CHECK(range.front().outer_step == 255);
  CHECK(range.back().outer_step == 260);
  CHECK(range[0].partner == "peer0");
  CHECK(range[0].fields.at("grad_norm") == 255 * 0.1);
  CHECK(store->metrics_range(1, 300, 10).value().size() == 10);
  CHECK(store->metrics_range(301, 400).value().empty());
  CHECK(store->metrics_range(10, 5).value().empty());
  auto recent = store->recent_metrics(3).value();
  REQUIRE(recent.size() == 3);
  CHECK(recent[0].outer_step == 298);
  CHECK(recent[2].outer_step == 300);
  CHECK(store->recent_metrics(1000).value().size() == 300);

  REQUIRE(store->put_metrics(MetricsRecord{300, 0, 42.0, 0, 0, 0, "", 0, {}}).ok());
  CHECK(store->recent_metrics(1).value()[0].loss == 42.0);
  REQUIRE(store->prune_metrics_before(100).ok());
  auto all = store->metrics_range(0, UINT64_MAX).value();
  CHECK(all.size() == 201);
  CHECK(all.front().outer_step == 100);
}
