// The swarm simulator (trainer/node/swarm_sim.h): each decision rule observed in a whole swarm,
// on fixed seeds.
#include <catch2/catch.hpp>

#include <numeric>

#include "trainer/node/swarm_sim.h"

using namespace noloco::node;

namespace {

SimConfig small(int nodes = 16) {
  SimConfig c;
  c.seed = 11;
  c.nodes = nodes;
  c.outer_steps = 40;
  c.H = 10;
  c.step_s = 0.5;  // a phase takes 5 to 6.5 virtual seconds
  return c;
}

SimResult run(const SimConfig& c, std::vector<std::string>* trace = nullptr) {
  auto r = run_swarm_sim(c, trace ? [trace](const std::string& l) { trace->push_back(l); }
                                  : std::function<void(const std::string&)>{});
  REQUIRE(r.ok());
  return *r;
}

SimFault fault(const std::string& text) {
  auto f = parse_sim_fault(text);
  REQUIRE(f.ok());
  return *f;
}

}  // namespace

TEST_CASE("swarm sim: same seed gives the same trace byte for byte, another seed another", "[swarm_sim]") {
  SimConfig c = small();
  c.loss = 0.05;
  c.faults = {fault("crash:3@40+30"), fault("partition:8@60+40"), fault("join:12@50"), fault("hostile:5")};
  std::vector<std::string> a, b;
  const SimResult ra = run(c, &a), rb = run(c, &b);
  CHECK(ra.trace_hash == rb.trace_hash);
  CHECK(a == b);
  CHECK(a.size() > 500);
  c.seed = 12;
  CHECK(run(c).trace_hash != ra.trace_hash);
}

TEST_CASE("swarm sim: without faults every node finishes and mixes nearly every step", "[swarm_sim]") {
  const SimResult r = run(small());
  for (const auto& s : r.nodes) {
    CHECK(s.finished);
    CHECK(s.final_outer == 40);
    CHECK(s.outer_steps == 40);
    // Alone at most in the first step (callees have no snapshot yet) and in the last ones (the
    // fastest nodes have finished and stopped answering).
    CHECK(s.exchanges >= 36);
    CHECK(s.mixed_over_bound == 0);
  }
  // Mixing keeps the replicas together: closer than their own optima (where solo training would
  // take them) are to each other.
  CHECK(r.weight_spread < 0.5 * r.initial_spread);
}

TEST_CASE("swarm sim: no node waits beyond its exchange budget", "[swarm_sim]") {
  SimConfig c = small(24);
  c.loss = 0.3;
  c.exchange_budget_s = 3.0;
  c.faults = {fault("crash:2@30+20"), fault("crash:9@45"), fault("partition:12@70+30")};
  const SimResult r = run(c);
  int64_t failures = 0;
  for (const auto& s : r.nodes) {
    CHECK(s.blocked_max <= c.exchange_budget_s + 1e-9);
    failures += s.call_failures;
  }
  CHECK(failures > 50);  // the bound was exercised: many tries failed or timed out
}

TEST_CASE("swarm sim: after a partition heals both halves mix again", "[swarm_sim]") {
  SimConfig c = small(20);
  c.outer_steps = 60;
  c.membership_timeout_s = 5;
  c.heal_gossip_s = 5;
  c.faults = {fault("partition:10@60+100")};  // 60 s .. 160 s
  const SimResult r = run(c);
  const double w = r.window_s;
  auto mixes = [&](double from, double to) {
    int64_t n = 0;
    for (size_t k = 0; k < r.cross_mixes.size(); ++k)
      if (k * w >= from && (k + 1) * w <= to) n += r.cross_mixes[k];
    return n;
  };
  CHECK(mixes(0, 60) > 0);
  // Once the views have dropped the other half (timeout) and in-flight payloads are used up.
  CHECK(mixes(60 + 5 + 10 + 10, 160) == 0);
  CHECK(mixes(160 + 5, 1e9) > 0);
}

TEST_CASE("swarm sim: staleness bound drops a slow node's old payloads and never mixes past it", "[swarm_sim]") {
  SimConfig c = small(8);
  c.max_staleness = 1;
  c.resync_behind = 1000;  // keep the slow node slow
  c.faults = {fault("slow:0*4")};
  const SimResult r = run(c);
  int64_t stale = 0;
  for (const auto& s : r.nodes) {
    stale += s.stale;
    CHECK(s.mixed_over_bound == 0);
    CHECK(s.staleness_hist.size() == 2);
  }
  CHECK(stale > 0);
  CHECK(r.nodes[0].resyncs == 0);

  c.max_staleness = 64;
  const SimResult loose = run(c);
  int64_t loose_stale = 0;
  for (const auto& s : loose.nodes) loose_stale += s.stale;
  CHECK(loose_stale == 0);
}

TEST_CASE("swarm sim: a node resync-behind the swarm downloads its state", "[swarm_sim]") {
  SimConfig c = small(8);
  c.speed_spread = 0;  // only node 0 falls behind
  c.resync_behind = 4;
  c.faults = {fault("slow:0*3")};
  const SimResult r = run(c);
  CHECK(r.nodes[0].resyncs >= 1);
  for (size_t i = 1; i < r.nodes.size(); ++i) CHECK(r.nodes[i].resyncs == 0);
  c.resync_behind = 1000;
  CHECK(run(c).nodes[0].resyncs == 0);
}

TEST_CASE("swarm sim: a hostile node is refused and banned after five strikes", "[swarm_sim]") {
  SimConfig c = small(10);
  c.outer_steps = 60;
  c.faults = {fault("hostile:4")};
  const SimResult r = run(c);
  int64_t bans = 0;
  for (size_t i = 0; i < r.nodes.size(); ++i) {
    if (i == 4) continue;
    const auto& s = r.nodes[i];
    CHECK(s.refused <= c.strikes_to_ban);  // after the ban it is neither answered nor called
    CHECK(s.bans <= 1);
    // (A refused state download from it is a strike too, so a ban may come with fewer refusals.)
    if (s.refused == c.strikes_to_ban) CHECK(s.bans == 1);
    bans += s.bans;
  }
  CHECK(bans >= 5);
}

TEST_CASE("swarm sim: a late joiner syncs the swarm's state and then takes part", "[swarm_sim]") {
  SimConfig c = small(12);
  c.faults = {fault("join:7@120")};
  std::vector<std::string> trace;
  const SimResult r = run(c, &trace);
  const auto& j = r.nodes[7];
  CHECK(j.resyncs == 1);
  CHECK(j.finished);
  CHECK(j.final_outer == 40);
  CHECK(j.outer_steps < 30);  // it skipped the steps the swarm had taken before it came
  CHECK(j.exchanges >= j.outer_steps - 2);
  bool synced = false;
  for (const auto& line : trace)
    if (line.find("\"node\":7,\"ev\":\"state_sync\"") != std::string::npos) synced = true;
  CHECK(synced);
}

TEST_CASE("swarm sim: a crashed node restarts from its checkpoint and catches up", "[swarm_sim]") {
  SimConfig c = small(10);
  c.resync_behind = 4;
  c.faults = {fault("crash:6@60+60")};
  const SimResult r = run(c);
  const auto& s = r.nodes[6];
  CHECK(s.crashes == 1);
  CHECK(s.resyncs >= 1);  // 60 s down is ~10 outer steps behind
  CHECK(s.finished);
  CHECK(s.final_outer == 40);
}

TEST_CASE("swarm sim: honest churn (restarts, late joiners, a partition) earns no refusal and no ban", "[swarm_sim][claims]") {
  // Every rule that strikes (claim_watch.h's "no snapshot yet" at two claimed steps included)
  // must leave honest nodes alone however they come and go: here many are called before they
  // have a payload (started late, restarted from a checkpoint, some resyncing at once).
  SimConfig c = small(48);
  c.resync_behind = 3;
  c.faults = {fault("join:40@30"),       fault("join:41@80"),       fault("join:42@150"),
              fault("crash:3@40+20"),    fault("crash:7@55+90"),    fault("crash:9@60+5"),
              fault("crash:12@100+30"),  fault("crash:15@180+15"),  fault("crash:20@200+40"),
              fault("crash:21@205+1"),   fault("crash:22@150+2"),   fault("partition:24@120+40")};
  const SimResult r = run(c);
  int64_t crashes = 0, resyncs = 0, refused = 0, bans = 0, finished = 0;
  for (const auto& s : r.nodes) {
    crashes += s.crashes, resyncs += s.resyncs, refused += s.refused, bans += s.bans, finished += s.finished;
  }
  CHECK(crashes == 8);
  CHECK(resyncs >= 4);
  CHECK(finished == 48);
  CHECK(refused == 0);
  CHECK(bans == 0);
}

TEST_CASE("swarm sim: fault parsing", "[swarm_sim]") {
  CHECK(fault("crash:3@40+30").duration == 30);
  CHECK(fault("partition:8@60+40").split == 8);
  CHECK(fault("slow:2*3.5").factor == 3.5);
  CHECK_FALSE(parse_sim_fault("crash:3").ok());
  CHECK_FALSE(parse_sim_fault("partition:8@60").ok());
  CHECK_FALSE(parse_sim_fault("join:1@2+3").ok());
  CHECK_FALSE(parse_sim_fault("melt:1").ok());
  CHECK_FALSE(parse_sim_fault("hostile:1x").ok());
  SimConfig c = small(4);
  c.faults = {fault("crash:9@1")};
  CHECK_FALSE(run_swarm_sim(c).ok());
}

// A seeded scenario with every kind of fault at once, kept as a regression case: if a decision
// rule changes, this hash changes; update it only together with the docs of the rule.
TEST_CASE("swarm sim: regression scenario", "[swarm_sim]") {
  SimConfig c = small(32);
  c.seed = 2026;
  c.loss = 0.02;
  c.faults = {fault("crash:3@40+30"), fault("crash:17@90"),  fault("partition:16@100+50"),
              fault("join:30@70"),    fault("hostile:11"),  fault("slow:5*2.5")};
  const SimResult r = run(c);
  INFO("trace hash " << std::hex << r.trace_hash);
  CHECK(r.trace_hash == 0x1ef1a049c5682312ULL);
  int64_t finished = 0;
  for (const auto& s : r.nodes) finished += s.finished;
  CHECK(finished == 31);  // all but node 17, which never comes back
  CHECK_FALSE(r.nodes[17].finished);
  CHECK(r.nodes[3].crashes == 1);
  CHECK(r.nodes[30].resyncs == 1);
  for (const auto& s : r.nodes) CHECK(s.mixed_over_bound == 0);
}
