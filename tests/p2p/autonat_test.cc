// AutoNAT v1: the Message codec (bytes from the spec's field numbers), the server's decisions
// (IP check, relayed refusal, rate limits) and the client's verdict, sans-IO.
#include <catch2/catch.hpp>

#include "p2p/autonat.h"

using namespace noloco;
using namespace noloco::p2p;
using namespace noloco::p2p::autonat;
using namespace std::chrono_literals;

namespace {
Multiaddr ma(const char* s) { return *Multiaddr::parse(s); }
PeerId peer(uint8_t seed) { return Identity::from_seed(Bytes(32, seed))->peer_id(); }

ResponseStatus answer_status(const Message& m) {
  REQUIRE(m.type == MessageType::kDialResponse);
  REQUIRE(m.response);
  REQUIRE(m.response->status);
  return *m.response->status;
}
Bytes dial(const PeerId& p, std::vector<Multiaddr> addrs) { return encode_message(dial_request(p, std::move(addrs))); }
Bytes answer(ResponseStatus s, std::optional<Multiaddr> a = std::nullopt) { return encode_message(dial_response(s, "", a)); }
}  // namespace

TEST_CASE("autonat: messages encode with the spec's field numbers and round-trip", "[autonat]") {
  // DIAL_RESPONSE (type 1 = 08 01) with dialResponse (field 3 = 1a) { status E_DIAL_ERROR 100 = 08 64 }.
  CHECK(encode_message(dial_response(ResponseStatus::kDialError, "")) == Bytes{0x08, 0x01, 0x1a, 0x02, 0x08, 0x64});
  Message req = dial_request(peer(1), {ma("/ip4/1.2.3.4/tcp/5")});
  Bytes b = encode_message(req);
  CHECK(b[0] == 0x08);
  CHECK(b[1] == 0x00);  // DIAL
  CHECK(b[2] == 0x12);  // dial = field 2, length-delimited
  auto back = decode_message(b);
  REQUIRE(back.ok());
  CHECK(*back == req);
  Message resp = dial_response(ResponseStatus::kOk, "fine", ma("/ip4/1.2.3.4/tcp/5"));
  CHECK(*decode_message(encode_message(resp)) == resp);
}

TEST_CASE("autonat: bad messages are refused", "[autonat]") {
  CHECK(decode_message(Bytes{0x0a, 0x00}).status().code() == StatusCode::kCorrupt);  // type as bytes
  CHECK(decode_message(Bytes{0x12, 0x05, 0x0a}).status().code() != StatusCode::kOk);  // truncated
  CHECK(decode_message(Bytes(kMaxAutonatMessage + 1, 0)).status().code() == StatusCode::kTooLarge);
  // A peer id that is not a PeerId.
  CHECK(decode_message(Bytes{0x12, 0x04, 0x0a, 0x02, 0x0a, 0x01, 0x00}).status().code() != StatusCode::kOk);
  std::vector<Multiaddr> many;
  for (int i = 0; i < 33; ++i) many.push_back(*Multiaddr::from_ip_tcp("1.2.3.4", static_cast<uint16_t>(100 + i)));
  CHECK(decode_message(dial(peer(1), many)).status().code() == StatusCode::kTooLarge);
  auto unknown = decode_message(Bytes{0x08, 0x07});
  REQUIRE(unknown.ok());
  CHECK_FALSE(unknown->type.has_value());
}

TEST_CASE("autonat: the server dials back only addresses on the observed IP", "[autonat]") {
  Server s(ServerOptions{});
  const auto observed = ma("/ip4/203.0.113.7/tcp/51515");
  auto d = s.on_request(peer(1), observed,
                        dial(peer(1), {ma("/ip4/198.51.100.9/tcp/4001"), ma("/ip4/203.0.113.7/tcp/4001"),
                                       ma("/ip4/203.0.113.7/tcp/4002/p2p/12D3KooWEuvKzajzZxBkfvuTJL3jo7NfH3xHoRRe4T6HPbjN74LM")}),
                        TimePoint{});
  CHECK_FALSE(d.reply);
  CHECK(d.dial == std::vector<Multiaddr>{ma("/ip4/203.0.113.7/tcp/4001"), ma("/ip4/203.0.113.7/tcp/4002")});
  CHECK(answer_status(Server::on_dialed(ma("/ip4/203.0.113.7/tcp/4001"))) == ResponseStatus::kOk);
  CHECK(answer_status(Server::on_dialed(std::nullopt)) == ResponseStatus::kDialError);

  // Only other IPs: refused, nothing dialled (the third party is never flooded).
  auto other = s.on_request(peer(2), observed, dial(peer(2), {ma("/ip4/198.51.100.9/tcp/80")}), TimePoint{});
  REQUIRE(other.reply);
  CHECK(answer_status(*other.reply) == ResponseStatus::kDialRefused);
  CHECK(other.dial.empty());
}

TEST_CASE("autonat: relayed requests, strangers' ids and garbage are refused", "[autonat]") {
  Server s(ServerOptions{});
  const Bytes req = dial(peer(1), {ma("/ip4/203.0.113.7/tcp/4001")});
  auto relayed = s.on_request(
      peer(1), ma("/p2p/12D3KooWEuvKzajzZxBkfvuTJL3jo7NfH3xHoRRe4T6HPbjN74LM/p2p-circuit/p2p/12D3KooWEuvKzajzZxBkfvuTJL3jo7NfH3xHoRRe4T6HPbjN74LM"),
      req, TimePoint{});
  REQUIRE(relayed.reply);
  CHECK(answer_status(*relayed.reply) == ResponseStatus::kDialRefused);
  auto none = s.on_request(peer(1), std::nullopt, req, TimePoint{});
  CHECK(answer_status(*none.reply) == ResponseStatus::kDialRefused);
  auto spoof = s.on_request(peer(2), ma("/ip4/203.0.113.7/tcp/1"), req, TimePoint{});
  CHECK(answer_status(*spoof.reply) == ResponseStatus::kBadRequest);
  auto junk = s.on_request(peer(1), ma("/ip4/203.0.113.7/tcp/1"), Bytes{0xff}, TimePoint{});
  CHECK(answer_status(*junk.reply) == ResponseStatus::kBadRequest);
  auto wrong = s.on_request(peer(1), ma("/ip4/203.0.113.7/tcp/1"), answer(ResponseStatus::kOk), TimePoint{});
  CHECK(answer_status(*wrong.reply) == ResponseStatus::kBadRequest);
}

TEST_CASE("autonat: the server limits requests per peer and in total per window", "[autonat]") {
  ServerOptions o;
  o.max_requests_per_peer = 2;
  o.max_requests = 3;
  o.window = 60s;
  o.max_dial_addrs = 1;
  Server s(o);
  const auto obs = ma("/ip4/203.0.113.7/tcp/1");
  auto ask = [&](uint8_t who, TimePoint t) {
    return s.on_request(peer(who), obs, dial(peer(who), {ma("/ip4/203.0.113.7/tcp/4001"), ma("/ip4/203.0.113.7/tcp/4002")}), t);
  };
  TimePoint t{};
  CHECK(ask(1, t).dial.size() == 1);  // max_dial_addrs
  CHECK(ask(1, t).dial.size() == 1);
  auto third = ask(1, t);
  REQUIRE(third.reply);
  CHECK(answer_status(*third.reply) == ResponseStatus::kDialRefused);
  CHECK(ask(2, t).dial.size() == 1);
  CHECK(answer_status(*ask(3, t).reply) == ResponseStatus::kDialRefused);  // total
  CHECK(ask(3, t + 60s).dial.size() == 1);                                  // the window moved on
}

TEST_CASE("autonat: the client decides by majority with a minimum of votes", "[autonat]") {
  ClientOptions o;
  o.min_votes = 2;
  Client c(o);
  CHECK(c.status().reachability == Reachability::kUnknown);
  const auto addr = ma("/ip4/203.0.113.7/tcp/4001");
  CHECK(c.on_answer(peer(1), answer(ResponseStatus::kOk, addr)).ok());
  CHECK(c.status().reachability == Reachability::kUnknown);  // one vote is not enough
  CHECK(c.on_answer(peer(2), answer(ResponseStatus::kOk, addr)).ok());
  auto st = c.status();
  CHECK(st.reachability == Reachability::kPublic);
  CHECK(st.confidence == 2);
  REQUIRE(st.public_addr);
  CHECK(*st.public_addr == addr);
  // Refusals and failures are no vote and keep earlier votes.
  CHECK_FALSE(c.on_answer(peer(3), answer(ResponseStatus::kDialRefused)).ok());
  CHECK_FALSE(c.on_answer(peer(1), Result<Bytes>(Status(StatusCode::kTimeout, "x"))).ok());
  CHECK_FALSE(c.on_answer(peer(1), Bytes{0xff}).ok());
  CHECK(c.status().public_votes == 2);
  // Servers change their minds: the latest answer counts.
  CHECK(c.on_answer(peer(1), answer(ResponseStatus::kDialError)).ok());
  CHECK(c.status().reachability == Reachability::kUnknown);  // 1 public, 1 private
  CHECK(c.on_answer(peer(2), answer(ResponseStatus::kDialError)).ok());
  st = c.status();
  CHECK(st.reachability == Reachability::kPrivate);
  CHECK(st.confidence == 2);
  CHECK_FALSE(st.public_addr);
}

TEST_CASE("autonat: the client's request lists only dialable addresses", "[autonat]") {
  auto m = decode_message(Client::request(peer(1), {ma("/ip4/0.0.0.0/tcp/1"), ma("/ip4/10.0.0.2/tcp/4001")}));
  REQUIRE(m.ok());
  REQUIRE(m->dial);
  CHECK(m->dial->peer == peer(1));
  CHECK(m->dial->addrs == std::vector<Multiaddr>{ma("/ip4/10.0.0.2/tcp/4001")});
}
