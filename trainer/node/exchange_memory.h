// How much heap one exchange needs on top of the model state, from the payload size alone
// (torch-free). docs/memory.md ("One exchange") derives it; tests/node/exchange_memory_test.cc
// fails when the measured peak of an exchange grows past total().
#pragma once

#include <cstdint>

namespace noloco::node {

// Chunk-sized working buffers of build, transfer, verify and apply together: the codec's chunk
// buffers and zstd contexts (window included), a frame being sent or received per stream, the
// outer step's chunk tensors. Fitted with room to what exchange_bench measured at gpt-125m
// (about 15 MiB above the two payloads).
inline constexpr int64_t kExchangeWorkingBytes = int64_t{32} << 20;

struct ExchangeMemoryBudget {
  int64_t peer_payload = 0;  // the partner's payload as it arrived, kept until the step is applied
  int64_t own_payload = 0;   // ours in the heap (0 when spooled to a file, payload_spool.h)
  int64_t working = 0;       // kExchangeWorkingBytes
  int64_t total() const { return peer_payload + own_payload + working; }
};

// `payload_bytes`: one payload on the wire (ours and the partner's: same model and codec).
// Building ours, spooled, needs one tensor's encoded message at most, less than peer_payload.
ExchangeMemoryBudget exchange_memory_budget(uint64_t payload_bytes, bool own_spooled);

}  // namespace noloco::node
