// Fuzzes libp2p Noise: (1) a responder and an initiator handshake fed the input as the remote's
// bytes; (2) a live transport's frame decoder fed the input; (3) the input as plaintext through
// encrypt -> split -> decrypt, which must give it back exactly. The identities and the live
// transports are made once (real handshakes) and copied per input, so runs are independent.
#include <cstdint>
#include <cstdlib>
#include <optional>

#include "fuzz/fuzz_split.h"
#include "p2p/noise.h"

using namespace noloco;
using namespace noloco::p2p;

namespace {
struct Fixture {
  Identity a;
  Identity b;
  std::optional<NoiseTransport> ta, tb;  // a -> b and b's receiving end
};

const Fixture& fixture() {
  static const Fixture* f = [] {
    auto* fx = new Fixture{*Identity::generate(), *Identity::generate(), {}, {}};
    NoiseHandshake i(NoiseRole::kInitiator, fx->a, fx->b.peer_id());
    NoiseHandshake r(NoiseRole::kResponder, fx->b);
    for (int k = 0; k < 4; ++k) {
      (void)r.feed(i.take_output());
      (void)i.feed(r.take_output());
    }
    if (!i.done() || !r.done()) std::abort();
    fx->ta.emplace(*i.take_transport());
    fx->tb.emplace(*r.take_transport());
    return fx;
  }();
  return *f;
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const Fixture& f = fixture();
  std::span<const uint8_t> piece;

  // (1) handshakes.
  {
    NoiseHandshake resp(NoiseRole::kResponder, f.b);
    fuzz::Splitter split(data, size);
    while (split.next(piece)) {
      Status s = resp.feed(piece);
      if (resp.failed() && s.ok()) std::abort();
      if (resp.failed() && !resp.take_output().empty()) std::abort();
    }
    NoiseHandshake init(NoiseRole::kInitiator, f.a, f.b.peer_id());
    (void)init.take_output();
    (void)init.feed(ByteView(data, size));
    if (init.done()) std::abort();  // would need a valid signature by b over a fresh key
  }

  // (2) transport decoder on hostile bytes.
  {
    NoiseTransport rx = *f.tb;
    fuzz::Splitter split(data, size);
    Bytes out;
    while (split.next(piece)) {
      Status s = rx.decrypt_into(piece, out);
      if (!s.ok() && !rx.failed()) std::abort();
    }
    if (rx.failed() && rx.decrypt_into(ByteView(data, size), out).ok()) std::abort();
  }

  // (3) round trip in fuzz-chosen pieces.
  {
    NoiseTransport tx = *f.ta;
    NoiseTransport rx = *f.tb;
    auto wire = tx.encrypt_frame(ByteView(data, size));
    if (!wire.ok()) std::abort();
    Bytes got;
    fuzz::Splitter split(data, size);
    size_t pos = 0;
    while (pos < wire->size()) {
      size_t n = split.next(piece) ? piece.size() : wire->size() - pos;
      n = std::min(n, wire->size() - pos);
      if (!rx.decrypt_into(ByteView(*wire).subspan(pos, n), got).ok()) std::abort();
      pos += n;
    }
    if (got != Bytes(data, data + size)) std::abort();
  }
  return 0;
}
