// In-process rings of the sans-IO all-reduce (trainer/node/allreduce_ring.h) for the ring tests:
// members wired to each other, messages moved in random order and cut into random pieces.
#pragma once

#include <catch2/catch.hpp>

#include <algorithm>
#include <random>
#include <vector>

#include "trainer/node/allreduce_ring.h"

namespace noloco::node::test {

inline RoundId round_of(uint64_t step = 7, uint32_t attempt = 0) { return {run_tag_of("run"), step, attempt, 42}; }

inline std::vector<RingAllReduce> make_ring(const std::vector<std::vector<float>>& inputs, uint32_t chunk,
                                            RoundId round = round_of(),
                                            codec::Mode encoding = codec::Mode::kFp32) {
  std::vector<RingAllReduce> ring;
  const auto n = static_cast<uint32_t>(inputs.size());
  for (uint32_t r = 0; r < n; ++r) {
    auto m = RingAllReduce::create({round, n, r, chunk, encoding}, inputs[r]);
    REQUIRE(m.ok());
    ring.push_back(std::move(*m));
  }
  return ring;
}

// Moves messages around the ring in random order of members, each message fed in random pieces.
inline void run_ring(std::vector<RingAllReduce>& ring, std::mt19937& rng) {
  const size_t n = ring.size();
  for (int guard = 0; guard < 1000000; ++guard) {
    bool all_done = true;
    for (auto& m : ring) all_done &= m.done();
    if (all_done) return;
    const size_t r = rng() % n;
    auto msg = ring[r].next_outgoing();
    if (!msg) continue;
    auto& right = ring[(r + 1) % n];
    size_t pos = 0;
    while (pos < msg->size()) {
      const size_t piece = std::min<size_t>(msg->size() - pos, 1 + rng() % 300);
      const Status st = right.feed(ByteView(msg->data() + pos, piece));
      INFO(st.to_string());
      REQUIRE(st.ok());
      pos += piece;
    }
  }
  FAIL("ring did not finish");
}

inline std::vector<std::vector<float>> random_inputs(size_t n, size_t len, std::mt19937& rng) {
  std::normal_distribution<float> d(0.f, 3.f);
  std::vector<std::vector<float>> in(n, std::vector<float>(len));
  for (auto& v : in)
    for (auto& x : v) x = d(rng);
  return in;
}

// Bytes all members of a ring send together: every step sends every segment once, each cut
// into chunks (docs/protocols/allreduce.md); a ring of one sends nothing.
inline uint64_t expected_total_bytes(codec::Mode mode, uint32_t n, size_t len, uint32_t chunk) {
  uint64_t per_step = 0;
  for (uint32_t s = 0; s < n; ++s) {
    size_t seg = len / n + (s < len % n);
    do {
      const auto count = static_cast<uint32_t>(std::min<size_t>(seg, chunk));
      per_step += kAllReduceHeaderBytes + allreduce_payload_bytes(mode, count);
      seg -= count;
    } while (seg > 0);
  }
  return uint64_t{2} * (n - 1) * per_step;
}

}  // namespace noloco::node::test
