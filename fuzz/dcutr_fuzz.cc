// Fuzzes DCUtR: the HolePunch decoder (anything decoded re-encodes to the same message), both
// sides' state machines fed the input as each message of an exchange (never a crash, every
// error is an error, a plan only with addresses), and the length-prefixed framing with the
// 4 KiB cap, split at input-chosen places.
#include <cstdint>
#include <cstdlib>

#include "fuzz/fuzz_split.h"
#include "p2p/dcutr.h"
#include "p2p/framing.h"

using namespace noloco;
using namespace noloco::p2p;
using namespace noloco::p2p::dcutr;

namespace {

void check_codec(ByteView in) {
  auto m = decode_hole_punch(in);
  if (!m.ok()) return;
  HolePunch h = *m;
  h.dropped_addrs = 0;
  auto again = decode_hole_punch(encode_hole_punch(h));
  if (!again.ok() || !(*again == h)) std::abort();
  if (h.addrs.size() > kMaxDcutrAddrs) std::abort();
}

void check_cores(ByteView in) {
  const std::vector<Multiaddr> own{*Multiaddr::from_ip_tcp("198.51.100.2", 4001)};
  Responder a(own);
  for (int i = 0; i < 3; ++i) {
    auto step = a.on_message(in);
    if (!step.ok()) break;
    if (step->reply && step->done) std::abort();
    for (const auto& d : step->dial) {
      if (d.is_circuit() || !d.tcp_port()) std::abort();
    }
  }
  Initiator b(own);
  b.start(TimePoint{});
  auto plan = b.on_reply(in, TimePoint{} + std::chrono::milliseconds(10));
  if (plan.ok() && (plan->dial.empty() || plan->dial_after != std::chrono::milliseconds(5))) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  ByteView in(data, size);
  check_codec(in);
  check_cores(in);
  LengthPrefixedReader whole(kMaxDcutrMessage), pieces(kMaxDcutrMessage);
  fuzz::Splitter split(data, size);
  std::span<const uint8_t> piece;
  Bytes stream;
  Status b;
  while (split.next(piece)) {
    append(stream, piece);
    if (b.ok()) b = pieces.feed(piece);
  }
  Status a = whole.feed(stream);
  if (a.ok() != b.ok()) std::abort();
  for (;;) {
    auto m1 = whole.next();
    auto m2 = pieces.next();
    if (!m1 || !m2) break;
    if (*m1 != *m2) std::abort();
    check_codec(*m1);
  }
  return 0;
}
