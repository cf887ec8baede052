// /noloco/exchange/1.0.0 payloads: encoding, header checks, and the sans-IO PayloadReader
// against every split, truncation, bit flip and oversized length.
#include "trainer/node/exchange_wire.h"

#include <catch2/catch.hpp>
#include <msgpack.hpp>

#include "common/varint.h"

using namespace noloco;
using namespace noloco::node;

namespace {

Bytes pseudo_random(size_t n, uint32_t seed) {
  Bytes b(n);
  uint32_t x = seed * 2654435761u + 1;
  for (auto& v : b) {
    x ^= x << 13, x ^= x >> 17, x ^= x << 5;
    v = static_cast<uint8_t>(x);
  }
  return b;
}

PayloadHeader base_header() {
  PayloadHeader h;
  h.run_id = "0123456789abcdef0123456789abcdef";
  h.sender = "12D3KooWSender";
  h.outer_step = 7;
  h.inner_step = 140;
  h.form = WireForm::kDeltaPhi;
  h.numel = 1000;
  return h;
}

ExchangeExpectations expectations(uint64_t max_tensor_bytes = 4 << 20) {
  ExchangeExpectations e;
  e.run_id = "0123456789abcdef0123456789abcdef";
  e.numel = 1000;
  e.form = WireForm::kDeltaPhi;
  e.max_tensor_bytes = max_tensor_bytes;
  e.sender = "12D3KooWSender";
  return e;
}

Payload small_payload() {
  return make_payload(base_header(), {{"delta", pseudo_random(100, 1)}, {"phi", pseudo_random(150, 2)}});
}

void check_same(const Payload& a, const Payload& b) {
  CHECK(a.header.version == b.header.version);
  CHECK(a.header.error == b.header.error);
  CHECK(a.header.run_id == b.header.run_id);
  CHECK(a.header.sender == b.header.sender);
  CHECK(a.header.outer_step == b.header.outer_step);
  CHECK(a.header.inner_step == b.header.inner_step);
  CHECK(a.header.form == b.header.form);
  CHECK(a.header.numel == b.header.numel);
  REQUIRE(a.header.tensors.size() == b.header.tensors.size());
  for (size_t i = 0; i < a.header.tensors.size(); ++i) {
    CHECK(a.header.tensors[i].name == b.header.tensors[i].name);
    CHECK(a.header.tensors[i].encoded_bytes == b.header.tensors[i].encoded_bytes);
    CHECK(a.header.tensors[i].sha256 == b.header.tensors[i].sha256);
  }
  CHECK(a.tensors == b.tensors);
}

// Feeds `bytes` and reports whether the reader ended with a complete payload.
bool reads_ok(ByteView bytes, const ExchangeExpectations& e = expectations()) {
  PayloadReader r(e);
  if (!r.feed(bytes).ok()) return false;
  if (!r.finish().ok()) return false;
  return r.take().ok();
}

Bytes frame(ByteView body) {
  Bytes out;
  put_varint(out, body.size());
  append(out, body);
  return out;
}

}  // namespace

TEST_CASE("wire form names", "[wire][exchange]") {
  CHECK(*wire_form_from_name("delta_phi") == WireForm::kDeltaPhi);
  CHECK(*wire_form_from_name("theta") == WireForm::kTheta);
  CHECK_FALSE(wire_form_from_name("phi").ok());
  CHECK(std::string(wire_form_name(WireForm::kTheta)) == "theta");
  CHECK(std::string(wire_form_name(WireForm::kDeltaPhi)) == "delta_phi");
  CHECK(wire_form_tensor_names(WireForm::kDeltaPhi) == std::vector<std::string>{"delta", "phi"});
  CHECK(wire_form_tensor_names(WireForm::kTheta) == std::vector<std::string>{"theta"});
}

TEST_CASE("make_payload fills names, sizes and hashes, payload round trips", "[wire][exchange]") {
  const Payload p = small_payload();
  REQUIRE(p.header.tensors.size() == 2);
  CHECK(p.header.tensors[0].name == "delta");
  CHECK(p.header.tensors[0].encoded_bytes == 100);
  const Sha256Digest d = sha256(p.tensors[1]);
  CHECK(p.header.tensors[1].sha256 == Bytes(d.begin(), d.end()));
  CHECK(check_header(p.header, expectations()).ok());

  const Bytes wire = encode_payload(p);
  PayloadReader r(expectations());
  REQUIRE(r.feed(wire).ok());
  REQUIRE(r.done());
  REQUIRE(r.finish().ok());
  CHECK(r.bytes_received() == wire.size());
  auto got = r.take();
  REQUIRE(got.ok());
  check_same(*got, p);
  CHECK_FALSE(r.take().ok());  // moved out once

  // The theta form.
  PayloadHeader th = base_header();
  th.form = WireForm::kTheta;
  const Payload tp = make_payload(th, {{"theta", pseudo_random(64, 3)}});
  auto e = expectations();
  e.form = WireForm::kTheta;
  PayloadReader rt(e);
  REQUIRE(rt.feed(encode_payload(tp)).ok());
  REQUIRE(rt.done());
  check_same(*rt.take(), tp);
}

TEST_CASE("large tensors travel in frames of at most kExchangeChunkBytes", "[wire][exchange]") {
  const size_t big = 2 * kExchangeChunkBytes + 12345;
  const Payload p = make_payload(base_header(), {{"delta", pseudo_random(big, 4)}, {"phi", pseudo_random(kExchangeChunkBytes, 5)}});
  const Bytes wire = encode_payload(p);
  // Walk the frames: header, then 3 frames of delta, 1 of phi.
  std::vector<uint64_t> sizes;
  size_t pos = 0;
  while (pos < wire.size()) {
    auto v = read_varint(ByteView(wire).subspan(pos));
    REQUIRE(v.ok());
    pos += v->consumed + v->value;
    sizes.push_back(v->value);
  }
  CHECK(pos == wire.size());
  REQUIRE(sizes.size() == 5);
  CHECK(sizes[0] <= kMaxExchangeHeaderBytes);
  CHECK(sizes[1] == kExchangeChunkBytes);
  CHECK(sizes[2] == kExchangeChunkBytes);
  CHECK(sizes[3] == 12345);
  CHECK(sizes[4] == kExchangeChunkBytes);

  // Fed in odd-sized pieces, it reassembles.
  for (size_t piece : {size_t{1} << 16, size_t{777777}, size_t{3}}) {
    if (piece == 3) {
      // 1-byte-ish pieces over the whole 3 MiB are slow-ish; do the first and last 64 KiB finely.
      PayloadReader r(expectations());
      size_t i = 0;
      for (; i < 65536; i += piece) REQUIRE(r.feed(ByteView(wire).subspan(i, piece)).ok());
      const size_t tail_start = wire.size() - 65536;
      REQUIRE(r.feed(ByteView(wire).subspan(i, tail_start - i)).ok());
      for (i = tail_start; i < wire.size(); i += 1) REQUIRE(r.feed(ByteView(wire).subspan(i, 1)).ok());
      REQUIRE(r.done());
      check_same(*r.take(), p);
      continue;
    }
    PayloadReader r(expectations());
    for (size_t i = 0; i < wire.size(); i += piece)
      REQUIRE(r.feed(ByteView(wire).subspan(i, std::min(piece, wire.size() - i))).ok());
    REQUIRE(r.done());
    check_same(*r.take(), p);
  }
}

TEST_CASE("payload split at every byte boundary reassembles, 1-byte pieces too", "[wire][exchange]") {
  const Payload p = small_payload();
  const Bytes wire = encode_payload(p);
  for (size_t k = 0; k <= wire.size(); ++k) {
    PayloadReader r(expectations());
    REQUIRE(r.feed(ByteView(wire).first(k)).ok());
    REQUIRE(r.feed(ByteView(wire).subspan(k)).ok());
    REQUIRE(r.done());
    auto got = r.take();
    REQUIRE(got.ok());
    CHECK(got->tensors == p.tensors);
  }
  PayloadReader r(expectations());
  for (uint8_t b : wire) {
    REQUIRE_FALSE(r.done());
    REQUIRE(r.feed(ByteView(&b, 1)).ok());
  }
  REQUIRE(r.done());
  check_same(*r.take(), p);
}

TEST_CASE("every truncation is reported by finish() as kTruncated", "[wire][exchange]") {
  const Bytes wire = encode_payload(small_payload());
  for (size_t n = 0; n < wire.size(); ++n) {
    PayloadReader r(expectations());
    REQUIRE(r.feed(ByteView(wire).first(n)).ok());
    CHECK_FALSE(r.done());
    Status st = r.finish();
    CHECK(st.code() == StatusCode::kTruncated);
    CHECK_FALSE(r.take().ok());
  }
}

TEST_CASE("every single-bit flip of an encoded payload is refused", "[wire][exchange]") {
  const Bytes wire = encode_payload(small_payload());
  REQUIRE(reads_ok(wire));
  for (size_t i = 0; i < wire.size(); ++i) {
    for (int bit = 0; bit < 8; ++bit) {
      Bytes bad = wire;
      bad[i] ^= static_cast<uint8_t>(1u << bit);
      INFO("byte " << i << " bit " << bit);
      CHECK_FALSE(reads_ok(bad));
    }
  }
  // And every byte dropped or duplicated.
  for (size_t i = 0; i < wire.size(); ++i) {
    Bytes dropped = wire;
    dropped.erase(dropped.begin() + static_cast<std::ptrdiff_t>(i));
    CHECK_FALSE(reads_ok(dropped));
    Bytes doubled = wire;
    doubled.insert(doubled.begin() + static_cast<std::ptrdiff_t>(i), wire[i]);
    CHECK_FALSE(reads_ok(doubled));
  }
}

TEST_CASE("bytes after the end of the payload are an error, and the reader stays failed", "[wire][exchange]") {
  const Bytes wire = encode_payload(small_payload());
  Bytes extra = wire;
  extra.push_back(0);
  PayloadReader r(expectations());
  Status st = r.feed(extra);
  CHECK(st.code() == StatusCode::kProtocolError);
  CHECK_FALSE(r.done());
  CHECK_FALSE(r.take().ok());
  CHECK_FALSE(r.finish().ok());

  // Separately fed trailing byte after completion.
  PayloadReader r2(expectations());
  REQUIRE(r2.feed(wire).ok());
  REQUIRE(r2.done());
  CHECK_FALSE(r2.feed(ByteView(wire).first(1)).ok());
  CHECK_FALSE(r2.take().ok());

  // Failed stays failed, even when good bytes follow.
  PayloadReader r3(expectations());
  const uint8_t junk[] = {0x05, 0xff, 0xff, 0xff, 0xff, 0xff};
  CHECK_FALSE(r3.feed(junk).ok());
  CHECK_FALSE(r3.feed(wire).ok());
  CHECK_FALSE(r3.done());
}

TEST_CASE("oversized, non-minimal and malformed frame lengths are refused before allocating", "[wire][exchange]") {
  // A header length of 4 GiB: refused right after its varint, nothing buffered.
  Bytes huge;
  put_varint(huge, uint64_t{4} << 30);
  PayloadReader r(expectations());
  Status st = r.feed(huge);
  CHECK(st.code() == StatusCode::kTooLarge);
  CHECK(r.bytes_received() == huge.size());

  Bytes just_over;
  put_varint(just_over, kMaxExchangeHeaderBytes + 1);
  CHECK(PayloadReader(expectations()).feed(just_over).code() == StatusCode::kTooLarge);

  // Largest varint the decoder takes, then a non-minimal and an over-long one.
  Bytes max_varint;
  put_varint(max_varint, (uint64_t{1} << 63) - 1);
  CHECK_FALSE(PayloadReader(expectations()).feed(max_varint).ok());
  const uint8_t non_minimal[] = {0x85, 0x00};
  CHECK(PayloadReader(expectations()).feed(non_minimal).code() == StatusCode::kCorrupt);
  const uint8_t too_long[] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01};
  CHECK_FALSE(PayloadReader(expectations()).feed(too_long).ok());

  // Empty header frame.
  const uint8_t empty[] = {0x00};
  CHECK_FALSE(PayloadReader(expectations()).feed(empty).ok());

  // A tensor frame claiming gigabytes, after a valid header.
  const Payload p = small_payload();
  Bytes wire = frame(encode_header(p.header));
  put_varint(wire, uint64_t{3} << 30);
  PayloadReader rt(expectations());
  CHECK(rt.feed(wire).code() == StatusCode::kTooLarge);

  // A tensor frame longer than the tensor has left (but under the chunk cap).
  Bytes over = frame(encode_header(p.header));
  append(over, frame(pseudo_random(101, 1)));
  CHECK(PayloadReader(expectations()).feed(over).code() == StatusCode::kCorrupt);

  // A zero-length tensor frame.
  Bytes zero = frame(encode_header(p.header));
  zero.push_back(0);
  CHECK_FALSE(PayloadReader(expectations()).feed(zero).ok());
}

TEST_CASE("a tensor that does not match its sha256 is refused, naming it", "[wire][exchange]") {
  Payload p = small_payload();
  p.tensors[1][7] ^= 1;  // header keeps the hash of the original bytes
  PayloadReader r(expectations());
  Status st = r.feed(encode_payload(p));
  CHECK(st.code() == StatusCode::kCorrupt);
  CHECK(st.message().find("'phi'") != std::string::npos);
}

TEST_CASE("frames that split a tensor differently still reassemble, frames never span tensors", "[wire][exchange]") {
  const Payload p = small_payload();
  Bytes wire = frame(encode_header(p.header));
  for (size_t off = 0; off < 100; off += 30)
    append(wire, frame(ByteView(p.tensors[0]).subspan(off, std::min<size_t>(30, 100 - off))));
  append(wire, frame(p.tensors[1]));
  CHECK(reads_ok(wire));

  // One frame holding the end of delta and the start of phi.
  Bytes spanning = frame(encode_header(p.header));
  append(spanning, frame(ByteView(p.tensors[0]).first(50)));
  Bytes mixed(p.tensors[0].begin() + 50, p.tensors[0].end());
  mixed.insert(mixed.end(), p.tensors[1].begin(), p.tensors[1].begin() + 10);
  append(spanning, frame(mixed));
  CHECK_FALSE(reads_ok(spanning));
}

TEST_CASE("error payloads complete the read and carry the reason", "[wire][exchange]") {
  const Payload e = make_error_payload("no snapshot yet");
  const Bytes wire = encode_payload(e);
  // Accepted as-is, whatever the expectations.
  ExchangeExpectations other = expectations();
  other.run_id = "someone else";
  for (size_t k = 0; k <= wire.size(); ++k) {
    PayloadReader r(other);
    REQUIRE(r.feed(ByteView(wire).first(k)).ok());
    REQUIRE(r.feed(ByteView(wire).subspan(k)).ok());
    REQUIRE(r.done());
    auto got = r.take();
    REQUIRE(got.ok());
    CHECK(got->header.error == "no snapshot yet");
    CHECK(got->tensors.empty());
  }
  CHECK(check_header(e.header, expectations()).code() == StatusCode::kUnavailable);
  CHECK(check_header(e.header, expectations()).message().find("no snapshot yet") != std::string::npos);
  CHECK(make_error_payload("").header.error == "refused");
  CHECK(make_error_payload(std::string(5000, 'x')).header.error.size() == kMaxExchangeErrorBytes);
  CHECK(reads_ok(encode_payload(make_error_payload(std::string(5000, 'x')))));

  // A refusal that also lists tensors is malformed.
  PayloadHeader h = small_payload().header;
  h.error = "nope";
  CHECK(decode_header(encode_header(h)).status().code() == StatusCode::kCorrupt);
}

TEST_CASE("check_header names each mismatch", "[wire][exchange]") {
  const PayloadHeader good = small_payload().header;
  const auto e = expectations(1000);
  REQUIRE(check_header(good, e).ok());
  auto msg = [&](const PayloadHeader& h, const ExchangeExpectations& ex) {
    Status st = check_header(h, ex);
    REQUIRE_FALSE(st.ok());
    return st.message();
  };
  {
    PayloadHeader h = good;
    h.version = 2;
    CHECK(check_header(h, e).code() == StatusCode::kUnsupported);
  }
  {
    PayloadHeader h = good;
    h.run_id = "feedfacefeedfacefeedfacefeedface";
    CHECK(msg(h, e) == "payload is for run feedfacefeedfacefeedfacefeedface, we train run "
                       "0123456789abcdef0123456789abcdef");
  }
  {
    PayloadHeader h = good;
    h.sender = "12D3KooWImpostor";
    CHECK(msg(h, e).find("12D3KooWImpostor") != std::string::npos);
    ExchangeExpectations any = e;
    any.sender.clear();
    CHECK(check_header(h, any).ok());
  }
  {
    PayloadHeader h = good;
    h.form = WireForm::kTheta;
    CHECK(msg(h, e).find("theta") != std::string::npos);
  }
  {
    PayloadHeader h = good;
    std::swap(h.tensors[0], h.tensors[1]);
    CHECK(msg(h, e).find("'phi', expected 'delta'") != std::string::npos);
  }
  {
    PayloadHeader h = good;
    h.tensors.pop_back();
    CHECK(msg(h, e).find("lists 1 tensors") != std::string::npos);
    h.tensors.clear();
    CHECK_FALSE(check_header(h, e).ok());
  }
  {
    PayloadHeader h = good;
    h.numel = 999;
    CHECK(msg(h, e).find("999 elements") != std::string::npos);
  }
  {
    PayloadHeader h = good;
    h.tensors[0].encoded_bytes = 0;
    CHECK(check_header(h, e).code() == StatusCode::kTooLarge);
    h.tensors[0].encoded_bytes = 1001;
    CHECK(msg(h, e).find("'delta' declares 1001 bytes") != std::string::npos);
    h.tensors[0].encoded_bytes = 1000;
    CHECK(check_header(h, e).ok());
  }
  {
    PayloadHeader h = good;
    h.tensors[1].sha256.resize(31);
    CHECK(msg(h, e).find("'phi' has a 31-byte sha256") != std::string::npos);
  }
  // The reader applies the same checks before any tensor byte.
  PayloadHeader h = good;
  h.numel = 5;
  PayloadReader r(e);
  CHECK_FALSE(r.feed(frame(encode_header(h))).ok());
}

TEST_CASE("decode_header is strict: digest, canonical form, caps, types", "[wire][exchange]") {
  const PayloadHeader good = small_payload().header;
  const Bytes enc = encode_header(good);
  auto back = decode_header(enc);
  REQUIRE(back.ok());
  CHECK(back->outer_step == 7);
  CHECK(back->inner_step == 140);

  auto with_digest = [](const msgpack::sbuffer& buf) {
    Bytes b(buf.data(), buf.data() + buf.size());
    const Sha256Digest d = sha256(b);
    b.insert(b.end(), d.begin(), d.end());
    return b;
  };
  {
    // version written as uint16: decodes to 1 but is not the canonical form.
    msgpack::sbuffer buf;
    msgpack::packer<msgpack::sbuffer> pk(buf);
    pk.pack_array(9);
    const char v[] = {static_cast<char>(0xcd), 0x00, 0x01};
    buf.write(v, 3);
    pk.pack(std::string());
    pk.pack(std::string("r"));
    pk.pack(std::string("s"));
    pk.pack_uint64(0);
    pk.pack_uint64(0);
    pk.pack_uint8(0);
    pk.pack_uint64(0);
    pk.pack_array(0);
    auto r = decode_header(with_digest(buf));
    REQUIRE_FALSE(r.ok());
    CHECK(r.status().message().find("canonical") != std::string::npos);
  }
  {
    // A map instead of an array; a string where a number goes; an unknown form.
    msgpack::sbuffer buf;
    msgpack::packer<msgpack::sbuffer> pk(buf);
    pk.pack_map(1);
    pk.pack(std::string("v"));
    pk.pack_uint8(1);
    CHECK_FALSE(decode_header(with_digest(buf)).ok());
  }
  {
    msgpack::sbuffer buf;
    msgpack::packer<msgpack::sbuffer> pk(buf);
    pk.pack_array(9);
    pk.pack_uint8(1);
    pk.pack(std::string());
    pk.pack(std::string("r"));
    pk.pack(std::string("s"));
    pk.pack(std::string("seven"));
    pk.pack_uint64(0);
    pk.pack_uint8(0);
    pk.pack_uint64(0);
    pk.pack_array(0);
    auto r = decode_header(with_digest(buf));
    REQUIRE_FALSE(r.ok());
    CHECK(r.status().message().find("outer_step") != std::string::npos);
  }
  {
    PayloadHeader h = good;
    h.form = static_cast<WireForm>(2);
    CHECK(decode_header(encode_header(h)).status().message().find("unknown form") != std::string::npos);
  }
  {
    PayloadHeader h = good;
    h.version = 9;
    CHECK(decode_header(encode_header(h)).status().code() == StatusCode::kUnsupported);
  }
  {
    PayloadHeader h = good;
    h.run_id = std::string(kMaxExchangeIdBytes + 1, 'r');
    CHECK(decode_header(encode_header(h)).status().code() == StatusCode::kTooLarge);
  }
  {
    PayloadHeader h = good;
    h.tensors.push_back(h.tensors[0]);  // 3 tensors
    CHECK_FALSE(decode_header(encode_header(h)).ok());
  }
  {
    PayloadHeader h = good;
    h.error = std::string(kMaxExchangeErrorBytes + 1, 'e');
    h.tensors.clear();
    CHECK_FALSE(decode_header(encode_header(h)).ok());
  }
  // Digest damaged / too short / oversized frame.
  Bytes bad = enc;
  bad.back() ^= 1;
  CHECK(decode_header(bad).status().message().find("digest") != std::string::npos);
  CHECK_FALSE(decode_header(ByteView(enc).first(32)).ok());
  Bytes big(kMaxExchangeHeaderBytes + 1, 0);
  CHECK(decode_header(big).status().code() == StatusCode::kTooLarge);
}
