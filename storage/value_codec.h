// The explicit binary layout every stored record uses (docs/storage.md, "Record values"):
//   [u8 record version][fields...][u64 LE checksum of everything before it]
// The checksum follows from the version byte: version 1 records (written before schema
// version 2) carry legacy_hash64 and are only ever read; later versions carry xxh3_64.
// Fields are unsigned varints, zigzag varints, little-endian f64 and length-prefixed strings.
// The reader checks each length against a cap before it allocates anything.
#pragma once

#include <cstdint>
#include <string>

#include "common/bytes.h"
#include "common/status.h"

namespace noloco::storage {

// The last record version whose checksum is legacy_hash64. Never written any more.
inline constexpr uint8_t kLegacyChecksumRecordVersion = 1;

class ValueWriter {
 public:
  // `version` must be above kLegacyChecksumRecordVersion: new records carry xxh3_64.
  explicit ValueWriter(uint8_t version) { out_.push_back(version); }

  void u64(uint64_t v);  // values >= 2^63 make seal() fail (the strict varint cap)
  void i64(int64_t v);   // zigzag, so small negatives stay short
  void fixed64(uint64_t v);
  void f64(double v);
  void str(std::string_view s);  // caller has checked the cap
  Result<Bytes> seal() &&;       // appends the checksum

 private:
  Bytes out_;
  bool overflow_ = false;
};

class ValueReader {
 public:
  // Checks the version byte (1..newest_version) and the trailing checksum it implies; `what`
  // names the record in errors.
  static Result<ValueReader> open(ByteView in, uint8_t newest_version, const char* what);

  uint8_t version() const { return in_[0]; }

  Result<uint64_t> u64();
  Result<int64_t> i64();
  Result<uint64_t> fixed64();
  Result<double> f64();
  Result<std::string> str(size_t cap);
  // A count that is about to size a loop or a container.
  Result<uint64_t> count(uint64_t cap);
  // Every field consumed: trailing bytes mean a layout we do not understand.
  Status finish() const;

 private:
  ValueReader(ByteView body, const char* what) : in_(body), what_(what) {}
  Status err(const std::string& m) const { return corrupt(std::string(what_) + " record: " + m); }
  ByteView in_;
  size_t pos_ = 0;
  const char* what_;
};

}  // namespace noloco::storage
