// Unsigned LEB128 varints as multiformats and protobuf use them.
// Decoding is strict: at most 9 bytes (the multiformats cap, values < 2^63) and minimally
// encoded, because a lenient decoder lets a peer smuggle a huge length past a size check.
#pragma once

#include <cstdint>

#include "common/bytes.h"
#include "common/status.h"

namespace noloco {

constexpr size_t kMaxVarintBytes = 9;

void put_varint(Bytes& out, uint64_t value);
size_t varint_size(uint64_t value);

struct VarintRead {
  uint64_t value = 0;
  size_t consumed = 0;  // bytes used from the input
};

// kTruncated when the input ends inside the varint (more bytes may complete it);
// kCorrupt when it is longer than 9 bytes or not minimal.
Result<VarintRead> read_varint(ByteView in);

// Protobuf fields may carry 10-byte varints (negative int64s); this variant allows up to 10
// bytes and does not insist on minimal form, as protobuf decoders must accept.
Result<VarintRead> read_protobuf_varint(ByteView in);

}  // namespace noloco
