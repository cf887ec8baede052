// Fuzzes circuit relay v2: the HopMessage/StopMessage decoders (anything decoded re-encodes to
// the same message), the relay's hop core and the target's stop decision fed the same bytes
// (every input gets exactly one answer, a reply that itself decodes, or an admitted CONNECT),
// and the length-prefixed framing with the relay's cap, split at input-chosen places.
#include <cstdint>
#include <cstdlib>

#include "fuzz/fuzz_split.h"
#include "p2p/framing.h"
#include "p2p/relay_hop.h"
#include "p2p/relay_stop.h"

using namespace noloco;
using namespace noloco::p2p;
using namespace noloco::p2p::relay;

namespace {

const PeerId& fixed_peer(uint8_t which) {
  // Two fixed identities (deterministic keys), so inputs replay the same way.
  static const PeerId a = Identity::from_seed(Bytes(32, 1))->peer_id();
  static const PeerId b = Identity::from_seed(Bytes(32, 2))->peer_id();
  return which & 1 ? a : b;
}

void check_codec(ByteView in) {
  if (auto hop = decode_hop(in); hop.ok()) {
    HopMessage m = *hop;
    m.dropped_addrs = 0;
    auto again = decode_hop(encode_hop(m));
    if (!again.ok() || !(*again == m)) std::abort();
  }
  if (auto stop = decode_stop(in); stop.ok()) {
    StopMessage m = *stop;
    m.dropped_addrs = 0;
    auto again = decode_stop(encode_stop(m));
    if (!again.ok() || !(*again == m)) std::abort();
  }
}

void check_cores(ByteView in) {
  RelayOptions opt;
  opt.max_reservations = 1;
  opt.max_circuits = 1;
  RelayHop hop(opt);
  TimePoint now{};
  // The same bytes from both peers, twice each: reservations and circuits interact.
  for (int i = 0; i < 4; ++i) {
    auto d = hop.on_hop(fixed_peer(static_cast<uint8_t>(i)), in, now, 1'000'000, {});
    if (d.reply.has_value() == d.stop.has_value()) std::abort();
    if (d.reply && !decode_hop(encode_hop(*d.reply)).ok()) std::abort();
    if (d.stop) {
      if (!d.target || d.circuit == 0) std::abort();
      auto reply = hop.on_stop_reply(d.circuit, decode_stop(in), now);
      if (reply.type != HopType::kStatus || !reply.status) std::abort();
      auto v = hop.on_data(d.circuit, Direction::kSourceToTarget, in.size(), now);
      if (v.forward > in.size()) std::abort();
    }
    if (hop.reservation_count() > opt.max_reservations || hop.circuit_count() > opt.max_circuits) std::abort();
  }
  StopDecision s = on_stop(in, in.size() % 2 == 0);
  if (s.reply.type != StopType::kStatus || !s.reply.status) std::abort();
  if (s.source.has_value() != (*s.reply.status == RelayStatus::kOk)) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  ByteView in(data, size);
  check_codec(in);
  check_cores(in);

  LengthPrefixedReader whole(kMaxRelayMessage), pieces(kMaxRelayMessage);
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
