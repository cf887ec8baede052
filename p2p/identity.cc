#include "p2p/identity.h"

#include <sodium.h>

#include "common/encoding.h"
#include "common/hash.h"
#include "common/varint.h"
#include "p2p/protobuf.h"

namespace noloco::p2p {

namespace {

// Multihash codes (multiformats multicodec table).
constexpr uint8_t kMultihashIdentity = 0x00;
constexpr uint8_t kMultihashSha256 = 0x12;
constexpr size_t kMaxInlineKeyBytes = 42;  // peer-ids.md: identity multihash up to 42 bytes
constexpr size_t kMaxPeerIdBytes = 64;     // both forms are well under this
constexpr size_t kMaxPeerIdText = 128;

struct KeyMessage {
  uint64_t type = 0;
  ByteView data;
};

// Parses a PublicKey or PrivateKey protobuf: both fields required, each exactly once, nothing
// else (peer-ids.md: "All fields must be included. No additional fields may be defined.").
Result<KeyMessage> parse_key_message(ByteView bytes, const char* what) {
  pb::Reader reader(bytes, 1024);
  KeyMessage msg;
  bool have_type = false, have_data = false;
  while (!reader.done()) {
    auto f = reader.next();
    if (!f.ok()) return corrupt(std::string(what) + ": " + f.status().message());
    if (f->number == 1 && f->type == pb::WireType::kVarint && !have_type) {
      msg.type = f->value;
      have_type = true;
    } else if (f->number == 2 && f->type == pb::WireType::kLengthDelimited && !have_data) {
      msg.data = f->data;
      have_data = true;
    } else {
      return corrupt(std::string(what) + ": unexpected or repeated field " + std::to_string(f->number));
    }
  }
  if (!have_type || !have_data) return corrupt(std::string(what) + ": missing Type or Data");
  return msg;
}

// libsodium declares message pointers nonnull even for empty messages.
const uint8_t* nonnull(ByteView v) {
  static const uint8_t kEmpty = 0;
  return v.empty() ? &kEmpty : v.data();
}

}  // namespace

Status ensure_sodium() {
  static const int rc = sodium_init();  // C++ guarantees one thread-safe initialisation
  if (rc < 0) return internal_error("libsodium failed to initialise");
  return Status::Ok();
}

Bytes marshal_ed25519_public_key(ByteView raw_public_key) {
  pb::Writer w;
  w.add_varint(1, static_cast<uint64_t>(KeyType::kEd25519));
  w.add_bytes(2, raw_public_key);
  return w.take();
}

Result<Bytes> unmarshal_ed25519_public_key(ByteView public_key_protobuf) {
  NOLOCO_ASSIGN_OR_RETURN(KeyMessage msg, parse_key_message(public_key_protobuf, "PublicKey"));
  if (msg.type != static_cast<uint64_t>(KeyType::kEd25519)) {
    return unsupported("PublicKey: key type " + std::to_string(msg.type) + " is not Ed25519");
  }
  if (msg.data.size() != kEd25519PublicKeySize) return corrupt("PublicKey: Ed25519 key is not 32 bytes");
  // Only the canonical encoding is accepted, so the PeerId derived from it is the one the
  // remote derives from its own key.
  Bytes canonical = marshal_ed25519_public_key(msg.data);
  if (!std::equal(canonical.begin(), canonical.end(), public_key_protobuf.begin(), public_key_protobuf.end())) {
    return corrupt("PublicKey: not canonically encoded");
  }
  return Bytes(msg.data.begin(), msg.data.end());
}

// ---- PeerId ----

Result<PeerId> PeerId::from_ed25519_public_key(ByteView raw_public_key) {
  if (raw_public_key.size() != kEd25519PublicKeySize) return invalid_argument("Ed25519 public key is not 32 bytes");
  Bytes proto = marshal_ed25519_public_key(raw_public_key);
  Bytes mh;
  mh.push_back(kMultihashIdentity);
  put_varint(mh, proto.size());
  append(mh, proto);
  return PeerId(std::move(mh));
}

Result<PeerId> PeerId::from_bytes(ByteView multihash) {
  if (multihash.size() > kMaxPeerIdBytes) return corrupt("PeerId: too long");
  auto code = read_varint(multihash);
  if (!code.ok()) return corrupt("PeerId: bad multihash code: " + code.status().message());
  auto len = read_varint(multihash.subspan(code->consumed));
  if (!len.ok()) return corrupt("PeerId: bad multihash length: " + len.status().message());
  size_t header = code->consumed + len->consumed;
  if (len->value != multihash.size() - header) return corrupt("PeerId: multihash length does not match");
  if (code->value == kMultihashIdentity) {
    if (len->value == 0 || len->value > kMaxInlineKeyBytes) return corrupt("PeerId: bad inline key length");
  } else if (code->value == kMultihashSha256) {
    if (len->value != 32) return corrupt("PeerId: sha2-256 digest is not 32 bytes");
  } else {
    return unsupported("PeerId: multihash code " + std::to_string(code->value) + " not supported");
  }
  return PeerId(Bytes(multihash.begin(), multihash.end()));
}

Result<PeerId> PeerId::parse(std::string_view text) {
  if (text.empty() || text.size() > kMaxPeerIdText) return invalid_argument("PeerId: bad text length");
  auto raw = base58_decode(text);
  if (!raw.ok()) return invalid_argument("PeerId: not base58btc: " + raw.status().message());
  auto id = from_bytes(*raw);
  if (!id.ok()) return id.status().context("PeerId '" + std::string(text) + "'");
  return id;
}

std::string PeerId::to_string() const { return base58_encode(multihash_); }

Result<Bytes> PeerId::ed25519_public_key() const {
  if (multihash_.size() < 2 || multihash_[0] != kMultihashIdentity) {
    return unsupported("PeerId does not inline its public key");
  }
  // The length is one byte: from_bytes capped it at 42.
  return unmarshal_ed25519_public_key(ByteView(multihash_).subspan(2));
}

// ---- Identity ----

Identity::~Identity() { sodium_memzero(secret_key_.data(), secret_key_.size()); }

Result<Identity> Identity::from_secret_key(const std::array<uint8_t, kEd25519SecretKeySize>& sk) {
  Identity id;
  id.secret_key_ = sk;
  NOLOCO_ASSIGN_OR_RETURN(id.peer_id_, PeerId::from_ed25519_public_key(id.public_key()));
  return id;
}

Result<Identity> Identity::generate() {
  NOLOCO_RETURN_IF_ERROR(ensure_sodium());
  std::array<uint8_t, kEd25519SeedSize> seed;
  randombytes_buf(seed.data(), seed.size());
  auto id = from_seed(seed);
  sodium_memzero(seed.data(), seed.size());
  return id;
}

Result<Identity> Identity::from_seed(ByteView seed) {
  NOLOCO_RETURN_IF_ERROR(ensure_sodium());
  if (seed.size() != kEd25519SeedSize) return invalid_argument("Ed25519 seed is not 32 bytes");
  std::array<uint8_t, kEd25519PublicKeySize> pk;
  std::array<uint8_t, kEd25519SecretKeySize> sk;
  crypto_sign_seed_keypair(pk.data(), sk.data(), seed.data());
  auto id = from_secret_key(sk);
  sodium_memzero(sk.data(), sk.size());
  return id;
}

Result<Identity> Identity::from_private_key_protobuf(ByteView protobuf) {
  NOLOCO_ASSIGN_OR_RETURN(KeyMessage msg, parse_key_message(protobuf, "PrivateKey"));
  if (msg.type != static_cast<uint64_t>(KeyType::kEd25519)) {
    return unsupported("PrivateKey: key type " + std::to_string(msg.type) + " is not Ed25519");
  }
  // peer-ids.md: 64 bytes seed||public, or the legacy 96 bytes seed||public||public.
  if (msg.data.size() != 64 && msg.data.size() != 96) return corrupt("PrivateKey: Ed25519 key is not 64 bytes");
  ByteView pub = msg.data.subspan(kEd25519SeedSize, kEd25519PublicKeySize);
  if (msg.data.size() == 96 && !constant_time_equal(pub, msg.data.subspan(64, 32))) {
    return corrupt("PrivateKey: legacy form with two different public keys");
  }
  NOLOCO_ASSIGN_OR_RETURN(Identity id, from_seed(msg.data.first(kEd25519SeedSize)));
  if (!constant_time_equal(id.public_key(), pub)) return corrupt("PrivateKey: public key does not match the seed");
  return id;
}

Bytes Identity::private_key_protobuf() const {
  pb::Writer w;
  w.add_varint(1, static_cast<uint64_t>(KeyType::kEd25519));
  w.add_bytes(2, secret_key_);
  return w.take();
}

Bytes Identity::sign(ByteView message) const {
  Bytes sig(kEd25519SignatureSize);
  crypto_sign_detached(sig.data(), nullptr, nonnull(message), message.size(), secret_key_.data());
  return sig;
}

bool Identity::verify(ByteView public_key, ByteView message, ByteView signature) {
  if (!ensure_sodium().ok()) return false;
  if (signature.size() != kEd25519SignatureSize) return false;
  Bytes raw;
  if (public_key.size() == kEd25519PublicKeySize) {
    raw.assign(public_key.begin(), public_key.end());
  } else {
    auto parsed = unmarshal_ed25519_public_key(public_key);
    if (!parsed.ok()) return false;
    raw = std::move(*parsed);
  }
  return crypto_sign_verify_detached(signature.data(), nonnull(message), message.size(), raw.data()) == 0;
}

}  // namespace noloco::p2p

size_t std::hash<noloco::p2p::PeerId>::operator()(const noloco::p2p::PeerId& id) const noexcept {
  return static_cast<size_t>(noloco::xxh3_64(id.bytes()));
}
