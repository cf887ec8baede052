// Records nobody answers at, held against whoever introduced them (docs/defences.md, "Live
// view"). An honest node gossips only records of peers it has talked to itself
// (MembershipView::make_gossip), so each hearsay record we hold is its introducer's claim that the
// peer exists and answers. The eclipse flood's records (validly signed, of keys nobody runs) break
// that claim every time we dial one. Honest introducers break it too, now and then: a peer dies
// between their last contact and our dial, or sits behind a NAT we cannot cross. So:
//
//   - only records whose addresses we should be able to reach count (public, relayed, or
//     loopback when we are on loopback ourselves; never private LAN ranges);
//   - only while our own dialling works (another dial succeeded within `own_dial_window`), so a
//     cut link of ours strikes nobody;
//   - a peer we reached once, or that later answers, is not held against its introducer;
//   - a strike (suspect weight) for every `strike_every` distinct unreachable peers, and only
//     while they outnumber the introducer's reachable ones `ratio` to one.
//
// With the defaults a flooder is banned (five suspect strikes) after 40 distinct records of its
// that nobody answers at. Sans-IO: time comes in as arguments.
#pragma once

#include <cstddef>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "common/clock.h"

namespace noloco::node {

// Whether a peer listing these addresses should answer us: a public, DNS or relayed address, or
// loopback when we listen on loopback too. Private, link-local and shared (CGNAT) ranges do not:
// a peer on someone's home LAN is reachable by its neighbours and rightly not by us.
bool answer_expected(const std::vector<std::string>& addrs, bool we_are_on_loopback);

class IntroducerWatch {
 public:
  struct Options {
    size_t strike_every = 8;                                   // distinct unreachable peers a strike
    double ratio = 4;                                          // unreachable : reachable, at least
    Duration own_dial_window = std::chrono::seconds(30);       // our dialling worked this recently
    size_t max_tracked_per_introducer = 256;                   // memory bound under a flood
    size_t max_introducers = 1024;
  };
  IntroducerWatch() = default;
  explicit IntroducerWatch(Options o) : o_(o) {}

  // Any outbound dial of ours succeeded (evidence that our own link works).
  void dial_succeeded(TimePoint now) { last_ok_ = now; }
  // Another dial succeeded within own_dial_window: a failed dial now is the peer's, not our link's.
  bool own_dialling_works(TimePoint now) const { return last_ok_ && now - *last_ok_ <= o_.own_dial_window; }

  // `peer`, introduced by `introducer`, answered (a dial to it succeeded, or it spoke to us).
  void reached(const std::string& introducer, const std::string& peer) {
    Tally* t = tally(introducer);
    if (!t) return;
    t->unreachable.erase(peer);
    if (t->reachable.size() < o_.max_tracked_per_introducer) t->reachable.insert(peer);
  }

  // A dial to `peer`, introduced by `introducer`, failed. Returns why its introducer earns a
  // strike now, or nothing.
  std::optional<std::string> unreachable(const std::string& introducer, const std::string& peer, TimePoint now) {
    if (!own_dialling_works(now)) return std::nullopt;  // maybe our link, not theirs
    Tally* found = tally(introducer);
    if (!found) return std::nullopt;
    Tally& t = *found;
    if (t.reachable.count(peer)) return std::nullopt;  // answered before: gone since, not invented
    if (t.unreachable.size() >= o_.max_tracked_per_introducer) return std::nullopt;
    if (!t.unreachable.insert(peer).second) return std::nullopt;  // counted already
    // A strike per strike_every records: counted against the strikes already given, so that a
    // record taken off the count (it answered later) cannot earn the same strike twice.
    const size_t n = t.unreachable.size();
    if (n < (t.strikes + 1) * o_.strike_every) return std::nullopt;
    if (static_cast<double>(n) < o_.ratio * static_cast<double>(t.reachable.size())) return std::nullopt;
    ++t.strikes;
    return "introduced " + std::to_string(n) + " peer records nobody answers at (" +
           std::to_string(t.reachable.size()) + " of its records answered)";
  }

  size_t unreachable_count(const std::string& introducer) const {
    auto it = by_introducer_.find(introducer);
    return it == by_introducer_.end() ? 0 : it->second.unreachable.size();
  }

 private:
  struct Tally {
    std::set<std::string> unreachable, reachable;
    size_t strikes = 0;  // given to this introducer so far
  };
  // The introducer's tally, made on first use; nullptr once max_introducers are tracked.
  Tally* tally(const std::string& introducer) {
    auto it = by_introducer_.find(introducer);
    if (it == by_introducer_.end()) {
      if (by_introducer_.size() >= o_.max_introducers) return nullptr;
      it = by_introducer_.emplace(introducer, Tally{}).first;
    }
    return &it->second;
  }
  Options o_;
  std::optional<TimePoint> last_ok_;
  std::map<std::string, Tally> by_introducer_;
};

}  // namespace noloco::node
