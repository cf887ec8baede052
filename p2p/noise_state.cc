#include "p2p/noise_state.h"

#include <sodium.h>

#include <cstring>

#include "p2p/identity.h"

namespace noloco::p2p::noise {

namespace {

// libsodium declares its pointer arguments nonnull even for zero lengths; an empty span may
// hold a null pointer, so hand it a valid address instead.
const uint8_t* nonnull(ByteView v) {
  static const uint8_t kEmpty = 0;
  return v.empty() ? &kEmpty : v.data();
}

Hash sha256_of(ByteView a, ByteView b) {
  crypto_hash_sha256_state st;
  crypto_hash_sha256_init(&st);
  crypto_hash_sha256_update(&st, nonnull(a), a.size());
  crypto_hash_sha256_update(&st, nonnull(b), b.size());
  Hash out;
  crypto_hash_sha256_final(&st, out.data());
  return out;
}

// The 96-bit ChaChaPoly nonce (Noise spec 12.3): 32 bits of zeros, then n little-endian.
std::array<uint8_t, crypto_aead_chacha20poly1305_IETF_NPUBBYTES> chachapoly_nonce(uint64_t n) {
  std::array<uint8_t, crypto_aead_chacha20poly1305_IETF_NPUBBYTES> nonce{};
  for (int i = 0; i < 8; ++i) nonce[4 + i] = static_cast<uint8_t>(n >> (8 * i));
  return nonce;
}

}  // namespace

// ---- HMAC / HKDF (Noise spec 4.3) ----

Hash hmac_sha256(ByteView key, ByteView data) {
  crypto_auth_hmacsha256_state st;
  crypto_auth_hmacsha256_init(&st, nonnull(key), key.size());
  crypto_auth_hmacsha256_update(&st, nonnull(data), data.size());
  Hash out;
  crypto_auth_hmacsha256_final(&st, out.data());
  sodium_memzero(&st, sizeof st);
  return out;
}

static void hkdf_n(ByteView chaining_key, ByteView ikm, int n, Hash* outs[3]) {
  Hash temp_key = hmac_sha256(chaining_key, ikm);
  Bytes block;
  for (int i = 0; i < n; ++i) {
    block.clear();
    if (i > 0) append(block, *outs[i - 1]);
    block.push_back(static_cast<uint8_t>(i + 1));
    *outs[i] = hmac_sha256(temp_key, block);
  }
  sodium_memzero(temp_key.data(), temp_key.size());
  sodium_memzero(block.data(), block.size());
}

void hkdf2(ByteView chaining_key, ByteView ikm, Hash& out1, Hash& out2) {
  Hash* outs[3] = {&out1, &out2, nullptr};
  hkdf_n(chaining_key, ikm, 2, outs);
}

void hkdf3(ByteView chaining_key, ByteView ikm, Hash& out1, Hash& out2, Hash& out3) {
  Hash* outs[3] = {&out1, &out2, &out3};
  hkdf_n(chaining_key, ikm, 3, outs);
}

// ---- DH ----

DhKeyPair DhKeyPair::from_private(const Key& private_key) {
  (void)ensure_sodium();
  DhKeyPair kp;
  kp.private_key = private_key;
  crypto_scalarmult_base(kp.public_key.data(), kp.private_key.data());
  return kp;
}

DhKeyPair DhKeyPair::generate() {
  (void)ensure_sodium();
  Key priv;
  randombytes_buf(priv.data(), priv.size());
  DhKeyPair kp = from_private(priv);
  sodium_memzero(priv.data(), priv.size());
  return kp;
}

// ---- CipherState (spec 5.1) ----

CipherState::~CipherState() { sodium_memzero(k_.data(), k_.size()); }

void CipherState::initialize_key(const Key& k) {
  k_ = k;
  has_key_ = true;
  n_ = 0;
}

Status CipherState::encrypt_with_ad(ByteView ad, ByteView plaintext, Bytes& out) {
  if (!has_key_) {
    append(out, plaintext);
    return Status::Ok();
  }
  const size_t base = out.size();
  out.resize(base + plaintext.size() + kTagLen);
  Status s = encrypt_to(ad, plaintext, out.data() + base);
  if (!s.ok()) out.resize(base);
  return s;
}

Status CipherState::encrypt_to(ByteView ad, ByteView plaintext, uint8_t* out) {
  if (!has_key_) return internal_error("noise: encrypt_to without a key");
  if (n_ > kMaxNonce) return Status(StatusCode::kUnavailable, "noise: send nonce exhausted");
  auto nonce = chachapoly_nonce(n_);
  unsigned long long clen = 0;
  crypto_aead_chacha20poly1305_ietf_encrypt(out, &clen, nonnull(plaintext), plaintext.size(), nonnull(ad), ad.size(),
                                            nullptr, nonce.data(), k_.data());
  ++n_;
  return Status::Ok();
}

Status CipherState::decrypt_with_ad(ByteView ad, ByteView ciphertext, Bytes& out) {
  if (!has_key_) {
    append(out, ciphertext);
    return Status::Ok();
  }
  if (n_ > kMaxNonce) return Status(StatusCode::kUnavailable, "noise: receive nonce exhausted");
  if (ciphertext.size() < kTagLen) return corrupt("noise: ciphertext shorter than its tag");
  auto nonce = chachapoly_nonce(n_);
  size_t base = out.size();
  out.resize(base + ciphertext.size() - kTagLen);
  unsigned long long mlen = 0;
  if (crypto_aead_chacha20poly1305_ietf_decrypt(out.data() + base, &mlen, nullptr, ciphertext.data(), ciphertext.size(),
                                                nonnull(ad), ad.size(), nonce.data(), k_.data()) != 0) {
    out.resize(base);
    return corrupt("noise: message failed authentication");
  }
  ++n_;
  return Status::Ok();
}

Status CipherState::decrypt_in_place(ByteView ad, std::span<uint8_t> message) {
  if (!has_key_) return internal_error("noise: decrypt_in_place without a key");
  if (n_ > kMaxNonce) return Status(StatusCode::kUnavailable, "noise: receive nonce exhausted");
  if (message.size() < kTagLen) return corrupt("noise: ciphertext shorter than its tag");
  auto nonce = chachapoly_nonce(n_);
  unsigned long long mlen = 0;
  // libsodium checks the tag before it decrypts and allows m == c.
  if (crypto_aead_chacha20poly1305_ietf_decrypt(message.data(), &mlen, nullptr, message.data(), message.size(),
                                                nonnull(ad), ad.size(), nonce.data(), k_.data()) != 0) {
    return corrupt("noise: message failed authentication");
  }
  ++n_;
  return Status::Ok();
}

// ---- SymmetricState (spec 5.2) ----

SymmetricState::SymmetricState(std::string_view protocol_name) {
  if (protocol_name.size() <= kHashLen) {
    h_.fill(0);
    std::memcpy(h_.data(), protocol_name.data(), protocol_name.size());
  } else {
    h_ = sha256_of(as_bytes(protocol_name), {});
  }
  ck_ = h_;
}

void SymmetricState::mix_key(ByteView ikm) {
  Hash temp_k;
  hkdf2(ck_, ikm, ck_, temp_k);
  cipher_.initialize_key(temp_k);
  sodium_memzero(temp_k.data(), temp_k.size());
}

void SymmetricState::mix_hash(ByteView data) { h_ = sha256_of(h_, data); }

Status SymmetricState::encrypt_and_hash(ByteView plaintext, Bytes& out) {
  size_t base = out.size();
  NOLOCO_RETURN_IF_ERROR(cipher_.encrypt_with_ad(h_, plaintext, out));
  mix_hash(ByteView(out).subspan(base));
  return Status::Ok();
}

Status SymmetricState::decrypt_and_hash(ByteView ciphertext, Bytes& out) {
  NOLOCO_RETURN_IF_ERROR(cipher_.decrypt_with_ad(h_, ciphertext, out));
  mix_hash(ciphertext);
  return Status::Ok();
}

void SymmetricState::split(CipherState& c1, CipherState& c2) const {
  Hash k1, k2;
  hkdf2(ck_, {}, k1, k2);
  c1.initialize_key(k1);
  c2.initialize_key(k2);
  sodium_memzero(k1.data(), k1.size());
  sodium_memzero(k2.data(), k2.size());
}

// ---- HandshakeState (spec 5.3), XX only ----

HandshakeStateXX::HandshakeStateXX(bool initiator, ByteView prologue, const DhKeyPair& static_keys,
                                   std::optional<DhKeyPair> fixed_ephemeral)
    : initiator_(initiator), ss_(kProtocolName), s_(static_keys) {
  if (fixed_ephemeral) {
    e_ = *fixed_ephemeral;
    e_fixed_ = true;
  }
  ss_.mix_hash(prologue);  // XX has no pre-messages
}

Status HandshakeStateXX::dh(const Key& priv, const Key& pub, Key& out) const {
  // libsodium refuses a low-order remote point (all-zero shared secret); the Noise spec
  // allows rejecting it, and doing so stops a peer from forcing a known key.
  if (crypto_scalarmult(out.data(), priv.data(), pub.data()) != 0) return protocol_error("noise: invalid DH public key");
  return Status::Ok();
}

Status HandshakeStateXX::write_message(ByteView payload, Bytes& out) {
  if (!my_turn()) return internal_error("noise: write_message out of turn");
  Key shared;
  switch (index_) {
    case 0:  // -> e
      if (!e_fixed_) e_ = DhKeyPair::generate();
      append(out, e_.public_key);
      ss_.mix_hash(e_.public_key);
      break;
    case 1:  // <- e, ee, s, es   (we are the responder)
      if (!e_fixed_) e_ = DhKeyPair::generate();
      append(out, e_.public_key);
      ss_.mix_hash(e_.public_key);
      NOLOCO_RETURN_IF_ERROR(dh(e_.private_key, re_, shared));
      ss_.mix_key(shared);
      NOLOCO_RETURN_IF_ERROR(ss_.encrypt_and_hash(s_.public_key, out));
      NOLOCO_RETURN_IF_ERROR(dh(s_.private_key, re_, shared));  // es, responder side
      ss_.mix_key(shared);
      break;
    case 2:  // -> s, se   (we are the initiator)
      NOLOCO_RETURN_IF_ERROR(ss_.encrypt_and_hash(s_.public_key, out));
      NOLOCO_RETURN_IF_ERROR(dh(s_.private_key, re_, shared));  // se, initiator side
      ss_.mix_key(shared);
      break;
  }
  sodium_memzero(shared.data(), shared.size());
  NOLOCO_RETURN_IF_ERROR(ss_.encrypt_and_hash(payload, out));
  ++index_;
  return Status::Ok();
}

Status HandshakeStateXX::read_message(ByteView message, Bytes& payload_out) {
  if (complete() || my_turn()) return internal_error("noise: read_message out of turn");
  Key shared;
  size_t pos = 0;
  auto take = [&](size_t n, ByteView& part) -> Status {
    if (message.size() - pos < n) return protocol_error("noise: handshake message too short");
    part = message.subspan(pos, n);
    pos += n;
    return Status::Ok();
  };
  ByteView part;
  Bytes decrypted;
  switch (index_) {
    case 0:  // -> e   (we are the responder)
      NOLOCO_RETURN_IF_ERROR(take(kDhLen, part));
      std::memcpy(re_.data(), part.data(), kDhLen);
      ss_.mix_hash(re_);
      break;
    case 1:  // <- e, ee, s, es   (we are the initiator)
      NOLOCO_RETURN_IF_ERROR(take(kDhLen, part));
      std::memcpy(re_.data(), part.data(), kDhLen);
      ss_.mix_hash(re_);
      NOLOCO_RETURN_IF_ERROR(dh(e_.private_key, re_, shared));
      ss_.mix_key(shared);
      NOLOCO_RETURN_IF_ERROR(take(kDhLen + kTagLen, part));
      NOLOCO_RETURN_IF_ERROR(ss_.decrypt_and_hash(part, decrypted));
      std::memcpy(rs_.data(), decrypted.data(), kDhLen);
      NOLOCO_RETURN_IF_ERROR(dh(e_.private_key, rs_, shared));  // es, initiator side
      ss_.mix_key(shared);
      break;
    case 2:  // -> s, se   (we are the responder)
      NOLOCO_RETURN_IF_ERROR(take(kDhLen + kTagLen, part));
      NOLOCO_RETURN_IF_ERROR(ss_.decrypt_and_hash(part, decrypted));
      std::memcpy(rs_.data(), decrypted.data(), kDhLen);
      NOLOCO_RETURN_IF_ERROR(dh(e_.private_key, rs_, shared));  // se, responder side
      ss_.mix_key(shared);
      break;
  }
  sodium_memzero(shared.data(), shared.size());
  NOLOCO_RETURN_IF_ERROR(ss_.decrypt_and_hash(message.subspan(pos), payload_out));
  ++index_;
  return Status::Ok();
}

}  // namespace noloco::p2p::noise
