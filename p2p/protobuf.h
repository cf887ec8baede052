// A tiny protobuf (proto3/proto2 wire format) reader and writer for the handful of small
// libp2p messages we speak: PublicKey/PrivateKey, NoiseHandshakePayload, Identify.
// Only the wire types those use are supported: varint (0) and length-delimited (2).
// 64-bit (1) and 32-bit (5) fields are skipped when read, never written.
//
// The reader is for hostile input: every length is checked against the bytes actually
// present and against a caller-given cap before anything is copied, and a truncated or
// malformed field is an error, never a partial value. Wire format:
// https://protobuf.dev/programming-guides/encoding/
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "common/bytes.h"
#include "common/status.h"

namespace noloco::p2p::pb {

enum class WireType : uint8_t { kVarint = 0, kFixed64 = 1, kLengthDelimited = 2, kFixed32 = 5 };

// Appends fields to a buffer. Field numbers must be 1..2^29-1.
class Writer {
 public:
  void add_varint(uint32_t field, uint64_t value);
  void add_bytes(uint32_t field, ByteView value);
  void add_string(uint32_t field, std::string_view value) { add_bytes(field, as_bytes(value)); }

  const Bytes& bytes() const { return out_; }
  Bytes take() { return std::move(out_); }

 private:
  void add_tag(uint32_t field, WireType type);
  Bytes out_;
};

// One decoded field. For kLengthDelimited, `data` views the input buffer (no copy);
// for kVarint, `value` holds the number. Fixed-width fields expose their raw bytes in `data`.
struct Field {
  uint32_t number = 0;
  WireType type = WireType::kVarint;
  uint64_t value = 0;
  ByteView data;
};

// Walks the fields of one message in order. Usage:
//   pb::Reader r(bytes);
//   while (!r.done()) { NOLOCO_ASSIGN_OR_RETURN(pb::Field f, r.next()); switch (f.number) ... }
// Unknown fields should be ignored by the caller (protobuf forward compatibility).
class Reader {
 public:
  // max_field_bytes caps every length-delimited field; the whole message is already bounded
  // by the size of `in`.
  explicit Reader(ByteView in, size_t max_field_bytes = 64 * 1024)
      : in_(in), max_field_bytes_(max_field_bytes) {}

  bool done() const { return pos_ >= in_.size(); }
  // kCorrupt on a bad tag, field number 0, an unsupported wire type (3/4: groups) or a
  // length past the end; kTooLarge on a length over max_field_bytes.
  Result<Field> next();

 private:
  ByteView in_;
  size_t pos_ = 0;
  size_t max_field_bytes_;
};

}  // namespace noloco::p2p::pb
