#include "p2p/protobuf.h"

#include <string>

#include "common/varint.h"

namespace noloco::p2p::pb {

void Writer::add_tag(uint32_t field, WireType type) {
  put_varint(out_, (uint64_t{field} << 3) | static_cast<uint64_t>(type));
}

void Writer::add_varint(uint32_t field, uint64_t value) {
  add_tag(field, WireType::kVarint);
  put_varint(out_, value);
}

void Writer::add_bytes(uint32_t field, ByteView value) {
  add_tag(field, WireType::kLengthDelimited);
  put_varint(out_, value.size());
  append(out_, value);
}

Result<Field> Reader::next() {
  if (done()) return truncated("protobuf: no more fields");
  ByteView rest = in_.subspan(pos_);
  // Tags and varint values use protobuf's lenient varint rules (up to 10 bytes, non-minimal
  // allowed); a varint cut off by the end of the message is corrupt, not "need more bytes".
  auto tag = read_protobuf_varint(rest);
  if (!tag.ok()) return corrupt("protobuf: bad tag: " + tag.status().message());
  uint64_t number = tag->value >> 3;
  if (number == 0 || number > 0x1fffffff) return corrupt("protobuf: bad field number");
  Field f;
  f.number = static_cast<uint32_t>(number);
  size_t used = tag->consumed;
  switch (tag->value & 7) {
    case 0: {
      auto v = read_protobuf_varint(rest.subspan(used));
      if (!v.ok()) return corrupt("protobuf: bad varint field: " + v.status().message());
      f.type = WireType::kVarint;
      f.value = v->value;
      used += v->consumed;
      break;
    }
    case 1:
    case 5: {
      size_t width = (tag->value & 7) == 1 ? 8 : 4;
      if (rest.size() - used < width) return corrupt("protobuf: fixed-width field past the end");
      f.type = (tag->value & 7) == 1 ? WireType::kFixed64 : WireType::kFixed32;
      f.data = rest.subspan(used, width);
      used += width;
      break;
    }
    case 2: {
      auto len = read_protobuf_varint(rest.subspan(used));
      if (!len.ok()) return corrupt("protobuf: bad length: " + len.status().message());
      used += len->consumed;
      if (len->value > max_field_bytes_) {
        return too_large("protobuf: field " + std::to_string(number) + " of " + std::to_string(len->value) +
                         " bytes over the cap of " + std::to_string(max_field_bytes_));
      }
      if (len->value > rest.size() - used) return corrupt("protobuf: field length past the end");
      f.type = WireType::kLengthDelimited;
      f.data = rest.subspan(used, static_cast<size_t>(len->value));
      used += static_cast<size_t>(len->value);
      break;
    }
    default:
      return corrupt("protobuf: unsupported wire type " + std::to_string(tag->value & 7));
  }
  pos_ += used;
  return f;
}

}  // namespace noloco::p2p::pb
