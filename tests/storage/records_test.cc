#include <catch2/catch.hpp>

#include "common/hash.h"
#include "storage/records.h"
#include "storage/value_codec.h"

using namespace noloco;
using namespace noloco::storage;

namespace {

CheckpointManifest sample_manifest() {
  CheckpointManifest m;
  m.run_id = "run-abc";
  m.step = 12345;
  m.outer_step = 123;
  m.created_unix_ms = -5;  // negative survives the zigzag encoding
  m.config = "cfg";
  m.codec = "fp16";
  m.fields = {{"a", "1"}, {"rng", std::string("\0\x01\xff", 3)}};
  m.blobs = {{"phi", 10, 0xffffffffffffffffULL, 4, 3}, {"empty", 0, 7, 4, 0}};
  m.layout = BlobLayout::kChunks;
  return m;
}

// The same manifest as a schema 3 build writes it: blobs in a data file, no chunk fields.
CheckpointManifest sample_file_manifest() {
  CheckpointManifest m = sample_manifest();
  m.layout = BlobLayout::kDataFile;
  for (auto& b : m.blobs) b.chunk_bytes = 0, b.chunk_count = 0;
  return m;
}

// A version 2 manifest (schema 2 builds: chunk layout, no layout field), sealed with xxh3_64.
Bytes manifest_v2(const CheckpointManifest& m) {
  ValueWriter w(2);
  w.str(m.run_id);
  w.u64(m.step);
  w.u64(m.outer_step);
  w.i64(m.created_unix_ms);
  w.str(m.config);
  w.str(m.codec);
  w.u64(m.fields.size());
  for (const auto& [k, v] : m.fields) w.str(k), w.str(v);
  w.u64(m.blobs.size());
  for (const auto& b : m.blobs) {
    w.str(b.name);
    w.u64(b.size);
    w.fixed64(b.checksum);
    w.u64(b.chunk_bytes);
    w.u64(b.chunk_count);
  }
  return std::move(w).seal().value();
}

PeerRecord sample_peer() {
  return {"12D3KooWpeer", {"/ip4/127.0.0.1/tcp/1", "/ip6/::1/tcp/2"}, 100, 200, 3, 4, -1.5};
}

}  // namespace

TEST_CASE("records round trip exactly") {
  auto m = sample_manifest();
  auto mb = encode_manifest(m);
  REQUIRE(mb.ok());
  auto md = decode_manifest(*mb);
  REQUIRE(md.ok());
  CHECK(*md == m);
  CHECK((*mb)[0] == 3);

  auto fm = sample_file_manifest();
  auto fb = encode_manifest(fm);
  REQUIRE(fb.ok());
  auto fd = decode_manifest(*fb);
  REQUIRE(fd.ok());
  CHECK(*fd == fm);
  CHECK(fb->size() < mb->size());  // no chunk fields

  PeerRecord p{"12D3KooWpeer", {"/ip4/127.0.0.1/tcp/1", "/ip6/::1/tcp/2"}, 100, 200, 3, 4, -1.5};
  auto pd = decode_peer(*encode_peer(p));
  REQUIRE(pd.ok());
  CHECK(*pd == p);

  BanRecord b{"peer", "sent NaN", 10, 0};
  auto bd = decode_ban(*encode_ban(b));
  REQUIRE(bd.ok());
  CHECK(*bd == b);

  MetricsRecord r{7, 1700000000123, 2.5, 1234.5, 10, 20, "partner", 33.25, {{"grad_norm", 0.5}}};
  auto rd = decode_metrics(*encode_metrics(r));
  REQUIRE(rd.ok());
  CHECK(*rd == r);
}

TEST_CASE("every flipped byte and every truncation of a record is refused") {
  auto bytes = GENERATE(encode_manifest(sample_manifest()).value(), encode_manifest(sample_file_manifest()).value());
  for (size_t i = 0; i < bytes.size(); ++i) {
    for (uint8_t bit : {0x01, 0x80}) {
      Bytes damaged = bytes;
      damaged[i] ^= bit;
      auto r = decode_manifest(damaged);
      REQUIRE_FALSE(r.ok());
    }
  }
  for (size_t n = 0; n < bytes.size(); ++n) {
    auto r = decode_manifest(ByteView(bytes).first(n));
    REQUIRE_FALSE(r.ok());
    CHECK(r.status().code() == StatusCode::kCorrupt);
  }
}

TEST_CASE("a record with an unknown version is unsupported, not misread") {
  ValueWriter w(3);  // a well-formed, checksummed record from a future layout
  w.str("peer");
  auto bytes = std::move(w).seal().value();
  auto r = decode_peer(bytes);
  REQUIRE_FALSE(r.ok());
  CHECK(r.status().code() == StatusCode::kUnsupported);
  CHECK(r.status().message().find("peer record version 3") != std::string::npos);
}

TEST_CASE("version 1 records are read with the legacy checksum and never written") {
  auto seal_v1 = [](Bytes body) {  // what the build before xxHash wrote (docs/storage.md)
    put_u64_le(body, legacy_hash64(body, 0x6e6f6c6f636f7231ULL));
    return body;
  };
  auto v2 = encode_peer(sample_peer());
  REQUIRE(v2.ok());
  CHECK((*v2)[0] == 2);
  Bytes body(v2->begin(), v2->end() - 8);
  body[0] = 1;
  auto v1 = decode_peer(seal_v1(body));
  REQUIRE(v1.ok());
  CHECK(*v1 == sample_peer());

  // A version 1 record under the new checksum (or the reverse) is damage, not a format.
  Bytes wrong = body;
  put_u64_le(wrong, xxh3_64(body, 0x6e6f6c6f636f7231ULL));
  CHECK(decode_peer(wrong).status().code() == StatusCode::kCorrupt);

  // A version 1 manifest's blob checksums are legacy ones, and such a manifest is never re-encoded.
  const Bytes m2 = manifest_v2(sample_manifest());
  Bytes mbody(m2.begin(), m2.end() - 8);
  mbody[0] = 1;
  auto m1 = decode_manifest(seal_v1(mbody));
  REQUIRE(m1.ok());
  for (const auto& b : m1->blobs) CHECK(b.checksum_kind == BlobChecksum::kLegacyHash64);
  CHECK(encode_manifest(*m1).status().code() == StatusCode::kInvalidArgument);

  ValueWriter old(1);
  old.str("peer");
  CHECK(std::move(old).seal().status().code() == StatusCode::kInvalidArgument);
}

TEST_CASE("a version 2 manifest reads as the chunk layout it describes") {
  auto m = decode_manifest(manifest_v2(sample_manifest()));
  REQUIRE(m.ok());
  CHECK(*m == sample_manifest());
  CHECK(m->layout == BlobLayout::kChunks);
}

TEST_CASE("a version 3 manifest with an unknown layout is refused as corrupt") {
  ValueWriter w(3);
  w.str("r");
  w.u64(1);
  w.u64(0);
  w.i64(0);
  w.str("");
  w.str("");
  w.u64(0);
  w.u64(2);  // layout 2: not defined
  w.u64(0);
  auto r = decode_manifest(std::move(w).seal().value());
  REQUIRE_FALSE(r.ok());
  CHECK(r.status().code() == StatusCode::kCorrupt);
  CHECK(r.status().message().find("unknown blob layout 2") != std::string::npos);
}

TEST_CASE("encoders enforce caps and layout rules") {
  auto m = sample_manifest();
  m.blobs.push_back(m.blobs[0]);
  auto dup = encode_manifest(m);
  REQUIRE_FALSE(dup.ok());
  CHECK(dup.status().message().find("appears twice") != std::string::npos);

  m = sample_manifest();
  m.blobs[0].chunk_count = 2;  // 10 bytes in 4-byte chunks need 3
  CHECK(encode_manifest(m).status().code() == StatusCode::kInvalidArgument);

  m = sample_file_manifest();
  m.blobs[0].chunk_bytes = 4;  // a data-file blob has no chunks
  CHECK(encode_manifest(m).status().code() == StatusCode::kInvalidArgument);

  m = sample_manifest();
  m.run_id = std::string(kMaxShortStringBytes + 1, 'x');
  CHECK(encode_manifest(m).status().code() == StatusCode::kInvalidArgument);

  m = sample_manifest();
  m.step = uint64_t{1} << 63;
  CHECK(encode_manifest(m).status().code() == StatusCode::kInvalidArgument);

  PeerRecord p{"p", std::vector<std::string>(kMaxAddressesPerPeer + 1, "a"), 0, 0, 0, 0, 0};
  CHECK(encode_peer(p).status().code() == StatusCode::kInvalidArgument);
  CHECK(encode_peer(PeerRecord{}).status().code() == StatusCode::kInvalidArgument);
}

TEST_CASE("decoders accept only the one encoding the encoders write") {
  ValueWriter empty_id(2);  // a peer record with a valid checksum but an empty peer id
  empty_id.str("");
  empty_id.u64(0);
  empty_id.i64(0);
  empty_id.i64(0);
  empty_id.u64(0);
  empty_id.u64(0);
  empty_id.f64(0);
  auto p = decode_peer(std::move(empty_id).seal().value());
  REQUIRE_FALSE(p.ok());
  CHECK(p.status().message().find("empty peer id") != std::string::npos);

  ValueWriter unsorted(2);  // a metrics record whose fields are out of order
  unsorted.u64(1);
  unsorted.i64(0);
  unsorted.f64(0);
  unsorted.f64(0);
  unsorted.u64(0);
  unsorted.u64(0);
  unsorted.str("");
  unsorted.f64(0);
  unsorted.u64(2);
  unsorted.str("b");
  unsorted.f64(1);
  unsorted.str("a");
  unsorted.f64(2);
  auto m = decode_metrics(std::move(unsorted).seal().value());
  REQUIRE_FALSE(m.ok());
  CHECK(m.status().message().find("out of order") != std::string::npos);
}
