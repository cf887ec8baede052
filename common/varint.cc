#include "common/varint.h"

namespace noloco {

void put_varint(Bytes& out, uint64_t value) {
  while (value >= 0x80) {
    out.push_back(static_cast<uint8_t>(value | 0x80));
    value >>= 7;
  }
  out.push_back(static_cast<uint8_t>(value));
}

size_t varint_size(uint64_t value) {
  size_t n = 1;
  while (value >= 0x80) {
    value >>= 7;
    ++n;
  }
  return n;
}

static Result<VarintRead> read_varint_impl(ByteView in, size_t max_bytes, bool require_minimal) {
  uint64_t value = 0;
  for (size_t i = 0; i < in.size(); ++i) {
    if (i >= max_bytes) return corrupt("varint longer than " + std::to_string(max_bytes) + " bytes");
    uint8_t b = in[i];
    value |= static_cast<uint64_t>(b & 0x7f) << (7 * i);
    if ((b & 0x80) == 0) {
      if (require_minimal && b == 0 && i > 0) return corrupt("varint not minimally encoded");
      return VarintRead{value, i + 1};
    }
  }
  if (in.size() >= max_bytes) return corrupt("varint longer than " + std::to_string(max_bytes) + " bytes");
  return truncated("varint incomplete");
}

Result<VarintRead> read_varint(ByteView in) { return read_varint_impl(in, kMaxVarintBytes, true); }

Result<VarintRead> read_protobuf_varint(ByteView in) { return read_varint_impl(in, 10, false); }

}  // namespace noloco
