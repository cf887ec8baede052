// Cross-checking a state snapshot fetched from one peer against other peers (docs/defences.md,
// "State sync"). A late joiner takes its weights whole from one server, so a lying server would
// poison it. Before adopting, the node asks up to two other peers ("witnesses") for a few random
// ranges of their own snapshot and compares: the same SHA-256 (DiLoCo members hold identical slow
// weights) agrees outright; otherwise the sampled fp32 values must be close, relative distance
// ‖x_server − x_witness‖ / ‖x_witness‖ over the samples at most max_rel_distance (NoLoCo
// members' slow weights differ, but by far less than their norm). The ranges are drawn after the
// download, so the server cannot know which values will be compared. This is probabilistic
// spot-checking of an untrusted party's result against independent sources (Golle and Mironov,
// "Uncheatable Distributed Computations", CT-RSA 2001), with a majority over witnesses; the
// thresholds are ours (docs/defences.md).
//
// Torch-free and IO-free.
#pragma once

#include <cstdint>
#include <random>
#include <utility>
#include <vector>

#include "common/bytes.h"
#include "common/status.h"

namespace noloco::node {

struct StateCheckOptions {
  size_t witnesses = 2;              // other peers asked
  size_t max_witnesses = 4;          // asked at most, to break a tie (one agrees, one disagrees)
  // A witness whose snapshot is more outer steps than this from the server's may refuse it (no
  // adoption) but not prove it wrong: an honest node far behind an honest server's step can be
  // past max_rel_distance from it (attack_ci, 2026-12-04: laggers outvoted the honest bootstrap,
  // 4 s into a tiny run, and banned it).
  uint64_t comparable_steps = 4;
  size_t ranges = 8;                 // ranges sampled per witness
  uint32_t range_bytes = 16 * 1024;  // bytes per range (4096 values)
  double max_rel_distance = 0.5;     // honest NoLoCo spreads are far below (docs/defences.md)
  // Below this cosine over the samples a snapshot is unrelated to the witness's at any step gap,
  // which proves as much as a comparable witness's disagreement: every replica of a run starts
  // from the same weights and moves continuously from there. Honest snapshots measured down to
  // 0.135 (init against 160 outer steps of tiny-preset training, 300 draws of 8 ranges); noise
  // of any norm is at 0 ± 0.006 over 32768 values, a flipped state at −1, zeros at 0.
  double min_related_cosine = 0.05;
};

using ByteRange = std::pair<uint64_t, uint32_t>;  // offset, length

// The byte range [first, second) that holds the values of a state blob (one fp32 codec message,
// uncompressed, node_payload.h build_state_blob); an error for anything else.
Result<std::pair<uint64_t, uint64_t>> state_value_region(ByteView blob);

// `count` ranges of `len` bytes (clipped to the region), 4-byte aligned within [begin, end), at
// random places, sorted by offset.
std::vector<ByteRange> sample_state_ranges(uint64_t begin, uint64_t end, size_t count, uint32_t len,
                                           std::mt19937_64& rng);

struct StateComparison {
  double distance = 0;  // ‖a − w‖ / ‖w‖
  double cosine = 1;    // a·w / (‖a‖ ‖w‖); 1 when the witness's values are all zero (no evidence)
};

// The fp32 values of `blob` at `ranges` (a) against the witness's `chunks` (w). A zero witness
// norm compares distances with the norm of a instead (0 when both are zero: identical).
Result<StateComparison> compare_state(ByteView blob, const std::vector<ByteRange>& ranges,
                                      const std::vector<Bytes>& chunks);
Result<double> state_distance(ByteView blob, const std::vector<ByteRange>& ranges, const std::vector<Bytes>& chunks);

// kUnrelated: disagrees, and its cosine with the witness is below min_related_cosine, which no
// honest pair of snapshots shows however many outer steps apart they are.
enum class WitnessVerdict { kAgrees, kDisagrees, kUnrelated };

// One witness's verdict on a fetched snapshot: the same SHA-256 agrees; another size disagrees;
// else the sampled distance decides, and the cosine whether a disagreement is kUnrelated.
Result<WitnessVerdict> judge_witness(ByteView blob, const Bytes& blob_sha256, const std::vector<ByteRange>& ranges,
                                     const Bytes& witness_sha256, uint64_t witness_total,
                                     const std::vector<Bytes>& witness_chunks, const StateCheckOptions& opt);

// The decision over all witnesses that answered: adopt when more agree than disagree, or when
// there was nobody to ask (`anyone_to_ask` false: the server is all we have). When there were
// witnesses to ask and none answered, nothing is adopted: in the full attack matrix honest
// witnesses were between snapshots or busy and a poisoner's snapshot passed unchecked (0 agree,
// 0 disagree). A tie is no adoption either: a poisoner
// with one accomplice as witness would otherwise pass against one honest witness (the attack
// matrix's poison-state x2 run did, docs/attacks.md); the fetch asks more witnesses first.
bool adopt_after_witnesses(size_t agree, size_t disagree, bool anyone_to_ask);

}  // namespace noloco::node
