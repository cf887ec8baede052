// State sync with fallbacks and a cross-check (docs/defences.md, "State sync"): download the
// snapshot of the first server that gives one, cross-check it against witnesses
// (trainer/node/state_check.h), and move on to the next server when a download fails, stalls or
// is outvoted. The caller falls back to training from its own weights when every server fails.
#pragma once

#include <memory>
#include <random>
#include <string>
#include <vector>

#include "trainer/node/node_network.h"
#include "trainer/node/state_check.h"

namespace noloco::node {

struct StateFetchPlan {
  size_t max_servers = 3;                              // servers tried in turn
  Duration server_budget = std::chrono::seconds(30);   // per server (NetworkOptions bounds each answer)
  Duration witness_budget = std::chrono::seconds(10);  // per witness probe
  StateCheckOptions check;
  // Candidates whose record claims less are not downloaded from (nothing to gain), only asked
  // as witnesses.
  uint64_t min_server_outer = 0;
  // Our own weights as a state blob: the reference no witness can lie about. Every proof needs
  // the server's snapshot unrelated to ours (cosine below min_related_cosine) as well: without
  // it two lying witnesses got an honest server struck at any step gap (the attack matrix's
  // poison-state x2 run, once), and early in a run honest witnesses within comparable_steps of an
  // honest server were past the distance bound from it and proved it "wrong" (the matrix of
  // 2026-12-04 night: three honest servers struck in the sybil and slow-reader runs, by nodes
  // still at outer step 0). Honest snapshots relate to each other at any step gap (state_check.h).
  // Without a reference nothing is proven; a poison is still refused by the witnesses.
  std::shared_ptr<const StateSnapshot> own;
};

struct CheckedState {
  StateFetched fetched;
  size_t agree = 0, disagree = 0;     // witnesses of the adopted snapshot
  std::vector<std::string> failures;  // "<peer>: <why>" per server given up on, in order
};

// `candidates`: the live peers that may serve, in order of preference (the first is tried first).
// Every other candidate may serve as a witness. Fails (with every server's reason) when none
// gave a snapshot its witnesses accept. `proven_bad` (when given) receives, either way, each
// server whose snapshot no honest server sends: one that is not a state blob at all, or one that
// every witness disagreed with, two witnesses at least whose snapshots are within
// plan.check.comparable_steps of the server's or unrelated to it (WitnessVerdict::kUnrelated),
// and the server's snapshot unrelated to plan.own, so that lying witnesses, or honest ones far
// behind or early in a run, cannot get an honest server struck. `unresponsive` (when given) receives each server whose download failed
// (an error, a stall, a trickle; not an outvoted snapshot), for StateServerMemory.
Result<CheckedState> fetch_checked_state(NodeNetwork& net, const std::vector<p2p::PeerRecord>& candidates,
                                         uint64_t max_bytes, const StateFetchPlan& plan, std::mt19937_64& rng,
                                         std::vector<p2p::PeerId>* proven_bad = nullptr,
                                         std::vector<p2p::PeerId>* unresponsive = nullptr);

// Before downloading from a server whose claim nobody backs (state_server_memory.h lone_claim):
// one small probe of its snapshot within `budget`. OK when it answers with a snapshot ahead of
// `our_outer`; the error otherwise (it stalled, trickled, or has nothing newer than ours).
Status check_lone_claim(NodeNetwork& net, const p2p::PeerRecord& server, uint64_t our_outer, Duration budget);

// The cross-check's outcome that proves the server wrong (see proven_bad above).
bool witnesses_prove_bad(size_t agree, size_t disagree);

}  // namespace noloco::node
