// The Noise Protocol Framework core (noiseprotocol.org/noise.html, revision 34) for exactly one
// protocol: Noise_XX_25519_ChaChaPoly_SHA256. CipherState, SymmetricState and HandshakeState
// follow the spec's sections 5.1-5.3 by name. No I/O and no libp2p specifics (those are in
// noise.h), so the published test vectors run against this directly, with fixed ephemeral keys
// and a prologue.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <span>

#include "common/bytes.h"
#include "common/status.h"

namespace noloco::p2p::noise {

constexpr size_t kDhLen = 32;
constexpr size_t kHashLen = 32;
constexpr size_t kKeyLen = 32;
constexpr size_t kTagLen = 16;
// Noise spec 5.1: nonce 2^64-1 is reserved; we refuse to encrypt or decrypt with it, so a
// CipherState that reaches it is exhausted and the session must end (it never wraps).
constexpr uint64_t kMaxNonce = UINT64_MAX - 1;
constexpr std::string_view kProtocolName = "Noise_XX_25519_ChaChaPoly_SHA256";

using Key = std::array<uint8_t, kKeyLen>;
using Hash = std::array<uint8_t, kHashLen>;

// HMAC-SHA256 (RFC 2104) and the Noise HKDF (spec 4.3): RFC 5869 HKDF-SHA256 with the chaining
// key as salt, empty info, 2 or 3 outputs of HASHLEN bytes.
Hash hmac_sha256(ByteView key, ByteView data);
void hkdf2(ByteView chaining_key, ByteView input_key_material, Hash& out1, Hash& out2);
void hkdf3(ByteView chaining_key, ByteView input_key_material, Hash& out1, Hash& out2, Hash& out3);

struct DhKeyPair {
  Key private_key{};
  Key public_key{};
  static DhKeyPair generate();                        // X25519, libsodium CSPRNG
  static DhKeyPair from_private(const Key& private_key);
};

// ChaCha20-Poly1305 (IETF) with the Noise nonce: 4 zero bytes || 64-bit little-endian counter.
class CipherState {
 public:
  void initialize_key(const Key& k);
  bool has_key() const { return has_key_; }
  uint64_t nonce() const { return n_; }
  void set_nonce(uint64_t n) { n_ = n; }  // tests only (nonce exhaustion)

  // Append ciphertext||tag (or plaintext when no key) to out. The nonce advances only on
  // success; kUnavailable when the nonce space is exhausted.
  Status encrypt_with_ad(ByteView ad, ByteView plaintext, Bytes& out);
  // kCorrupt on authentication failure; out is left unchanged and the nonce does not advance.
  Status decrypt_with_ad(ByteView ad, ByteView ciphertext, Bytes& out);
  // The same with a key set, into caller memory (no buffer to grow and zero-fill first):
  // encrypt_to writes plaintext.size() + kTagLen bytes at out, which may be plaintext.data()
  // itself (in place) but must not overlap it otherwise.
  Status encrypt_to(ByteView ad, ByteView plaintext, uint8_t* out);
  // Decrypts ciphertext||tag where it lies; the plaintext is its first size() - kTagLen bytes.
  // On kCorrupt the bytes are no longer the ciphertext (libsodium clears them).
  Status decrypt_in_place(ByteView ad, std::span<uint8_t> message);

  ~CipherState();

 private:
  Key k_{};
  bool has_key_ = false;
  uint64_t n_ = 0;
};

class SymmetricState {
 public:
  explicit SymmetricState(std::string_view protocol_name);
  void mix_key(ByteView input_key_material);
  void mix_hash(ByteView data);
  Status encrypt_and_hash(ByteView plaintext, Bytes& out);
  Status decrypt_and_hash(ByteView ciphertext, Bytes& out);
  void split(CipherState& c1, CipherState& c2) const;
  const Hash& handshake_hash() const { return h_; }
  bool has_key() const { return cipher_.has_key(); }

 private:
  Hash ck_{};
  Hash h_{};
  CipherState cipher_;
};

// The XX pattern:  -> e   <- e, ee, s, es   -> s, se
class HandshakeStateXX {
 public:
  // fixed_ephemeral: only for test vectors; normal use generates a fresh one.
  HandshakeStateXX(bool initiator, ByteView prologue, const DhKeyPair& static_keys,
                   std::optional<DhKeyPair> fixed_ephemeral = std::nullopt);

  bool initiator() const { return initiator_; }
  // Index of the next message (0, 1, 2); 3 means the handshake is complete.
  int message_index() const { return index_; }
  bool complete() const { return index_ == 3; }
  // True when the next message is ours to write.
  bool my_turn() const { return !complete() && ((index_ % 2 == 0) == initiator_); }

  // Appends the next handshake message carrying payload to out.
  Status write_message(ByteView payload, Bytes& out);
  // Reads the next handshake message, appending its decrypted payload to payload_out.
  // Any failure is terminal for the handshake.
  Status read_message(ByteView message, Bytes& payload_out);

  // After complete(): c1 encrypts initiator->responder, c2 responder->initiator.
  void split(CipherState& c1, CipherState& c2) const { ss_.split(c1, c2); }
  const Hash& handshake_hash() const { return ss_.handshake_hash(); }
  // The remote static public key (valid once received: message 1 for the initiator,
  // message 2 for the responder).
  const Key& remote_static() const { return rs_; }

 private:
  Status dh(const Key& priv, const Key& pub, Key& out) const;
  bool initiator_;
  int index_ = 0;
  SymmetricState ss_;
  DhKeyPair s_;
  DhKeyPair e_;
  bool e_fixed_ = false;
  Key re_{};
  Key rs_{};
};

}  // namespace noloco::p2p::noise
