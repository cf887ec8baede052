// Invite strings (cli/invite.h): round trips and every refusal a pasted string can earn.
#include <catch2/catch.hpp>

#include <string>

#include "cli/invite.h"
#include "common/encoding.h"
#include "common/hash.h"
#include "p2p/identity.h"
#include "p2p/protobuf.h"

namespace noloco::cli {
namespace {

p2p::Multiaddr addr(const std::string& ip_port_text, const p2p::PeerId& id) {
  return p2p::Multiaddr::parse(ip_port_text).value().with_peer_id(id);
}

Invite sample(bool with_psk) {
  Invite inv;
  inv.run_id = "46d62b01d9249932a089541279244a70";
  const auto a = p2p::Identity::generate().value().peer_id();
  const auto b = p2p::Identity::generate().value().peer_id();
  inv.bootstrap = {addr("/ip4/192.168.1.5/tcp/4001", a), addr("/ip4/10.0.0.7/tcp/4101", b)};
  if (with_psk) {
    p2p::Psk k{};
    for (size_t i = 0; i < k.size(); ++i) k[i] = static_cast<uint8_t>(i * 7 + 1);
    inv.psk = k;
  }
  return inv;
}

// An invite whose record is `record`, with a correct checksum: to reach the record's checks.
std::string wrap(const Bytes& record) {
  Bytes b = record;
  const auto d = sha256(record);
  b.insert(b.end(), d.begin(), d.begin() + 4);
  return std::string(kInvitePrefix) + base58_encode(b);
}

std::string refusal(const std::string& text) {
  auto r = decode_invite(text);
  REQUIRE_FALSE(r.ok());
  CHECK(r.status().code() == StatusCode::kInvalidArgument);
  return r.status().message();
}

}  // namespace

TEST_CASE("invite: a public and a private invite decode to what was encoded", "[invite]") {
  for (bool priv : {false, true}) {
    const Invite inv = sample(priv);
    auto text = encode_invite(inv);
    REQUIRE(text.ok());
    CHECK(text->rfind("noloco1:", 0) == 0);
    auto back = decode_invite(*text);
    REQUIRE(back.ok());
    CHECK(back->run_id == inv.run_id);
    CHECK(back->bootstrap == inv.bootstrap);
    CHECK(back->is_private() == priv);
    if (priv) CHECK(*back->psk == *inv.psk);
    // Pasted with the quotes of the printed command and a newline: still the same invite.
    auto quoted = decode_invite("  '" + *text + "'\n");
    REQUIRE(quoted.ok());
    CHECK(quoted->run_id == inv.run_id);
  }
}

TEST_CASE("invite: truncated, changed, foreign or future strings are refused with a reason", "[invite]") {
  const std::string text = encode_invite(sample(true)).value();
  CHECK(refusal(text.substr(0, text.size() - 5)).find("checksum") != std::string::npos);
  std::string changed = text;
  changed[20] = changed[20] == 'a' ? 'b' : 'a';
  CHECK(refusal(changed).find("checksum") != std::string::npos);
  CHECK(refusal("noloco1:").find("too short") != std::string::npos);
  CHECK(refusal("noloco1:abc0OIl").find("base58") != std::string::npos);  // 0, O, I, l are not base58
  CHECK(refusal("noloco2:" + text.substr(8)).find("version 'noloco2'") != std::string::npos);
  CHECK(refusal("/ip4/1.2.3.4/tcp/4001").find("not a noloco invite") != std::string::npos);
  CHECK(refusal("").find("not a noloco invite") != std::string::npos);
  CHECK(refusal("noloco1:" + std::string(3000, '2')).find("longer than") != std::string::npos);
}

TEST_CASE("invite: a well-formed record with missing or bad fields is refused", "[invite]") {
  const auto id = p2p::Identity::generate().value().peer_id();
  const Bytes run = hex_decode("46d62b01d9249932a089541279244a70").value();
  const Bytes boot = addr("/ip4/127.0.0.1/tcp/4001", id).to_bytes();
  {
    p2p::pb::Writer w;  // no bootstrap address
    w.add_bytes(1, run);
    CHECK(refusal(wrap(w.take())).find("no bootstrap") != std::string::npos);
  }
  {
    p2p::pb::Writer w;  // no run id
    w.add_bytes(2, boot);
    CHECK(refusal(wrap(w.take())).find("run id") != std::string::npos);
  }
  {
    p2p::pb::Writer w;  // an address a joiner could not authenticate
    w.add_bytes(1, run);
    w.add_bytes(2, p2p::Multiaddr::parse("/ip4/127.0.0.1/tcp/4001").value().to_bytes());
    CHECK(refusal(wrap(w.take())).find("no /p2p/") != std::string::npos);
  }
  {
    p2p::pb::Writer w;  // a swarm key of the wrong size
    w.add_bytes(1, run);
    w.add_bytes(2, boot);
    w.add_bytes(3, Bytes(31, 1));
    CHECK(refusal(wrap(w.take())).find("swarm key") != std::string::npos);
  }
  {
    p2p::pb::Writer w;  // more addresses than an invite carries
    w.add_bytes(1, run);
    for (size_t i = 0; i <= kMaxInviteBootstrap; ++i) w.add_bytes(2, boot);
    const std::string why = refusal(wrap(w.take()));
    INFO(why);
    CHECK(why.find("more than") != std::string::npos);
  }
  {
    Bytes junk = {0x0a, 0x40, 0x01};  // a field longer than the record
    CHECK(refusal(wrap(junk)).find("does not parse") != std::string::npos);
  }
  {
    p2p::pb::Writer w;  // an unknown field (a later version's addition) is passed over
    w.add_bytes(1, run);
    w.add_bytes(2, boot);
    w.add_bytes(9, Bytes{1, 2, 3});
    w.add_varint(10, 5);
    auto ok = decode_invite(wrap(w.take()));
    REQUIRE(ok.ok());
    CHECK(ok->run_id == "46d62b01d9249932a089541279244a70");
  }
}

TEST_CASE("invite: encoding refuses what decoding would refuse", "[invite]") {
  Invite inv = sample(false);
  inv.run_id = "46D62B01D9249932A089541279244A70";
  CHECK_FALSE(encode_invite(inv).ok());
  inv = sample(false);
  inv.bootstrap.clear();
  CHECK_FALSE(encode_invite(inv).ok());
  inv = sample(false);
  inv.bootstrap.push_back(p2p::Multiaddr::parse("/ip4/1.2.3.4/tcp/1").value());
  CHECK_FALSE(encode_invite(inv).ok());
}

}  // namespace noloco::cli
