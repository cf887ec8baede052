// /noloco/state/1.0.0: message codecs, the server's answers, and the resumable client download.
#include "trainer/node/state_wire.h"

#include <catch2/catch.hpp>
#include <msgpack.hpp>

using namespace noloco;
using namespace noloco::node;

namespace {

const std::string kRun = "0123456789abcdef0123456789abcdef";

Bytes pseudo_random(size_t n, uint32_t seed) {
  Bytes b(n);
  uint32_t x = seed * 2654435761u + 1;
  for (auto& v : b) {
    x ^= x << 13, x ^= x >> 17, x ^= x << 5;
    v = static_cast<uint8_t>(x);
  }
  return b;
}

Bytes digest(ByteView b) {
  const Sha256Digest d = sha256(b);
  return Bytes(d.begin(), d.end());
}

// One serving node: a snapshot and the counters it was taken at.
struct Server {
  Bytes snapshot;
  Bytes sha;
  uint64_t outer = 12, inner = 240;
  explicit Server(Bytes s) : snapshot(std::move(s)), sha(digest(snapshot)) {}
  // Request and response go through the encoders and decoders, as on a stream.
  Result<StateResponse> round(const StateRequest& req, uint32_t max_len = kStateChunkBytes) {
    StateRequest sent = req;
    sent.max_len = max_len;
    auto got = decode_state_request(encode_state_request(sent));
    if (!got.ok()) return got.status();
    return decode_state_response(
        encode_state_response(answer_state_request(*got, kRun, snapshot, sha, outer, inner)));
  }
};

}  // namespace

TEST_CASE("state request and response round trip", "[wire][state]") {
  StateRequest q;
  q.run_id = kRun;
  q.want_sha256 = Bytes(32, 0xab);
  q.offset = 123456789012ull;
  q.max_len = 4096;
  auto q2 = decode_state_request(encode_state_request(q));
  REQUIRE(q2.ok());
  CHECK(q2->run_id == q.run_id);
  CHECK(q2->want_sha256 == q.want_sha256);
  CHECK(q2->offset == q.offset);
  CHECK(q2->max_len == q.max_len);

  StateResponse r;
  r.outer_step = 5;
  r.inner_step = 100;
  r.total_bytes = 3 * kStateChunkBytes;
  r.sha256 = Bytes(32, 1);
  r.offset = kStateChunkBytes;
  r.chunk = pseudo_random(kStateChunkBytes, 9);
  const Bytes enc = encode_state_response(r);
  CHECK(enc.size() <= kMaxStateResponseBytes);
  auto r2 = decode_state_response(enc);
  REQUIRE(r2.ok());
  CHECK(r2->outer_step == 5);
  CHECK(r2->inner_step == 100);
  CHECK(r2->total_bytes == r.total_bytes);
  CHECK(r2->sha256 == r.sha256);
  CHECK(r2->offset == r.offset);
  CHECK(r2->chunk == r.chunk);

  StateResponse err;
  err.error = "no state yet";
  auto e2 = decode_state_response(encode_state_response(err));
  REQUIRE(e2.ok());
  CHECK(e2->error == "no state yet");
}

TEST_CASE("state decoders refuse malformed, oversized and truncated messages", "[wire][state]") {
  StateRequest q;
  q.run_id = kRun;
  q.want_sha256 = Bytes(32, 7);
  const Bytes qenc = encode_state_request(q);
  for (size_t n = 0; n < qenc.size(); ++n)
    CHECK_FALSE(decode_state_request(ByteView(qenc).first(n)).ok());
  Bytes qextra = qenc;
  qextra.push_back(0xc0);
  CHECK_FALSE(decode_state_request(qextra).ok());
  CHECK(decode_state_request(Bytes(kMaxStateRequestBytes + 1, 0x90)).status().code() ==
        StatusCode::kTooLarge);

  // Field checks: want_sha256 length, max_len, version, run id length.
  {
    StateRequest b = q;
    b.want_sha256 = Bytes(31, 0);
    CHECK(decode_state_request(encode_state_request(b)).status().message().find("want_sha256") !=
          std::string::npos);
    b = q;
    b.max_len = 0;
    CHECK(decode_state_request(encode_state_request(b)).status().message().find("max_len") !=
          std::string::npos);
    b = q;
    b.version = 2;
    CHECK(decode_state_request(encode_state_request(b)).status().code() == StatusCode::kUnsupported);
    b = q;
    b.run_id = std::string(kMaxStateRunIdBytes + 1, 'x');
    CHECK_FALSE(decode_state_request(encode_state_request(b)).ok());
  }
  // A wrong type names the field; a non-canonical integer is refused.
  {
    msgpack::sbuffer buf;
    msgpack::packer<msgpack::sbuffer> pk(buf);
    pk.pack_array(5);
    pk.pack_uint8(1);
    pk.pack(kRun);
    pk.pack_bin(0);
    pk.pack(std::string("zero"));
    pk.pack_uint32(10);
    auto r = decode_state_request(ByteView(reinterpret_cast<const uint8_t*>(buf.data()), buf.size()));
    REQUIRE_FALSE(r.ok());
    CHECK(r.status().message().find("'offset'") != std::string::npos);
  }
  {
    msgpack::sbuffer buf;
    msgpack::packer<msgpack::sbuffer> pk(buf);
    pk.pack_array(5);
    pk.pack_uint8(1);
    pk.pack(kRun);
    pk.pack_bin(0);
    const char wide_zero[] = {static_cast<char>(0xcf), 0, 0, 0, 0, 0, 0, 0, 0};  // uint64 0
    buf.write(wide_zero, sizeof wide_zero);
    pk.pack_uint32(10);
    auto r = decode_state_request(ByteView(reinterpret_cast<const uint8_t*>(buf.data()), buf.size()));
    REQUIRE_FALSE(r.ok());
    CHECK(r.status().message().find("canonical") != std::string::npos);
  }

  StateResponse r;
  r.total_bytes = 100;
  r.sha256 = Bytes(32, 1);
  r.offset = 90;
  r.chunk = Bytes(10, 2);
  const Bytes renc = encode_state_response(r);
  REQUIRE(decode_state_response(renc).ok());
  for (size_t n = 0; n < renc.size(); ++n)
    CHECK_FALSE(decode_state_response(ByteView(renc).first(n)).ok());
  {
    StateResponse b = r;
    b.chunk = Bytes(11, 2);  // past the end
    CHECK_FALSE(decode_state_response(encode_state_response(b)).ok());
    b = r;
    b.offset = 101;
    b.chunk.clear();
    CHECK_FALSE(decode_state_response(encode_state_response(b)).ok());
    b = r;
    b.offset = UINT64_MAX;  // offset + size would wrap
    b.total_bytes = UINT64_MAX;
    b.chunk = Bytes(2, 0);
    CHECK_FALSE(decode_state_response(encode_state_response(b)).ok());
    b = r;
    b.sha256 = Bytes(33, 0);
    CHECK(decode_state_response(encode_state_response(b)).status().message().find("sha256") !=
          std::string::npos);
    b = r;
    b.error = "x";
    CHECK_FALSE(decode_state_response(encode_state_response(b)).ok());  // refusal with a chunk
    b = r;
    b.version = 3;
    CHECK(decode_state_response(encode_state_response(b)).status().code() == StatusCode::kUnsupported);
  }
  // Oversized: refused by size first; a chunk over kStateChunkBytes is over the bin cap.
  CHECK(decode_state_response(Bytes(kMaxStateResponseBytes + 1, 0)).status().code() ==
        StatusCode::kTooLarge);
  {
    StateResponse b;
    b.total_bytes = kStateChunkBytes + 1;
    b.sha256 = Bytes(32, 0);
    b.chunk = Bytes(kStateChunkBytes + 1, 0);
    CHECK_FALSE(decode_state_response(encode_state_response(b)).ok());
  }
  // A bin header declaring 4 GiB in a short message: refused without allocating it.
  const uint8_t lying[] = {0x98, 0x01, 0xa0, 0x00, 0x00, 0x00, 0xc6, 0xff, 0xff, 0xff, 0xff};
  CHECK_FALSE(decode_state_response(lying).ok());
  // Every single-bit flip of a response is either refused or decodes to something different
  // (never crashes); the download's own checks catch the rest (below).
  for (size_t i = 0; i < renc.size(); ++i)
    for (int bit = 0; bit < 8; ++bit) {
      Bytes b = renc;
      b[i] ^= static_cast<uint8_t>(1u << bit);
      auto d = decode_state_response(b);
      if (d.ok()) CHECK(encode_state_response(*d) == b);
    }
}

TEST_CASE("answer_state_request serves chunks and refuses clearly", "[wire][state]") {
  const Bytes snap = pseudo_random(2500, 3);
  const Bytes sha = digest(snap);
  StateRequest q;
  q.run_id = kRun;
  q.max_len = 1000;
  StateResponse r = answer_state_request(q, kRun, snap, sha, 4, 80);
  CHECK(r.error.empty());
  CHECK(r.offset == 0);
  CHECK(r.chunk == Bytes(snap.begin(), snap.begin() + 1000));
  CHECK(r.total_bytes == 2500);
  CHECK(r.sha256 == sha);
  CHECK(r.outer_step == 4);
  CHECK(r.inner_step == 80);

  q.offset = 2000;
  q.want_sha256 = sha;
  r = answer_state_request(q, kRun, snap, sha, 4, 80);
  CHECK(r.chunk == Bytes(snap.begin() + 2000, snap.end()));  // short last chunk

  // max_len is capped at kStateChunkBytes.
  const Bytes big = pseudo_random(kStateChunkBytes + 10, 4);
  StateRequest qb;
  qb.run_id = kRun;
  qb.max_len = UINT32_MAX;
  CHECK(answer_state_request(qb, kRun, big, digest(big), 0, 0).chunk.size() == kStateChunkBytes);

  auto refusal = [&](StateRequest req, ByteView s) {
    StateResponse a = answer_state_request(req, kRun, s, sha, 4, 80);
    CHECK(a.chunk.empty());
    return a.error;
  };
  StateRequest w = q;
  w.run_id = "other";
  CHECK(refusal(w, snap).find("wrong run") != std::string::npos);
  CHECK(refusal(q, {}) == "no state yet");
  w = q;
  w.want_sha256 = Bytes(32, 0);
  CHECK(refusal(w, snap) == "snapshot changed");
  w = q;
  w.offset = 2500;
  CHECK(refusal(w, snap).find("beyond the end") != std::string::npos);
  w.offset = UINT64_MAX;
  CHECK(refusal(w, snap).find("beyond the end") != std::string::npos);
  w = q;
  w.max_len = 0;
  CHECK_FALSE(refusal(w, snap).empty());
  w = q;
  w.version = 2;
  CHECK_FALSE(refusal(w, snap).empty());
}

TEST_CASE("state download completes over several rounds and verifies the hash", "[wire][state]") {
  Server server(pseudo_random(2 * kStateChunkBytes + 777, 5));
  StateDownload dl(kRun, 16 << 20);
  CHECK(dl.next_request().want_sha256.empty());
  CHECK(dl.next_request().offset == 0);
  int rounds = 0;
  while (!dl.complete()) {
    auto resp = server.round(dl.next_request());
    REQUIRE(resp.ok());
    REQUIRE(dl.on_response(*resp).ok());
    ++rounds;
    if (!dl.complete()) CHECK(dl.next_request().want_sha256 == server.sha);
  }
  CHECK(rounds == 3);
  CHECK(dl.total() == server.snapshot.size());
  CHECK(dl.received() == server.snapshot.size());
  CHECK(dl.outer_step() == 12);
  CHECK(dl.inner_step() == 240);
  CHECK(dl.take() == server.snapshot);
}

TEST_CASE("state download resumes across two connections and small chunks", "[wire][state]") {
  Server server(pseudo_random(10000, 6));
  StateDownload dl(kRun, 1 << 20);
  // First "connection": three chunks of 1500 bytes, then it drops.
  for (int i = 0; i < 3; ++i) REQUIRE(dl.on_response(*server.round(dl.next_request(), 1500)).ok());
  CHECK(dl.received() == 4500);
  CHECK_FALSE(dl.complete());
  // Second connection (another stream, maybe another peer with the same snapshot): continues.
  Server same_snapshot_elsewhere = server;
  const StateRequest resume = dl.next_request();
  CHECK(resume.offset == 4500);
  CHECK(resume.want_sha256 == server.sha);
  while (!dl.complete())
    REQUIRE(dl.on_response(*same_snapshot_elsewhere.round(dl.next_request(), 4000)).ok());
  CHECK(dl.take() == server.snapshot);
}

TEST_CASE("state download refuses bad responses without losing progress", "[wire][state]") {
  Server server(pseudo_random(3000, 7));
  StateDownload dl(kRun, 1 << 20);
  REQUIRE(dl.on_response(*server.round(dl.next_request(), 1000)).ok());
  const StateResponse next = *server.round(dl.next_request(), 1000);

  auto refused = [&](StateResponse r, StatusCode code) {
    Status st = dl.on_response(r);
    CHECK(st.code() == code);
    CHECK(dl.received() == 1000);  // nothing applied
    return st.message();
  };
  StateResponse r = next;
  r.error = "snapshot changed";
  r.chunk.clear();
  CHECK(refused(r, StatusCode::kUnavailable).find("snapshot changed") != std::string::npos);
  r = next;
  r.offset = 0;
  refused(r, StatusCode::kProtocolError);
  r = next;
  r.offset = 2000;
  refused(r, StatusCode::kProtocolError);
  r = next;
  r.chunk.clear();
  refused(r, StatusCode::kProtocolError);
  r = next;
  r.chunk.resize(2001);
  refused(r, StatusCode::kProtocolError);
  r = next;
  r.total_bytes = 3001;
  refused(r, StatusCode::kProtocolError);
  r = next;
  r.sha256[0] ^= 1;
  refused(r, StatusCode::kProtocolError);
  r = next;
  r.outer_step += 1;
  refused(r, StatusCode::kProtocolError);
  r = next;
  r.inner_step += 1;
  refused(r, StatusCode::kProtocolError);
  r = next;
  r.sha256.resize(16);
  refused(r, StatusCode::kCorrupt);
  r = next;
  r.version = 2;
  refused(r, StatusCode::kUnsupported);
  // And still completes with good answers.
  while (!dl.complete()) REQUIRE(dl.on_response(*server.round(dl.next_request(), 1000)).ok());
  CHECK(dl.take() == server.snapshot);
}

TEST_CASE("state download: cap, empty snapshot, hash mismatch restarts, restart()", "[wire][state]") {
  Server server(pseudo_random(5000, 8));
  {
    StateDownload small(kRun, 4999);
    Status st = small.on_response(*server.round(small.next_request()));
    CHECK(st.code() == StatusCode::kTooLarge);
    CHECK(small.received() == 0);
  }
  {
    StateDownload dl(kRun, 1 << 20);
    StateResponse empty;
    empty.sha256 = Bytes(32, 0);
    CHECK_FALSE(dl.on_response(empty).ok());
  }
  {
    // The server lies about the hash: the last chunk fails, the download starts over.
    Server liar = server;
    liar.sha = Bytes(32, 0x5a);
    StateDownload dl(kRun, 1 << 20);
    REQUIRE(dl.on_response(*liar.round(dl.next_request(), 3000)).ok());
    Status st = dl.on_response(*liar.round(dl.next_request(), 3000));
    CHECK(st.code() == StatusCode::kCorrupt);
    CHECK_FALSE(dl.complete());
    CHECK(dl.received() == 0);
    CHECK(dl.next_request().offset == 0);
    CHECK(dl.next_request().want_sha256.empty());
    CHECK(dl.take().empty());
    // From an honest peer it then completes.
    while (!dl.complete()) REQUIRE(dl.on_response(*server.round(dl.next_request(), 3000)).ok());
    CHECK(dl.take() == server.snapshot);
  }
  {
    // The peer's snapshot moves on mid-download: it refuses, we restart and fetch the new one.
    StateDownload dl(kRun, 1 << 20);
    REQUIRE(dl.on_response(*server.round(dl.next_request(), 2000)).ok());
    Server moved(pseudo_random(4000, 9));
    moved.outer = 13;
    auto resp = moved.round(dl.next_request(), 2000);
    REQUIRE(resp.ok());
    CHECK(resp->error == "snapshot changed");
    CHECK(dl.on_response(*resp).code() == StatusCode::kUnavailable);
    dl.restart();
    while (!dl.complete()) REQUIRE(dl.on_response(*moved.round(dl.next_request(), 2000)).ok());
    CHECK(dl.outer_step() == 13);
    CHECK(dl.take() == moved.snapshot);
  }
  {
    // After completion, further responses are refused.
    StateDownload dl(kRun, 1 << 20);
    while (!dl.complete()) REQUIRE(dl.on_response(*server.round(dl.next_request())).ok());
    CHECK_FALSE(dl.on_response(*server.round(StateRequest{1, kRun, {}, 0, 10})).ok());
  }
}
