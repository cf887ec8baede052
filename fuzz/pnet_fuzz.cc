// Fuzzes the swarm key parser and the pnet codec: decrypting the input in fuzz-chosen pieces
// (copying, and in place) must give the same bytes as decrypting it in one call, and
// re-encrypting (copying, and in place) gives it back.
#include <cstdint>
#include <cstdlib>

#include "fuzz/fuzz_split.h"
#include "p2p/pnet.h"

using namespace noloco;
using namespace noloco::p2p;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto key = parse_swarm_key(std::string_view(reinterpret_cast<const char*>(data), size));
  if (key.ok()) {
    auto again = parse_swarm_key(format_swarm_key(*key));
    if (!again.ok() || *again != *key) std::abort();
  }

  Psk psk{};
  psk[0] = 42;
  PnetNonce nonce{};
  PnetCodec pieces(psk, nonce);
  PnetCodec pieces_in_place(psk, nonce);
  fuzz::Splitter split(data, size);
  std::span<const uint8_t> piece;
  Bytes stream, got, got_in_place;
  while (split.next(piece)) {
    append(stream, piece);
    pieces.decrypt(piece, got);
    Bytes buf(piece.begin(), piece.end());
    append(got_in_place, pieces_in_place.decrypt_in_place(buf));
  }
  PnetCodec once(psk, nonce);
  if (once.decrypt(stream) != got) std::abort();
  if (got_in_place != got) std::abort();
  // The remote's cipher: nonce = the first 24 bytes of the stream, same key.
  if (stream.size() > kPnetNonceSize) {
    PnetNonce remote;
    std::copy(stream.begin(), stream.begin() + kPnetNonceSize, remote.begin());
    PnetCodec sender(psk, remote);
    (void)sender.take_output();
    if (sender.encrypt(got) != Bytes(stream.begin() + kPnetNonceSize, stream.end())) std::abort();
    PnetCodec sender_in_place(psk, remote);
    (void)sender_in_place.take_output();
    if (!sender_in_place.encrypt_in_place(got_in_place).ok()) std::abort();
    if (got_in_place != Bytes(stream.begin() + kPnetNonceSize, stream.end())) std::abort();
  }
  return 0;
}
