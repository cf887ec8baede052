// Fuzzes libp2p Noise: (1) a responder and an initiator handshake fed the input as the remote's
// bytes; (2) a live transport's frame decoder fed the input, both the copying decrypt_into and
// decrypt_in_place, which must agree; (3) the input as plaintext through encrypt (encrypt_into
// and encrypt_to, which must agree) -> split -> decrypt in place, which must give it back exactly. The identities and the live
// transports are made once (real handshakes) and copied per input, so runs are independent.
#include <cstdint>
#include <cstdlib>
#include <optional>
#include <vector>

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
    NoiseTransport rx_in_place = *f.tb;
    fuzz::Splitter split(data, size);
    Bytes out, out_in_place;
    while (split.next(piece)) {
      Status s = rx.decrypt_into(piece, out);
      if (!s.ok() && !rx.failed()) std::abort();
      Bytes buf(piece.begin(), piece.end());
      std::vector<ByteView> parts;
      Status t = rx_in_place.decrypt_in_place(buf, parts);
      if (t.ok() != s.ok() || rx_in_place.failed() != rx.failed()) std::abort();
      if (!t.ok() && !parts.empty()) std::abort();  // nothing of a failed call is usable
      for (ByteView p : parts) append(out_in_place, p);
      if (out_in_place != out) std::abort();
    }
    if (rx.failed() && rx.decrypt_into(ByteView(data, size), out).ok()) std::abort();
  }

  // (3) round trip in fuzz-chosen pieces.
  {
    NoiseTransport tx = *f.ta;
    NoiseTransport tx_to = *f.ta;
    NoiseTransport rx = *f.tb;
    auto wire = tx.encrypt_frame(ByteView(data, size));
    if (!wire.ok()) std::abort();
    Bytes sealed(NoiseTransport::sealed_size(size));
    if (!tx_to.encrypt_to(ByteView(data, size), sealed).ok() || sealed != *wire) std::abort();
    Bytes got;
    fuzz::Splitter split(data, size);
    size_t pos = 0;
    while (pos < wire->size()) {
      size_t n = split.next(piece) ? piece.size() : wire->size() - pos;
      n = std::min(n, wire->size() - pos);
      std::vector<ByteView> parts;
      if (!rx.decrypt_in_place(std::span<uint8_t>(*wire).subspan(pos, n), parts).ok()) std::abort();
      for (ByteView p : parts) append(got, p);
      pos += n;
    }
    if (got != Bytes(data, data + size)) std::abort();
  }
  return 0;
}
