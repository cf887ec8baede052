#include <catch2/catch.hpp>

#include <vector>

#include "common/encoding.h"
#include "p2p/noise.h"

using namespace noloco;
using namespace noloco::p2p;

static Bytes hex(std::string_view h) { return *hex_decode(h); }
static noise::Key key(std::string_view h) {
  noise::Key k;
  Bytes b = hex(h);
  REQUIRE(b.size() == k.size());
  std::copy(b.begin(), b.end(), k.begin());
  return k;
}

// ---- HMAC / HKDF against published vectors ----

TEST_CASE("HMAC-SHA256: RFC 4231 test case 1", "[noise][vectors]") {
  noise::Hash mac = noise::hmac_sha256(Bytes(20, 0x0b), as_bytes("Hi There"));
  CHECK(hex_encode(mac) == "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");
}

TEST_CASE("Noise HKDF equals RFC 5869 HKDF-SHA256 with empty info (test case 3)", "[noise][vectors]") {
  // RFC 5869 A.3: IKM = 22 x 0x0b, salt and info empty, L = 42.
  // PRK = 19ef24a3..., OKM = 8da4e775...96c8. Noise's HKDF uses the chaining key as the salt,
  // so output1 || output2 are T(1) || T(2), whose first 42 bytes are the OKM.
  Bytes ikm(22, 0x0b);
  CHECK(hex_encode(noise::hmac_sha256({}, ikm)) == "19ef24a32c717b167f33a91d6f648bdf96596776afdb6377ac434c1c293ccb04");
  noise::Hash o1, o2, o3;
  noise::hkdf2({}, ikm, o1, o2);
  Bytes okm(o1.begin(), o1.end());
  okm.insert(okm.end(), o2.begin(), o2.begin() + 10);
  CHECK(hex_encode(okm) == "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8");
  noise::Hash p1, p2;
  noise::hkdf3({}, ikm, p1, p2, o3);
  CHECK(p1 == o1);
  CHECK(p2 == o2);
  CHECK(o3 != o2);
}

// ---- Noise_XX_25519_ChaChaPoly_SHA256 published vectors ----

namespace {
struct Vector {
  const char* source;
  const char* prologue;
  const char* init_static;
  const char* init_ephemeral;
  const char* resp_static;
  const char* resp_ephemeral;
  const char* handshake_hash;  // empty when the file does not give one
  std::vector<std::pair<const char*, const char*>> messages;  // payload, ciphertext
};

const Vector kVectors[] = {
    {// cacophony vectors (haskell-cryptography/cacophony vectors/cacophony.txt), as copied in
     // github.com/mcginty/snow tests/vectors/cacophony.txt, "Noise_XX_25519_ChaChaPoly_SHA256".
     "cacophony",
     "4a6f686e2047616c74",
     "e61ef9919cde45dd5f82166404bd08e38bceb5dfdfded0a34c8df7ed542214d1",
     "893e28b9dc6ca8d611ab664754b8ceb7bac5117349a4439a6b0569da977c464a",
     "4a3acbfdb163dec651dfa3194dece676d437029c62a408b4c5ea9114246e4893",
     "bbdb4cdbd309f1a1f2e1456967fe288cadd6f712d65dc7b7793d5e63da6b375b",
     "c8e5f64e846193be2a834104c2a009868d6c9f3bd3c186299888b488b2f1f58e",
     {{"4c756477696720766f6e204d69736573",
       "ca35def5ae56cec33dc2036731ab14896bc4c75dbb07a61f879f8e3afa4c79444c756477696720766f6e204d69736573"},
      {"4d757272617920526f746862617264",
       "95ebc60d2b1fa672c1f46a8aa265ef51bfe38e7ccb39ec5be34069f14480884381cbad1f276e038c48378ffce2b65285e08d6b68aaa3629a"
       "5a8639392490e5b9bd5269c2f1e4f488ed8831161f19b7815528f8982ffe09be9b5c412f8a0db50f8814c7194e83f23dbd8d162c9326ad"},
      {"462e20412e20486179656b",
       "c7195ffacac1307ff99046f219750fc47693e23c3cb08b89c2af808b444850a80ae475b9df0f169ae80a89be0865b57f58c9fea0d4ec82a2"
       "86427402f113e4b6ae769a1d95941d49b25030"},
      {"4361726c204d656e676572", "96763ed773f8e47bb3712f0e29b3060ffc956ffc146cee53d5e1df"},
      {"4a65616e2d426170746973746520536179", "3e40f15f6f3a46ae446b253bf8b1d9ffb6ed9b174d272328ff91a7e2e5c79c07f5"},
      {"457567656e2042f6686d20766f6e2042617765726b",
       "eb3f3515110702e047a6c9da4478b6ead94873c11c0f2d710ddb3f09fce024b3a58502ae3f"}}},
    {// snow's own vectors: github.com/mcginty/snow tests/vectors/snow.txt,
     // "Noise_XX_25519_ChaChaPoly_SHA256" (no handshake_hash given).
     "snow",
     "5468657265206973206e6f20726967687420616e642077726f6e672e2054686572652773206f6e6c792066756e20616e6420626f72696e672e",
     "7dec208517a3b81a2861d7a71266d5d6dc944c5a8816634a86fe63198a0148ee",
     "a32daf21e93c0131495ce1d903181fde81cc46937daaeb990bae7c992709421e",
     "4d0aed5098e3b4ef20357e9f686ce66204c792b358da2e475017d6c485304881",
     "4eece0f195d026db035ff987597c429d3ad3bcc2944df37d649528951b2a27c5",
     "",
     {{"d03c489139e645d0711a3c9e810d776b46a84912463fafa87b884eebf242dc34",
       "f9fa868ba97ab8a2686deccfaad5a484ee10a5bb85e3d1dce015a84797f92818d03c489139e645d0711a3c9e810d776b46a84912463fafa8"
       "7b884eebf242dc34"},
      {"d8190a92f7dc0c93dbea9118ba8055751fb7c6590c416ffbd419964132b99a85",
       "8c4e6fdb7d09d501a86f7eca5c234522751706ed409182c05cdf5f827d4dae47b81c6c5f43b025692c24391eefee725c17d8cb0fbe3e4abb"
       "8aedf42c4fd2592d4ea48ac08989d6ae8b4adae08b2c34087c808c7aa55a63c02b0fab9e930612336bd43eaea04d3c670a0a146691aa9cc9"
       "d357872320dc735dbc48580cffb553db"},
      {"77891b19dcb92ef7c055b672c4a5aa7fdf1c84146b8b303459022729473ce254",
       "933ca6b5ed60df3df66121f0ab49a09e49efa45c613a86a3cecbf4c535cef2f83f72b42837b18e3572f2fdc2b74c331e2368a545cef54bdc"
       "a081678ab0e9dd5348122459e0c034c851984d88ce610963d43cde6cfe73a67fbd5a63e8bfca96d0"},
      {"d7efdf988072881941db045a42882433817555128fbf5663e56081712ec7d212",
       "54ef0ff0629e1aaa7685a2806ab111cba76b52331f2642276736f415868eacb69ab2577f3bda0cbf72f879685f6ed25f"},
      {"dd7bf01a588bafb52c6cfba952e5d8fe35cc2b3f92b4730ae2474615157345ce",
       "356be70f110306d5c699bb834bb9d58d909e325924dfbec972e406e6f294dc63e1daebefe8a62a334facc8048ab4ad66"}}},
};
}  // namespace

TEST_CASE("Noise_XX_25519_ChaChaPoly_SHA256 published vectors, byte for byte", "[noise][vectors]") {
  for (const auto& v : kVectors) {
    INFO("vector source: " << v.source);
    Bytes prologue = hex(v.prologue);
    noise::HandshakeStateXX init(true, prologue, noise::DhKeyPair::from_private(key(v.init_static)),
                                 noise::DhKeyPair::from_private(key(v.init_ephemeral)));
    noise::HandshakeStateXX resp(false, prologue, noise::DhKeyPair::from_private(key(v.resp_static)),
                                 noise::DhKeyPair::from_private(key(v.resp_ephemeral)));
    noise::CipherState i_send, i_recv, r_send, r_recv;
    // Messages alternate initiator, responder, initiator, ... (the vector format's rule);
    // the first three are the XX handshake, the rest transport messages.
    for (size_t i = 0; i < v.messages.size(); ++i) {
      INFO("message " << i);
      Bytes payload = hex(v.messages[i].first);
      Bytes expected = hex(v.messages[i].second);
      bool from_initiator = i % 2 == 0;
      Bytes wire, got;
      if (i < 3) {
        auto& writer = from_initiator ? init : resp;
        auto& reader = from_initiator ? resp : init;
        REQUIRE(writer.write_message(payload, wire).ok());
        CHECK(hex_encode(wire) == hex_encode(expected));
        REQUIRE(reader.read_message(wire, got).ok());
        CHECK(got == payload);
        if (i == 2) {
          REQUIRE(init.complete());
          REQUIRE(resp.complete());
          CHECK(init.handshake_hash() == resp.handshake_hash());
          if (*v.handshake_hash) CHECK(hex_encode(init.handshake_hash()) == v.handshake_hash);
          init.split(i_send, i_recv);  // c1: initiator -> responder
          resp.split(r_recv, r_send);
        }
      } else {
        auto& sender = from_initiator ? i_send : r_send;
        auto& receiver = from_initiator ? r_recv : i_recv;
        REQUIRE(sender.encrypt_with_ad({}, payload, wire).ok());
        CHECK(hex_encode(wire) == hex_encode(expected));
        REQUIRE(receiver.decrypt_with_ad({}, wire, got).ok());
        CHECK(got == payload);
      }
    }
  }
}

TEST_CASE("CipherState: failed decrypt leaves the nonce, 2^64-1 is never used", "[noise]") {
  noise::CipherState a, b;
  noise::Key k{};
  k[0] = 1;
  a.initialize_key(k);
  b.initialize_key(k);
  Bytes ct;
  REQUIRE(a.encrypt_with_ad({}, as_bytes("hello"), ct).ok());
  Bytes bad = ct;
  bad[2] ^= 0x10;
  Bytes out;
  CHECK(b.decrypt_with_ad({}, bad, out).code() == StatusCode::kCorrupt);
  CHECK(out.empty());
  CHECK(b.nonce() == 0);
  REQUIRE(b.decrypt_with_ad({}, ct, out).ok());
  CHECK(to_string(out) == "hello");

  a.set_nonce(noise::kMaxNonce);  // 2^64-2: the last usable nonce
  Bytes last;
  REQUIRE(a.encrypt_with_ad({}, as_bytes("x"), last).ok());
  CHECK(a.nonce() == UINT64_MAX);
  Bytes more;
  CHECK(a.encrypt_with_ad({}, as_bytes("y"), more).code() == StatusCode::kUnavailable);
  CHECK(more.empty());
  CHECK(a.nonce() == UINT64_MAX);  // did not wrap to 0
}

// ---- libp2p Noise handshake ----

namespace {
struct Pair {
  Identity a = *Identity::generate();
  Identity b = *Identity::generate();
};

// Moves bytes between two handshakes until neither has output; true if both finished.
bool run_handshake(NoiseHandshake& i, NoiseHandshake& r, bool bytewise = false) {
  for (int round = 0; round < 10; ++round) {
    Bytes to_r = i.take_output();
    Bytes to_i = r.take_output();
    if (to_r.empty() && to_i.empty()) break;
    if (bytewise) {
      for (uint8_t x : to_r) (void)r.feed(ByteView(&x, 1));
      for (uint8_t x : to_i) (void)i.feed(ByteView(&x, 1));
    } else {
      (void)r.feed(to_r);
      (void)i.feed(to_i);
    }
  }
  return i.done() && r.done();
}
}  // namespace

TEST_CASE("libp2p Noise handshake authenticates both peers and carries data both ways", "[noise]") {
  for (bool bytewise : {false, true}) {
    Pair p;
    NoiseHandshake init(NoiseRole::kInitiator, p.a, p.b.peer_id());
    NoiseHandshake resp(NoiseRole::kResponder, p.b);
    REQUIRE(run_handshake(init, resp, bytewise));
    CHECK(init.remote_peer_id() == p.b.peer_id());
    CHECK(resp.remote_peer_id() == p.a.peer_id());
    auto ti = init.take_transport();
    auto tr = resp.take_transport();
    REQUIRE(ti.ok());
    REQUIRE(tr.ok());
    CHECK_FALSE(init.take_transport().ok());  // only once
    CHECK(ti->remote_peer_id() == p.b.peer_id());

    Bytes big(200000);
    for (size_t k = 0; k < big.size(); ++k) big[k] = static_cast<uint8_t>(k * 7);
    auto wire = ti->encrypt_frame(big);
    REQUIRE(wire.ok());
    // 200000 bytes need 4 frames of at most 65535 bytes each (plus 2 length bytes).
    CHECK(wire->size() == big.size() + 4 * (2 + 16));
    size_t pos = 0, frames = 0;
    while (pos < wire->size()) {
      size_t len = get_u16_be(wire->data() + pos);
      CHECK(len <= 65535);
      pos += 2 + len;
      ++frames;
    }
    CHECK(frames == 4);
    Bytes received;
    // Odd-sized pieces so frames and length prefixes straddle calls.
    for (size_t off = 0; off < wire->size(); off += 7777) {
      size_t n = std::min<size_t>(7777, wire->size() - off);
      REQUIRE(tr->decrypt_into(ByteView(*wire).subspan(off, n), received).ok());
    }
    CHECK(received == big);

    auto back = tr->encrypt_frame(as_bytes("pong"));
    REQUIRE(back.ok());
    auto got = ti->feed(*back);
    REQUIRE(got.ok());
    CHECK(to_string(*got) == "pong");
    CHECK(ti->encrypt_frame({})->empty());
  }
}

TEST_CASE("remote stream muxers from the extensions are exposed, absence is fine", "[noise]") {
  NoiseHandshakePayload p;
  p.identity_key = Bytes{1, 2};
  p.identity_sig = Bytes{3};
  p.stream_muxers = {"/yamux/1.0.0", "/mplex/6.7.0"};
  auto parsed = parse_noise_handshake_payload(encode_noise_handshake_payload(p));
  REQUIRE(parsed.ok());
  CHECK(parsed->stream_muxers == p.stream_muxers);
  CHECK(parsed->identity_key == p.identity_key);
  p.stream_muxers.clear();
  CHECK(parse_noise_handshake_payload(encode_noise_handshake_payload(p))->stream_muxers.empty());
  // Field 1 twice.
  CHECK_FALSE(parse_noise_handshake_payload(hex("0a01010a0102")).ok());
}

TEST_CASE("the dialled peer id is enforced", "[noise]") {
  Pair p;
  Identity other = *Identity::generate();
  NoiseHandshake init(NoiseRole::kInitiator, p.a, other.peer_id());
  NoiseHandshake resp(NoiseRole::kResponder, p.b);
  CHECK_FALSE(run_handshake(init, resp));
  CHECK(init.failed());
  CHECK(init.error().code() == StatusCode::kPermissionDenied);
  CHECK(init.error().message().find(p.b.peer_id().to_string()) != std::string::npos);
  CHECK_FALSE(init.take_transport().ok());
  CHECK_FALSE(resp.done());  // the initiator never sent message 3
}

TEST_CASE("a bad identity signature aborts the handshake", "[noise]") {
  // A hand-driven initiator that signs the wrong static key.
  Pair p;
  NoiseHandshake resp(NoiseRole::kResponder, p.b);
  noise::DhKeyPair s = noise::DhKeyPair::generate();
  noise::HandshakeStateXX hs(true, {}, s);
  Bytes m1;
  REQUIRE(hs.write_message({}, m1).ok());
  Bytes framed;
  put_u16_be(framed, static_cast<uint16_t>(m1.size()));
  append(framed, m1);
  REQUIRE(resp.feed(framed).ok());
  Bytes m2 = resp.take_output();
  Bytes payload2;
  REQUIRE(hs.read_message(ByteView(m2).subspan(2), payload2).ok());

  NoiseHandshakePayload forged;
  forged.identity_key = p.a.public_key_protobuf();
  Bytes wrong = to_bytes(kNoiseSignaturePrefix);
  append(wrong, noise::DhKeyPair::generate().public_key);  // not our static key
  forged.identity_sig = p.a.sign(wrong);
  Bytes m3;
  REQUIRE(hs.write_message(encode_noise_handshake_payload(forged), m3).ok());
  framed.clear();
  put_u16_be(framed, static_cast<uint16_t>(m3.size()));
  append(framed, m3);
  Status st = resp.feed(framed);
  CHECK(st.code() == StatusCode::kPermissionDenied);
  CHECK(resp.failed());
  CHECK_FALSE(resp.done());
  CHECK(resp.take_output().empty());
}

TEST_CASE("Noise handshake refuses garbage and oversized messages", "[noise]") {
  Pair p;
  SECTION("garbage instead of message 2") {
    NoiseHandshake init(NoiseRole::kInitiator, p.a);
    (void)init.take_output();
    Bytes garbage = {0x00, 0x60};
    for (int k = 0; k < 0x60; ++k) garbage.push_back(static_cast<uint8_t>(k * 37 + 1));
    CHECK_FALSE(init.feed(garbage).ok());
    CHECK(init.failed());
    CHECK(init.take_output().empty());
  }
  SECTION("message 1 too short") {
    NoiseHandshake resp(NoiseRole::kResponder, p.b);
    Bytes m = {0x00, 0x05, 1, 2, 3, 4, 5};
    CHECK(resp.feed(m).code() == StatusCode::kProtocolError);
  }
  SECTION("a length over the cap is refused before the body arrives") {
    NoiseHandshake resp(NoiseRole::kResponder, p.b);
    Bytes m = {0xff, 0xff};
    CHECK(resp.feed(m).code() == StatusCode::kTooLarge);
    CHECK(resp.feed(Bytes(10, 0)).code() == StatusCode::kTooLarge);  // terminal
  }
  SECTION("plaintext protocol text instead of Noise") {
    NoiseHandshake resp(NoiseRole::kResponder, p.b);
    CHECK(resp.feed(as_bytes("GET / HTTP/1.1\r\nHost: x\r\n\r\n")).code() == StatusCode::kTooLarge);  // "GE" = 0x4745
  }
}

TEST_CASE("a flipped bit in a transport message kills the session", "[noise]") {
  Pair p;
  NoiseHandshake init(NoiseRole::kInitiator, p.a, p.b.peer_id());
  NoiseHandshake resp(NoiseRole::kResponder, p.b);
  REQUIRE(run_handshake(init, resp));
  NoiseTransport ti = *init.take_transport();
  NoiseTransport tr = *resp.take_transport();
  Bytes f1 = *ti.encrypt_frame(as_bytes("first"));
  Bytes f2 = *ti.encrypt_frame(as_bytes("second"));
  Bytes f3 = *ti.encrypt_frame(as_bytes("third"));
  CHECK(to_string(*tr.feed(f1)) == "first");
  Bytes bad = f2;
  bad[5] ^= 0x01;
  auto r = tr.feed(bad);
  CHECK(r.status().code() == StatusCode::kCorrupt);
  CHECK(tr.failed());
  // Neither the genuine frame 2 nor anything later is accepted: the session is dead.
  CHECK_FALSE(tr.feed(f2).ok());
  CHECK_FALSE(tr.feed(f3).ok());
  CHECK_FALSE(tr.encrypt_frame(as_bytes("x")).ok());
}

TEST_CASE("transport frames shorter than a tag are refused", "[noise]") {
  Pair p;
  NoiseHandshake init(NoiseRole::kInitiator, p.a);
  NoiseHandshake resp(NoiseRole::kResponder, p.b);
  REQUIRE(run_handshake(init, resp));
  NoiseTransport tr = *resp.take_transport();
  Bytes tiny = {0x00, 0x05, 1, 2, 3, 4, 5};
  CHECK(tr.feed(tiny).status().code() == StatusCode::kCorrupt);
  CHECK(tr.failed());
}

TEST_CASE("transport nonces never wrap", "[noise]") {
  Pair p;
  NoiseHandshake init(NoiseRole::kInitiator, p.a);
  NoiseHandshake resp(NoiseRole::kResponder, p.b);
  REQUIRE(run_handshake(init, resp));
  NoiseTransport ti = *init.take_transport();
  NoiseTransport tr = *resp.take_transport();
  ti.set_nonces_for_test(noise::kMaxNonce, 0);
  tr.set_nonces_for_test(0, noise::kMaxNonce);
  Bytes last = *ti.encrypt_frame(as_bytes("last"));
  CHECK(to_string(*tr.feed(last)) == "last");
  auto over = ti.encrypt_frame(as_bytes("one more"));
  CHECK(over.status().code() == StatusCode::kUnavailable);
  CHECK(ti.failed());

  // Two frames needed, one nonce left: refused whole, before any output.
  Pair q;
  NoiseHandshake i2(NoiseRole::kInitiator, q.a);
  NoiseHandshake r2(NoiseRole::kResponder, q.b);
  REQUIRE(run_handshake(i2, r2));
  NoiseTransport t2 = *i2.take_transport();
  t2.set_nonces_for_test(noise::kMaxNonce, 0);
  Bytes out;
  CHECK(t2.encrypt_into(Bytes(70000, 1), out).code() == StatusCode::kUnavailable);
  CHECK(out.empty());
}

TEST_CASE("bytes after the final handshake message go to the transport", "[noise]") {
  Pair p;
  NoiseHandshake init(NoiseRole::kInitiator, p.a);
  NoiseHandshake resp(NoiseRole::kResponder, p.b);
  REQUIRE(resp.feed(init.take_output()).ok());
  REQUIRE(init.feed(resp.take_output()).ok());
  REQUIRE(init.done());
  NoiseTransport ti = *init.take_transport();
  // Message 3 and the first application frame arrive in one read.
  Bytes wire = init.take_output();
  append(wire, *ti.encrypt_frame(as_bytes("early")));
  REQUIRE(resp.feed(wire).ok());
  REQUIRE(resp.done());
  NoiseTransport tr = *resp.take_transport();
  CHECK(to_string(*tr.feed(resp.take_leftover())) == "early");
}
