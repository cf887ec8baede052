#include "storage/value_codec.h"

#include <bit>
#include <cstring>

#include "common/hash.h"
#include "common/varint.h"

namespace noloco::storage {

namespace {
// Distinguishes a record checksum from a blob checksum of the same bytes.
constexpr uint64_t kRecordSeed = 0x6e6f6c6f636f7231ULL;  // "nolocor1"

uint64_t record_checksum(uint8_t version, ByteView body) {
  // legacy_hash64 only to read records written before xxHash (docs/storage.md, "Compatibility").
  return version <= kLegacyChecksumRecordVersion ? legacy_hash64(body, kRecordSeed) : xxh3_64(body, kRecordSeed);
}
}  // namespace

void ValueWriter::u64(uint64_t v) {
  if (v >= (uint64_t{1} << 63)) overflow_ = true;
  put_varint(out_, v);
}

void ValueWriter::fixed64(uint64_t v) { put_u64_le(out_, v); }

void ValueWriter::i64(int64_t v) {
  uint64_t u = v;
  u64((u << 1) ^ static_cast<uint64_t>(v >> 63));
}

void ValueWriter::f64(double v) { put_u64_le(out_, std::bit_cast<uint64_t>(v)); }

void ValueWriter::str(std::string_view s) {
  put_varint(out_, s.size());
  append(out_, as_bytes(s));
}

Result<Bytes> ValueWriter::seal() && {
  if (overflow_) return invalid_argument("a counter is 2^63 or more");
  if (out_[0] <= kLegacyChecksumRecordVersion) return invalid_argument("record version 1 is read-only");
  uint64_t h = record_checksum(out_[0], out_);
  put_u64_le(out_, h);
  return std::move(out_);
}

Result<ValueReader> ValueReader::open(ByteView in, uint8_t newest_version, const char* what) {
  if (in.size() < 9) return corrupt(std::string(what) + " record: " + std::to_string(in.size()) + " bytes is too short");
  ByteView body = in.first(in.size() - 8);
  const uint64_t stored = get_u64_le(in.data() + body.size());
  const uint8_t version = body[0];
  if (version == 0 || version > newest_version) {
    // A record of a newer build (checksummed as ours are) or a damaged version byte.
    if (xxh3_64(body, kRecordSeed) != stored) return corrupt(std::string(what) + " record: checksum mismatch");
    return unsupported(std::string(what) + " record version " + std::to_string(version) +
                       " (this build reads versions 1 to " + std::to_string(newest_version) + ")");
  }
  if (record_checksum(version, body) != stored) return corrupt(std::string(what) + " record: checksum mismatch");
  ValueReader r(body, what);
  r.pos_ = 1;
  return r;
}

Result<uint64_t> ValueReader::u64() {
  auto v = read_varint(in_.subspan(pos_));
  if (!v.ok()) return err(v.status().message());
  pos_ += v->consumed;
  return v->value;
}

Result<int64_t> ValueReader::i64() {
  NOLOCO_ASSIGN_OR_RETURN(uint64_t u, u64());
  return static_cast<int64_t>((u >> 1) ^ (~(u & 1) + 1));
}

Result<uint64_t> ValueReader::fixed64() {
  if (in_.size() - pos_ < 8) return err("truncated fixed64");
  uint64_t u = get_u64_le(in_.data() + pos_);
  pos_ += 8;
  return u;
}

Result<double> ValueReader::f64() {
  NOLOCO_ASSIGN_OR_RETURN(uint64_t u, fixed64());
  return std::bit_cast<double>(u);
}

Result<std::string> ValueReader::str(size_t cap) {
  NOLOCO_ASSIGN_OR_RETURN(uint64_t n, u64());
  if (n > cap) return err("string of " + std::to_string(n) + " bytes over cap " + std::to_string(cap));
  if (n > in_.size() - pos_) return err("string runs past the end");
  std::string s(reinterpret_cast<const char*>(in_.data() + pos_), n);
  pos_ += n;
  return s;
}

Result<uint64_t> ValueReader::count(uint64_t cap) {
  NOLOCO_ASSIGN_OR_RETURN(uint64_t n, u64());
  if (n > cap) return err("count " + std::to_string(n) + " over cap " + std::to_string(cap));
  return n;
}

Status ValueReader::finish() const {
  if (pos_ != in_.size()) return err(std::to_string(in_.size() - pos_) + " unexpected trailing bytes");
  return Status::Ok();
}

}  // namespace noloco::storage
