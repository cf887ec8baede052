// LinkModel tests: virtual time only, so every assertion is exact (no clocks involved).
#include <catch2/catch.hpp>

#include <random>
#include <vector>

#include "tools/linkemu/link_model.h"

using namespace noloco;
using namespace noloco::linkemu;
using namespace std::chrono_literals;

namespace {

struct Sent {
  size_t n;
  Ns at;
  Ns delivered;
};

// Random chunk sizes handed over at random (non-decreasing) times: bursts and idle gaps.
std::vector<Sent> drive(LinkModel& m, uint64_t traffic_seed, size_t count, Ns max_gap = 2ms) {
  std::mt19937_64 rng(traffic_seed);
  std::vector<Sent> out;
  Ns t{0};
  for (size_t i = 0; i < count; ++i) {
    if (rng() % 4 != 0) t += Ns(static_cast<int64_t>(rng() % static_cast<uint64_t>(max_gap.count())));
    const size_t n = 1 + rng() % m.max_chunk();
    out.push_back({n, t, m.deliver_at(n, t)});
  }
  return out;
}

double secs(Ns d) { return std::chrono::duration<double>(d).count(); }

LinkParams wan() {
  LinkParams p;
  p.delay_ms = 50;
  p.jitter_ms = 10;
  p.rate_mbit = 20;
  p.burst_kb = 16;
  return p;
}

}  // namespace

TEST_CASE("the model never delivers before the configured delay", "[linkemu]") {
  LinkParams p = wan();
  p.stall_every_s = 0.3;
  p.stall_ms = 40;
  LinkModel m(p, 7, Ns(0));
  for (const Sent& s : drive(m, 1, 5000)) CHECK(s.delivered >= s.at + 50ms);
}

TEST_CASE("the model keeps the bytes of a link in order", "[linkemu]") {
  LinkParams p = wan();
  p.jitter_ms = 40;  // jitter larger than the gaps between chunks: must still not reorder
  LinkModel m(p, 3, Ns(0));
  auto sent = drive(m, 2, 5000);
  for (size_t i = 1; i < sent.size(); ++i) CHECK(sent[i].delivered >= sent[i - 1].delivered);
}

TEST_CASE("the model never exceeds the rate cap over any window", "[linkemu]") {
  for (double jitter : {0.0, 30.0}) {
    LinkParams p = wan();
    p.jitter_ms = jitter;
    p.stall_every_s = 0.5;  // a stall's backlog must also leave at the capped rate
    p.stall_ms = 100;
    LinkModel m(p, 11, Ns(0));
    auto sent = drive(m, 5, 1500, 1ms);
    const double rate = p.rate_mbit * 1e6 / 8, burst = p.burst_kb * 1024.0;
    // Bytes delivered in [d_i, d_j] (all chunks from i to j) <= rate * (d_j - d_i) + burst.
    double worst = -1e300;
    for (size_t i = 0; i < sent.size(); ++i) {
      double bytes = 0;
      for (size_t j = i; j < sent.size(); ++j) {
        bytes += static_cast<double>(sent[j].n);
        worst = std::max(worst, bytes - (rate * secs(sent[j].delivered - sent[i].delivered) + burst));
      }
    }
    CHECK(worst <= 1e-6);
  }
}

TEST_CASE("a saturated link carries its rate", "[linkemu]") {
  LinkParams p;
  p.delay_ms = 50;
  p.rate_mbit = 100;
  LinkModel m(p, 1, Ns(0));
  const size_t total = 20u << 20;
  Ns last{0};
  for (size_t sent = 0; sent < total; sent += m.max_chunk()) last = m.deliver_at(m.max_chunk(), Ns(0));
  // All handed over at once: the first burst leaves at 50 ms, the rest at 12.5 MB/s.
  const double expect = 0.05 + static_cast<double>(total - m.max_chunk()) / 12.5e6;
  CHECK(secs(last) == Approx(expect).margin(1e-6));
}

TEST_CASE("the same seed gives the same deliveries and another seed does not", "[linkemu]") {
  LinkParams p = wan();
  p.stall_every_s = 0.2;
  p.stall_ms = 30;
  LinkModel a(p, 42, Ns(0)), b(p, 42, Ns(0)), c(p, 43, Ns(0));
  auto sa = drive(a, 9, 3000), sb = drive(b, 9, 3000), sc = drive(c, 9, 3000);
  bool all_same = true, any_differs = false;
  for (size_t i = 0; i < sa.size(); ++i) {
    all_same = all_same && sa[i].delivered == sb[i].delivered;
    any_differs = any_differs || sa[i].delivered != sc[i].delivered;
  }
  CHECK(all_same);
  CHECK(any_differs);
}

TEST_CASE("a scheduled stall holds everything that reaches it until it ends", "[linkemu]") {
  LinkParams p;
  p.delay_ms = 10;
  p.stall_ms = 200;
  p.stall_at_s = {1.0};
  LinkModel m(p, 1, Ns(0));
  // One small chunk every millisecond for 2 s.
  for (Ns t{0}; t < 2s; t += 1ms) {
    const Ns d = m.deliver_at(100, t);
    const Ns reach = t + 10ms;
    if (reach >= 1s && reach < 1200ms) {
      CHECK(d == 1200ms);
    } else {
      CHECK(d == reach);
    }
  }
}

TEST_CASE("random stalls come at the configured mean rate and nothing is delivered inside one", "[linkemu]") {
  LinkParams p;
  p.delay_ms = 5;
  p.stall_every_s = 0.5;
  p.stall_ms = 50;
  LinkModel m(p, 99, Ns(0)), windows(p, 99, Ns(0));
  std::vector<std::pair<Ns, Ns>> stalls;
  for (Ns t{0};;) {
    auto w = windows.stall_at_or_after(t);
    REQUIRE(w.has_value());
    if (w->first > 200s) break;
    CHECK(w->second - w->first == 50ms);
    stalls.push_back(*w);
    t = w->second;
  }
  // 200 s with one stall per (0.5 s gap + 0.05 s stall) on average: about 360; the seed fixes it.
  CHECK(stalls.size() > 250);
  CHECK(stalls.size() < 500);
  size_t w = 0, held = 0;
  for (Ns t{0}; t < 200s; t += 1ms) {
    const Ns d = m.deliver_at(10, t);
    while (w < stalls.size() && stalls[w].second <= t + 5ms) ++w;
    if (w < stalls.size() && stalls[w].first <= t + 5ms) {
      CHECK(d == stalls[w].second);  // reached the link inside a stall: leaves when it ends
      ++held;
    } else {
      CHECK(d == t + 5ms);
    }
  }
  CHECK(held > 0);
}

TEST_CASE("scheduled and random resets come as configured", "[linkemu]") {
  LinkParams p;
  p.reset_at_s = {2.5, 1.0};  // any order
  LinkModel m(p, 1, 10s);     // schedules count from when the settings took effect
  CHECK(m.next_reset_after(10s) == 11s);
  CHECK(m.next_reset_after(11s) == 12500ms);
  CHECK_FALSE(m.next_reset_after(12500ms).has_value());

  LinkParams r;
  r.reset_every_s = 2;
  LinkModel a(r, 5, Ns(0)), b(r, 5, Ns(0));
  size_t count = 0;
  for (auto t = a.next_reset_after(Ns(0)); t && *t < 1000s; t = a.next_reset_after(*t)) {
    CHECK(b.next_reset_after(t.value() - 1ns) == t);  // same seed, same events
    ++count;
  }
  CHECK(count > 400);  // mean 500 in 1000 s
  CHECK(count < 600);
}

TEST_CASE("reconfiguring a link applies the new delay from then on", "[linkemu]") {
  LinkParams p;
  p.delay_ms = 100;
  LinkModel m(p, 1, Ns(0));
  CHECK(m.deliver_at(10, 1s) == 1100ms);
  p.delay_ms = 20;
  m.reconfigure(p, 2s);
  CHECK(m.deliver_at(10, 2s) == 2020ms);
  // A shorter delay never lets a later chunk overtake an earlier one.
  p.delay_ms = 500;
  m.reconfigure(p, 3s);
  CHECK(m.deliver_at(10, 3s) == 3500ms);
  p.delay_ms = 0;
  m.reconfigure(p, 3001ms);
  CHECK(m.deliver_at(10, 3001ms) == 3500ms);
}

TEST_CASE("link settings are validated", "[linkemu]") {
  CHECK(LinkParams{}.validate().ok());
  CHECK(wan().validate().ok());
  LinkParams p;
  p.delay_ms = -1;
  CHECK_FALSE(p.validate().ok());
  p = {};
  p.rate_mbit = std::numeric_limits<double>::infinity();
  CHECK_FALSE(p.validate().ok());
  p = {};
  p.burst_kb = 0;
  CHECK_FALSE(p.validate().ok());
  p = {};
  p.stall_every_s = 1;  // stalls without a length
  CHECK_FALSE(p.validate().ok());
  p = {};
  p.reset_at_s = {-3};
  CHECK_FALSE(p.validate().ok());
  p = {};
  p.reset_every_s = 1e-9;
  CHECK_FALSE(p.validate().ok());
}
