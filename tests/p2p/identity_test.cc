#include <catch2/catch.hpp>

#include <unordered_set>

#include "common/encoding.h"
#include "p2p/identity.h"

using namespace noloco;
using namespace noloco::p2p;

static Bytes hex(std::string_view h) { return *hex_decode(h); }

// Test vectors from github.com/libp2p/specs peer-ids/peer-ids.md, "Test vectors" table.
constexpr std::string_view kSpecEd25519Private =
    "080112407e0830617c4a7de83925dfb2694556b12936c477a0e1feb2e148ec9da60fee7d1ed1e8fae2c4a144b8be8fd4b47bf3d3b34b871c3"
    "cacf6010f0e42d474fce27e";
constexpr std::string_view kSpecEd25519Public = "080112201ed1e8fae2c4a144b8be8fd4b47bf3d3b34b871c3cacf6010f0e42d474fce27e";
// peer-ids.md, "Examples" under String representation.
constexpr std::string_view kSpecEd25519PeerId = "12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA";
constexpr std::string_view kSpecSha256PeerId = "QmYyQSo1c1Ym7orWxLYvCrM2EmxFTANf8wXmmE7DWjhx5N";

TEST_CASE("peer-ids spec vector: Ed25519 private key yields the published public key", "[identity]") {
  auto id = Identity::from_private_key_protobuf(hex(kSpecEd25519Private));
  REQUIRE(id.ok());
  CHECK(hex_encode(id->public_key_protobuf()) == kSpecEd25519Public);
  CHECK(hex_encode(id->private_key_protobuf()) == kSpecEd25519Private);
  // PeerId = identity multihash (0x00, 36) of the public key protobuf.
  CHECK(hex_encode(id->peer_id().bytes()) == "0024" + std::string(kSpecEd25519Public));
  CHECK(id->peer_id().to_string().rfind("12D3KooW", 0) == 0);
  auto round = PeerId::parse(id->peer_id().to_string());
  REQUIRE(round.ok());
  CHECK(*round == id->peer_id());
}

TEST_CASE("peer-ids spec examples parse, the Ed25519 one yields its key", "[identity]") {
  auto ed = PeerId::parse(kSpecEd25519PeerId);
  REQUIRE(ed.ok());
  CHECK(ed->to_string() == kSpecEd25519PeerId);
  CHECK(hex_encode(ed->bytes()).rfind("002408011220", 0) == 0);
  auto key = ed->ed25519_public_key();
  REQUIRE(key.ok());
  auto again = PeerId::from_ed25519_public_key(*key);
  REQUIRE(again.ok());
  CHECK(again->to_string() == kSpecEd25519PeerId);

  auto sha = PeerId::parse(kSpecSha256PeerId);
  REQUIRE(sha.ok());
  CHECK(sha->to_string() == kSpecSha256PeerId);
  CHECK(sha->bytes().size() == 34);
  CHECK(sha->ed25519_public_key().status().code() == StatusCode::kUnsupported);
}

TEST_CASE("bad PeerIds are refused", "[identity]") {
  CHECK_FALSE(PeerId::parse("").ok());
  CHECK_FALSE(PeerId::parse("12D3KooW0OIl").ok());  // not base58
  CHECK_FALSE(PeerId::parse(std::string(200, 'z')).ok());
  // CIDv1 text form is not accepted (documented).
  CHECK_FALSE(PeerId::parse("bafzbeie5745rpv2m6tjyuugywy4d5ewrqgqqhfnf445he3omzpjbx5xqxe").ok());
  CHECK_FALSE(PeerId::from_bytes(hex("0025" "080112201ed1e8fae2c4a144b8be8fd4b47bf3d3b34b871c3cacf6010f0e42d474fce27e")).ok());  // length mismatch
  CHECK_FALSE(PeerId::from_bytes(hex("1220" "00")).ok());  // sha256 with 1-byte digest
  CHECK(PeerId::from_bytes(hex("1320" + std::string(64, '0'))).status().code() == StatusCode::kUnsupported);
  CHECK_FALSE(PeerId::from_bytes(hex("8000" "00")).ok());  // non-minimal varint code
  CHECK_FALSE(PeerId::from_bytes({}).ok());
  // An identity PeerId whose inline key is not an Ed25519 PublicKey: parses, but no key.
  auto odd = PeerId::from_bytes(hex("0003010203"));
  REQUIRE(odd.ok());
  CHECK_FALSE(odd->ed25519_public_key().ok());
}

TEST_CASE("public key protobuf parsing is strict", "[identity]") {
  CHECK(unmarshal_ed25519_public_key(hex(kSpecEd25519Public)).ok());
  // secp256k1 key from the spec table: well formed, but not a type we support.
  CHECK(unmarshal_ed25519_public_key(hex("08021221037777e994e452c21604f91de093ce415f5432f701dd8cd1a7a6fea0e630bfca99"))
            .status()
            .code() == StatusCode::kUnsupported);
  CHECK(unmarshal_ed25519_public_key(hex("0801121f" + std::string(62, 'a'))).status().code() == StatusCode::kCorrupt);
  // Fields out of order: valid protobuf, not the canonical libp2p encoding.
  CHECK(unmarshal_ed25519_public_key(hex("1220" + std::string(64, 'a') + "0801")).status().code() == StatusCode::kCorrupt);
  CHECK_FALSE(unmarshal_ed25519_public_key(hex("0801")).ok());  // Data missing
  CHECK_FALSE(unmarshal_ed25519_public_key(hex(std::string(kSpecEd25519Public) + "1800")).ok());  // extra field
}

TEST_CASE("private key protobuf: legacy 96-byte form and mismatched halves", "[identity]") {
  Bytes good = hex(kSpecEd25519Private);
  // Legacy: seed || pub || pub (length 96 = 0x60).
  Bytes legacy = hex("08011260");
  legacy.insert(legacy.end(), good.begin() + 4, good.end());
  legacy.insert(legacy.end(), good.end() - 32, good.end());
  auto id = Identity::from_private_key_protobuf(legacy);
  REQUIRE(id.ok());
  CHECK(hex_encode(id->public_key_protobuf()) == kSpecEd25519Public);

  Bytes bad = good;
  bad.back() ^= 1;  // public half does not belong to the seed
  CHECK(Identity::from_private_key_protobuf(bad).status().code() == StatusCode::kCorrupt);
  Bytes short_key = hex("0801121f" + std::string(62, 'a'));
  CHECK(Identity::from_private_key_protobuf(short_key).status().code() == StatusCode::kCorrupt);
}

TEST_CASE("sign and verify with raw and protobuf public keys", "[identity]") {
  auto a = Identity::generate();
  auto b = Identity::generate();
  REQUIRE(a.ok());
  REQUIRE(b.ok());
  CHECK(a->peer_id() != b->peer_id());
  Bytes msg = to_bytes("noise-libp2p-static-key:abc");
  Bytes sig = a->sign(msg);
  REQUIRE(sig.size() == kEd25519SignatureSize);
  CHECK(Identity::verify(a->public_key(), msg, sig));
  CHECK(Identity::verify(a->public_key_protobuf(), msg, sig));
  CHECK_FALSE(Identity::verify(b->public_key(), msg, sig));
  Bytes tampered = msg;
  tampered[0] ^= 1;
  CHECK_FALSE(Identity::verify(a->public_key(), tampered, sig));
  Bytes bad_sig = sig;
  bad_sig[10] ^= 0x40;
  CHECK_FALSE(Identity::verify(a->public_key(), msg, bad_sig));
  CHECK_FALSE(Identity::verify(a->public_key(), msg, ByteView(sig).first(63)));
  CHECK_FALSE(Identity::verify(Bytes(5, 1), msg, sig));

  std::unordered_set<PeerId> set{a->peer_id(), b->peer_id(), a->peer_id()};
  CHECK(set.size() == 2);
}

TEST_CASE("identity from a seed is deterministic", "[identity]") {
  Bytes seed(32, 7);
  auto x = Identity::from_seed(seed);
  auto y = Identity::from_seed(seed);
  REQUIRE(x.ok());
  REQUIRE(y.ok());
  CHECK(x->peer_id() == y->peer_id());
  CHECK(x->sign(to_bytes("m")) == y->sign(to_bytes("m")));  // Ed25519 signatures are deterministic
  CHECK_FALSE(Identity::from_seed(Bytes(31, 7)).ok());
}

TEST_CASE("an empty message can be signed and verified", "[identity]") {
  auto id = Identity::generate();
  REQUIRE(id.ok());
  Bytes sig = id->sign({});
  CHECK(Identity::verify(id->public_key(), {}, sig));
  CHECK_FALSE(Identity::verify(id->public_key(), as_bytes("x"), sig));
}
