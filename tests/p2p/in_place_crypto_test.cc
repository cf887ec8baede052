// The copy-free paths of the secure channel: sealing into caller memory, decrypting where the
// bytes lie (Noise and pnet), and the reusable send buffer. Each is checked against the
// vector-appending path it replaces, and for the same failure behaviour.
#include <catch2/catch.hpp>

#include <vector>

#include "p2p/noise.h"
#include "p2p/pnet.h"
#include "p2p/send_buffer.h"

using namespace noloco;
using namespace noloco::p2p;

namespace {

Bytes pattern(size_t n, uint8_t seed) {
  Bytes b(n);
  for (size_t i = 0; i < n; ++i) b[i] = static_cast<uint8_t>(i * 131 + seed);
  return b;
}

// A finished handshake's two transports: initiator -> responder.
struct Channel {
  std::optional<NoiseTransport> tx, rx;
  Channel() {
    Identity a = *Identity::generate();
    Identity b = *Identity::generate();
    NoiseHandshake i(NoiseRole::kInitiator, a, b.peer_id());
    NoiseHandshake r(NoiseRole::kResponder, b);
    for (int k = 0; k < 4; ++k) {
      REQUIRE(r.feed(i.take_output()).ok());
      REQUIRE(i.feed(r.take_output()).ok());
    }
    REQUIRE(i.done());
    REQUIRE(r.done());
    tx.emplace(*i.take_transport());
    rx.emplace(*r.take_transport());
  }
};

Bytes concat(const std::vector<ByteView>& parts) {
  Bytes out;
  for (ByteView p : parts) append(out, p);
  return out;
}

}  // namespace

TEST_CASE("CipherState encrypt_to and decrypt_in_place match the appending calls", "[noise][in-place]") {
  noise::Key k{};
  k[3] = 9;
  noise::CipherState a, b, c, d;
  a.initialize_key(k);
  b.initialize_key(k);
  c.initialize_key(k);
  d.initialize_key(k);
  const Bytes ad = pattern(7, 1);
  for (size_t n : {size_t{0}, size_t{1}, size_t{63}, size_t{64}, size_t{65}, size_t{1000}, kMaxNoisePlaintext}) {
    const Bytes msg = pattern(n, static_cast<uint8_t>(n));
    Bytes expected;
    REQUIRE(a.encrypt_with_ad(ad, msg, expected).ok());
    // In place: the plaintext followed by room for the tag.
    Bytes buf = msg;
    buf.resize(n + noise::kTagLen);
    REQUIRE(b.encrypt_to(ad, ByteView(buf).first(n), buf.data()).ok());
    CHECK(buf == expected);
    Bytes plain;
    REQUIRE(c.decrypt_with_ad(ad, expected, plain).ok());
    REQUIRE(d.decrypt_in_place(ad, buf).ok());
    CHECK(Bytes(buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(n)) == msg);
    CHECK(plain == msg);
  }
  CHECK(b.nonce() == a.nonce());
  CHECK(d.nonce() == c.nonce());

  // A flipped bit: refused, the nonce stays, the genuine message still opens.
  Bytes ct;
  REQUIRE(a.encrypt_with_ad({}, as_bytes("payload"), ct).ok());
  Bytes bad = ct;
  bad[1] ^= 0x20;
  const uint64_t before = d.nonce();
  CHECK(d.decrypt_in_place({}, bad).code() == StatusCode::kCorrupt);
  CHECK(d.nonce() == before);
  REQUIRE(d.decrypt_in_place({}, ct).ok());
  CHECK(to_string(ByteView(ct).first(7)) == "payload");
  Bytes short_one(5, 0);
  CHECK(d.decrypt_in_place({}, short_one).code() == StatusCode::kCorrupt);  // shorter than a tag

  // The nonce never wraps on this path either.
  b.set_nonce(UINT64_MAX);
  Bytes out(1 + noise::kTagLen);
  CHECK(b.encrypt_to({}, as_bytes("x"), out.data()).code() == StatusCode::kUnavailable);
  d.set_nonce(UINT64_MAX);
  CHECK(d.decrypt_in_place({}, ct).code() == StatusCode::kUnavailable);
  noise::CipherState keyless;
  CHECK_FALSE(keyless.encrypt_to({}, as_bytes("x"), out.data()).ok());
}

TEST_CASE("Noise encrypt_to writes the same frames as encrypt_into", "[noise][in-place]") {
  Channel ch;
  NoiseTransport twin = *ch.tx;  // same keys and nonce
  for (size_t n : {size_t{0}, size_t{1}, kMaxNoisePlaintext, kMaxNoisePlaintext + 1, size_t{200000}}) {
    const Bytes msg = pattern(n, 3);
    Bytes expected;
    REQUIRE(ch.tx->encrypt_into(msg, expected).ok());
    REQUIRE(NoiseTransport::sealed_size(n) == expected.size());
    Bytes out(expected.size(), 0xEE);
    REQUIRE(twin.encrypt_to(msg, out).ok());
    CHECK(out == expected);
  }
  Bytes wrong(10);
  CHECK_FALSE(twin.encrypt_to(as_bytes("abc"), wrong).ok());  // size must be sealed_size

  // Two frames needed, one nonce left: nothing written, the transport is dead.
  twin.set_nonces_for_test(noise::kMaxNonce, 0);
  Bytes big(NoiseTransport::sealed_size(70000), 0xEE);
  CHECK(twin.encrypt_to(Bytes(70000, 1), big).code() == StatusCode::kUnavailable);
  CHECK(big == Bytes(big.size(), 0xEE));
  CHECK(twin.failed());
}

TEST_CASE("Noise decrypt_in_place gives every frame's plaintext across any split", "[noise][in-place]") {
  Channel ch;
  Bytes wire;
  Bytes want;
  for (size_t n : {size_t{5}, size_t{70000}, size_t{1}, kMaxNoisePlaintext, size_t{300}}) {
    const Bytes msg = pattern(n, static_cast<uint8_t>(n));
    REQUIRE(ch.tx->encrypt_into(msg, wire).ok());
    append(want, msg);
  }
  for (size_t piece : {size_t{1}, size_t{2}, size_t{3}, size_t{7777}, size_t{65537}, size_t{65538}, wire.size()}) {
    INFO("piece " << piece);
    NoiseTransport rx = *ch.rx;
    Bytes got;
    bool all_ok = true;
    for (size_t off = 0; off < wire.size() && all_ok; off += piece) {
      Bytes chunk(wire.begin() + static_cast<std::ptrdiff_t>(off),
                  wire.begin() + static_cast<std::ptrdiff_t>(std::min(off + piece, wire.size())));
      std::vector<ByteView> parts;
      all_ok = rx.decrypt_in_place(chunk, parts).ok();
      append(got, concat(parts));  // the views are used before the next call, as documented
    }
    CHECK(all_ok);
    CHECK(got == want);
  }
}

TEST_CASE("Noise decrypt_in_place: a flipped bit anywhere in a read yields nothing of it", "[noise][in-place]") {
  Channel ch;
  Bytes f1 = *ch.tx->encrypt_frame(as_bytes("first"));
  Bytes f2 = *ch.tx->encrypt_frame(as_bytes("second"));
  Bytes f3 = *ch.tx->encrypt_frame(as_bytes("third"));
  NoiseTransport rx = *ch.rx;
  std::vector<ByteView> parts;
  parts.push_back(as_bytes("kept"));  // what the caller had before stays as it was
  Bytes read = f1;
  append(read, f2);
  read[f1.size() + 4] ^= 0x01;  // inside frame 2, after a good frame 1 in the same read
  append(read, f3);
  CHECK(rx.decrypt_in_place(read, parts).code() == StatusCode::kCorrupt);
  REQUIRE(parts.size() == 1);
  CHECK(to_string(parts[0]) == "kept");
  CHECK(rx.failed());
  Bytes again = f3;
  CHECK_FALSE(rx.decrypt_in_place(again, parts).ok());
  CHECK(parts.size() == 1);

  // The same when the bad frame is the one completed from an earlier partial read.
  NoiseTransport rx2 = *ch.rx;
  std::vector<ByteView> p2;
  Bytes head(f1.begin(), f1.begin() + 3);
  REQUIRE(rx2.decrypt_in_place(head, p2).ok());
  CHECK(p2.empty());
  Bytes tail(f1.begin() + 3, f1.end());
  tail.back() ^= 0x80;  // the tag
  CHECK(rx2.decrypt_in_place(tail, p2).code() == StatusCode::kCorrupt);
  CHECK(p2.empty());
  CHECK(rx2.failed());
}

TEST_CASE("pnet in place matches the copying calls", "[pnet][in-place]") {
  Psk key{};
  key.fill(4);
  PnetNonce na{}, nb{};
  na.fill(1);
  nb.fill(2);
  PnetCodec copying(key, na), in_place(key, na);
  Bytes early(3);
  CHECK_FALSE(in_place.encrypt_in_place(early).ok());  // the nonce must go out first
  const Bytes nonce = copying.take_output();
  CHECK(in_place.take_output() == nonce);
  PnetCodec rx_copying(key, nb), rx_in_place(key, nb);
  Bytes wire = nonce;
  for (size_t n : {size_t{1}, size_t{63}, size_t{64}, size_t{1000}, size_t{100}}) {
    const Bytes msg = pattern(n, 9);
    const Bytes expected = copying.encrypt(msg);
    Bytes buf = msg;
    REQUIRE(in_place.encrypt_in_place(buf).ok());
    CHECK(buf == expected);
    append(wire, buf);
  }
  // Decrypt in odd pieces, the first of which splits the remote nonce.
  Bytes plain_copying, plain_in_place;
  for (size_t off = 0; off < wire.size(); off += 13) {
    Bytes piece(wire.begin() + static_cast<std::ptrdiff_t>(off),
                wire.begin() + static_cast<std::ptrdiff_t>(std::min(off + 13, wire.size())));
    rx_copying.decrypt(piece, plain_copying);
    append(plain_in_place, rx_in_place.decrypt_in_place(piece));
  }
  CHECK(rx_in_place.remote_nonce_received());
  CHECK(plain_in_place == plain_copying);
  CHECK(plain_in_place.size() == wire.size() - kPnetNonceSize);
}

TEST_CASE("SendBuffer reuses its storage and only commits what was written", "[in-place]") {
  SendBuffer b;
  CHECK(b.empty());
  auto w = b.prepare(100);
  REQUIRE(w.size() == 100);
  std::fill(w.begin(), w.end(), uint8_t{7});
  b.commit(60);  // only part of it
  b.append(as_bytes("xyz"));
  REQUIRE(b.size() == 63);
  CHECK(b.view()[59] == 7);
  CHECK(to_string(b.view().subspan(60)) == "xyz");
  const uint8_t* storage = b.view().data();
  b.clear();
  CHECK(b.empty());
  auto again = b.prepare(63);
  CHECK(again.data() == storage);  // same storage, nothing reallocated
  b.commit(0);
  CHECK(b.empty());
}
