#include "trainer/node/state_fetch.h"

#include <algorithm>

#include "common/hash.h"
#include "common/log.h"

namespace noloco::node {
namespace {

struct Tally {
  size_t agree = 0, disagree = 0;
  // Of those, the disagreements that prove: witnesses within comparable_steps of the server's
  // snapshot, or whose snapshot the server's is unrelated to (kUnrelated) at any step gap, and
  // only when the server's snapshot is unrelated to our own weights as well (StateFetchPlan::own).
  size_t disagree_proof = 0;
  size_t could_ask = 0;    // candidates other than the server
  bool not_state = false;  // the blob is no state blob at all
};

// Asks plan.check.witnesses candidates other than the server for sampled ranges and counts their
// verdicts, and more (up to plan.check.max_witnesses) while they are tied; a witness that cannot
// answer (gone, no state yet, too slow) is skipped. Witnesses are taken in random order: the
// candidates come most advanced first, and a poisoner claims to be ahead to draw downloads, so in
// that order it would witness for every sync its accomplice serves.
Tally ask_witnesses(NodeNetwork& net, const std::vector<p2p::PeerRecord>& candidates, const p2p::PeerId& server,
                    const StateFetched& got, const Bytes& sha, const StateFetchPlan& plan, std::mt19937_64& rng) {
  Tally t;
  auto region = state_value_region(got.blob);
  if (!region.ok()) {
    ++t.disagree;  // adopt_state would refuse it anyway; no witness needed to say so
    t.not_state = true;
    return t;
  }
  const auto ranges =
      sample_state_ranges(region->first, region->second, plan.check.ranges, plan.check.range_bytes, rng);
  // A candidate at outer step 0 has trained nothing: it cannot confirm a snapshot past step 0 (its
  // own, if it serves one yet, is far from it) and, while it is still joining, a probe waits out its
  // "no state yet" for seconds. It still counts as someone we could have asked, so the outcome is the
  // one probing it would give (not adopted), without the wait: at a swarm's start every joiner's sync
  // from the first node to step asked six such witnesses for ~19 s (2026-12-05).
  std::vector<const p2p::PeerRecord*> pool;
  size_t untrained = 0;
  for (const auto& w : candidates) {
    if (w.peer == server) continue;
    if (w.outer_step == 0 && got.outer_step > 0) ++untrained;
    else pool.push_back(&w);
  }
  std::shuffle(pool.begin(), pool.end(), rng);
  t.could_ask = pool.size() + untrained;
  // Whether the server's snapshot relates to ours at all (see StateFetchPlan::own).
  bool unrelated_to_us = false;
  if (plan.own && plan.own->blob.size() == got.blob.size()) {
    std::vector<Bytes> mine;
    for (const auto& [off, len] : ranges) mine.emplace_back(plan.own->blob.begin() + off, plan.own->blob.begin() + off + len);
    auto c = compare_state(got.blob, ranges, mine);
    unrelated_to_us = c.ok() && c->cosine < plan.check.min_related_cosine;
  }
  size_t asked = 0;
  for (const p2p::PeerRecord* wp : pool) {
    const bool tied = t.agree == t.disagree && t.agree > 0;
    if (asked >= plan.check.max_witnesses || (asked >= plan.check.witnesses && !tied)) break;
    const p2p::PeerRecord& w = *wp;
    auto sample = net.probe_state(w, ranges, plan.witness_budget);
    if (!sample.ok()) {
      NLOG_DEBUG("state witness {}: {}", w.peer.to_string(), sample.status().to_string());
      continue;
    }
    ++asked;
    auto v = judge_witness(got.blob, sha, ranges, sample->sha256, sample->total_bytes, sample->chunks, plan.check);
    if (v.ok() && *v == WitnessVerdict::kAgrees) ++t.agree;
    else {
      ++t.disagree;
      const uint64_t a = sample->outer_step, b = got.outer_step;
      if (unrelated_to_us &&
          ((a > b ? a - b : b - a) <= plan.check.comparable_steps || (v.ok() && *v == WitnessVerdict::kUnrelated)))
        ++t.disagree_proof;
    }
  }
  return t;
}

}  // namespace

bool witnesses_prove_bad(size_t agree, size_t disagree) { return agree == 0 && disagree >= 2; }

Result<CheckedState> fetch_checked_state(NodeNetwork& net, const std::vector<p2p::PeerRecord>& candidates,
                                         uint64_t max_bytes, const StateFetchPlan& plan, std::mt19937_64& rng,
                                         std::vector<p2p::PeerId>* proven_bad,
                                         std::vector<p2p::PeerId>* unresponsive) {
  CheckedState out;
  size_t tried = 0;
  for (const auto& server : candidates) {
    if (server.outer_step < plan.min_server_outer) continue;
    if (tried++ >= plan.max_servers) break;
    auto got = net.fetch_state(server, max_bytes, plan.server_budget);
    if (!got.ok()) {
      if (unresponsive) unresponsive->push_back(server.peer);
      out.failures.push_back(server.peer.to_string() + ": " + got.status().to_string());
      continue;
    }
    const auto digest = sha256(got->blob);
    const Bytes sha(digest.begin(), digest.end());
    Tally t = ask_witnesses(net, candidates, server.peer, *got, sha, plan, rng);
    // Proof needs every witness against it and two proving ones among them (state_check.h).
    if (proven_bad && (t.not_state || (t.agree == 0 && witnesses_prove_bad(t.agree, t.disagree_proof))))
      proven_bad->push_back(server.peer);
    if (!adopt_after_witnesses(t.agree, t.disagree, t.could_ask > 0)) {
      out.failures.push_back(server.peer.to_string() +
                             (t.agree + t.disagree == 0 ? ": no witness answered (" + std::to_string(t.could_ask) + " asked)"
                                                        : ": snapshot outvoted by witnesses (" + std::to_string(t.agree) +
                                                              " agree, " + std::to_string(t.disagree) + " disagree)"));
      continue;
    }
    out.fetched = std::move(*got);
    out.agree = t.agree;
    out.disagree = t.disagree;
    return out;
  }
  std::string why = "state sync: no server gave an acceptable snapshot";
  for (const auto& f : out.failures) why += "; " + f;
  if (out.failures.empty()) why += " (no candidates)";
  return Status(StatusCode::kUnavailable, why);
}

Status check_lone_claim(NodeNetwork& net, const p2p::PeerRecord& server, uint64_t our_outer, Duration budget) {
  auto sample = net.probe_state(server, {{0, 256}}, budget);
  if (!sample.ok()) return sample.status();
  if (sample->outer_step <= our_outer)
    return Status(StatusCode::kUnavailable, "claims outer step " + std::to_string(server.outer_step) +
                                                " but serves " + std::to_string(sample->outer_step));
  return Status::Ok();
}

}  // namespace noloco::node
