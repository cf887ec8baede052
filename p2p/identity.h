// Node identity: an Ed25519 key pair (libsodium) and the libp2p PeerId derived from it.
//
// PeerId, as github.com/libp2p/specs peer-ids/peer-ids.md defines it:
//   public key protobuf  = PublicKey { Type = Ed25519 (1) [field 1, varint], Data = 32 bytes [field 2] }
//   PeerId bytes         = multihash of that protobuf: identity hash (0x00, len) because it is
//                          at most 42 bytes; keys longer than 42 bytes (RSA) use sha2-256 (0x12, 0x20)
//   PeerId text          = base58btc of the multihash ("12D3KooW..." for Ed25519)
// See docs/protocols/identity.md.
#pragma once

#include <array>
#include <compare>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "common/bytes.h"
#include "common/status.h"

namespace noloco::p2p {

constexpr size_t kEd25519PublicKeySize = 32;
constexpr size_t kEd25519SeedSize = 32;
constexpr size_t kEd25519SecretKeySize = 64;  // seed || public key, libsodium's and libp2p's layout
constexpr size_t kEd25519SignatureSize = 64;

// libp2p crypto KeyType enum (peer-ids.md). Only Ed25519 is supported for our own keys and
// for verifying remote signatures.
enum class KeyType : uint8_t { kRsa = 0, kEd25519 = 1, kSecp256k1 = 2, kEcdsa = 3 };

// Initialises libsodium once (thread-safe, idempotent). Every entry point below calls it.
Status ensure_sodium();

// protobuf PublicKey { Type = Ed25519, Data = raw } for a raw 32-byte Ed25519 public key.
Bytes marshal_ed25519_public_key(ByteView raw_public_key);
// Parses a protobuf PublicKey; kUnsupported for any key type but Ed25519, kCorrupt for a
// malformed message or a Data field that is not 32 bytes. Returns the raw 32-byte key.
Result<Bytes> unmarshal_ed25519_public_key(ByteView public_key_protobuf);

class PeerId {
 public:
  PeerId() = default;  // empty; valid() is false

  // From a raw 32-byte Ed25519 public key.
  static Result<PeerId> from_ed25519_public_key(ByteView raw_public_key);
  // From the multihash bytes (identity multihash of a PublicKey protobuf, or sha2-256).
  static Result<PeerId> from_bytes(ByteView multihash);
  // From base58btc text ("12D3KooW..." or "Qm..."). CIDv1 text forms are not accepted.
  static Result<PeerId> parse(std::string_view text);

  bool valid() const { return !multihash_.empty(); }
  const Bytes& bytes() const { return multihash_; }
  std::string to_string() const;  // base58btc

  // The raw 32-byte Ed25519 key inlined in an identity-multihash PeerId; kUnsupported for
  // sha2-256 PeerIds (the key is not recoverable) and non-Ed25519 keys.
  Result<Bytes> ed25519_public_key() const;

  auto operator<=>(const PeerId&) const = default;
  bool operator==(const PeerId&) const = default;

 private:
  explicit PeerId(Bytes multihash) : multihash_(std::move(multihash)) {}
  Bytes multihash_;
};

class Identity {
 public:
  // A fresh key pair from libsodium's CSPRNG.
  static Result<Identity> generate();
  // Deterministic key pair from a 32-byte seed (tests, vectors).
  static Result<Identity> from_seed(ByteView seed);
  // From a libp2p PrivateKey protobuf { Type = Ed25519, Data = 64 bytes seed || public }.
  // kCorrupt if malformed or if the public half does not match the seed.
  static Result<Identity> from_private_key_protobuf(ByteView protobuf);

  Identity(const Identity&) = default;
  Identity& operator=(const Identity&) = default;
  ~Identity();

  // The libp2p PrivateKey protobuf (what the key file holds).
  Bytes private_key_protobuf() const;
  ByteView public_key() const { return {secret_key_.data() + kEd25519SeedSize, kEd25519PublicKeySize}; }
  Bytes public_key_protobuf() const { return marshal_ed25519_public_key(public_key()); }
  const PeerId& peer_id() const { return peer_id_; }

  // Ed25519 detached signature (64 bytes).
  Bytes sign(ByteView message) const;
  // Accepts either a raw 32-byte Ed25519 public key or a PublicKey protobuf. False for any
  // malformed key or signature; never throws.
  static bool verify(ByteView public_key, ByteView message, ByteView signature);

 private:
  Identity() = default;
  static Result<Identity> from_secret_key(const std::array<uint8_t, kEd25519SecretKeySize>& sk);
  std::array<uint8_t, kEd25519SecretKeySize> secret_key_{};
  PeerId peer_id_;
};

}  // namespace noloco::p2p

template <>
struct std::hash<noloco::p2p::PeerId> {
  size_t operator()(const noloco::p2p::PeerId& id) const noexcept;
};
