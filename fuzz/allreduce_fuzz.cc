// libFuzzer target for the ring all-reduce's receive side (trainer/node/allreduce_ring.h). Bit 0
// of the first input byte picks the mode, bits 1-2 the ring's value encoding (fp32, bf16, int8,
// int4: scales, codes and the encoding byte of the header get damaged too):
//   0: raw bytes, in input-chosen pieces, into member 1 of a 3-member ring;
//   1: the real stream member 0 sends to member 1 of a 2-member ring (both messages of every
//      step, as they become sendable), with input-chosen bytes XORed at input-chosen offsets,
//      so the fuzzer gets past the header checks into offsets, counts and payloads.
// Invariants: a failure is final; done() only without failure; the result keeps its length.
#include <cstdint>
#include <vector>

#include "fuzz_split.h"
#include "trainer/node/allreduce_ring.h"

using namespace noloco;
using namespace noloco::node;

namespace {

void check(bool ok) {
  if (!ok) __builtin_trap();
}

constexpr RoundId kRound{1, 2, 0, 3};
constexpr size_t kLen = 37;

void feed_all(RingAllReduce& m, const std::vector<uint8_t>& stream, const uint8_t* split, size_t split_size) {
  fuzz::Splitter sizes(split, split_size);
  size_t pos = 0;
  std::span<const uint8_t> piece;
  bool failed = false;
  while (pos < stream.size()) {
    size_t n = sizes.next(piece) ? piece.size() : stream.size() - pos;
    n = std::min(n, stream.size() - pos);
    const Status st = m.feed(ByteView(stream.data() + pos, n));
    if (failed) check(!st.ok());
    failed = failed || !st.ok();
    pos += n;
  }
  check(failed == !m.error().ok());
  if (m.done()) {
    check(m.error().ok());
    check(m.take().size() == kLen);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const uint8_t mode = data[0] % 2;
  const auto enc = static_cast<codec::Mode>((data[0] >> 1) % 4);
  ++data, --size;
  if (mode == 0) {
    auto m = RingAllReduce::create({kRound, 3, 1, 4, enc}, std::vector<float>(kLen, 1.f));
    check(m.ok());
    std::vector<uint8_t> stream(data, data + size);
    feed_all(*m, stream, data, size);
    return 0;
  }
  // Mode 1: member 0's true stream; member 0 needs member 1's messages to go on, so the two
  // are run together and only 0 -> 1 is damaged.
  auto a = RingAllReduce::create({kRound, 2, 0, 5, enc}, std::vector<float>(kLen, 1.f));
  auto b = RingAllReduce::create({kRound, 2, 1, 5, enc}, std::vector<float>(kLen, 3.f));
  check(a.ok() && b.ok());
  std::vector<uint8_t> stream;
  for (int guard = 0; guard < 1000 && !(a->sent_all() && b->sent_all()); ++guard) {
    while (auto msg = a->next_outgoing()) stream.insert(stream.end(), msg->begin(), msg->end());
    while (auto msg = b->next_outgoing()) check(a->feed(*msg).ok());
  }
  // Edits: pairs of (offset byte, xor byte) from the first half of the input.
  const size_t edits = size / 2;
  for (size_t i = 0; i + 1 < edits; i += 2)
    if (!stream.empty()) stream[(data[i] * 7u) % stream.size()] ^= data[i + 1];
  feed_all(*b, stream, data + edits, size - edits);
  return 0;
}
