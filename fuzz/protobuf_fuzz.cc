// Fuzzes every protobuf decoder in p2p: the field reader, PublicKey/PrivateKey, PeerId bytes
// and the Noise handshake payload. Round-trip checks catch decoders that accept what they
// cannot reproduce.
#include <cstdint>
#include <cstdlib>

#include "p2p/identity.h"
#include "p2p/noise.h"
#include "p2p/protobuf.h"

using namespace noloco;
using namespace noloco::p2p;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  ByteView in(data, size);
  pb::Reader r(in, 4096);
  while (!r.done()) {
    auto f = r.next();
    if (!f.ok()) break;
    if (f->type == pb::WireType::kLengthDelimited && f->data.size() > 4096) std::abort();
  }
  auto key = unmarshal_ed25519_public_key(in);
  if (key.ok()) {
    if (key->size() != 32) std::abort();
    if (marshal_ed25519_public_key(*key) != Bytes(in.begin(), in.end())) std::abort();  // canonical only
  }
  auto id = Identity::from_private_key_protobuf(in);
  if (id.ok() && !Identity::verify(id->public_key(), in, id->sign(in))) std::abort();
  auto peer = PeerId::from_bytes(in);
  if (peer.ok()) {
    auto again = PeerId::parse(peer->to_string());
    if (!again.ok() || *again != *peer) std::abort();
    (void)peer->ed25519_public_key();
  }
  auto payload = parse_noise_handshake_payload(in);
  if (payload.ok()) {
    auto again = parse_noise_handshake_payload(encode_noise_handshake_payload(*payload));
    if (!again.ok() || again->stream_muxers != payload->stream_muxers || again->identity_key != payload->identity_key ||
        again->identity_sig != payload->identity_sig) {
      std::abort();
    }
  }
  return 0;
}
