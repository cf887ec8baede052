// Heap of one exchange (exchange_memory.h).
#include "trainer/node/exchange_memory.h"

namespace noloco::node {

ExchangeMemoryBudget exchange_memory_budget(uint64_t payload_bytes, bool own_spooled) {
  ExchangeMemoryBudget b;
  b.peer_payload = static_cast<int64_t>(payload_bytes);
  b.own_payload = own_spooled ? 0 : static_cast<int64_t>(payload_bytes);
  b.working = kExchangeWorkingBytes;
  return b;
}

}  // namespace noloco::node
