#include "p2p/yamux_frame.h"

#include <string>

namespace noloco::p2p::yamux {

void encode_header(Bytes& out, const Header& h) {
  out.push_back(h.version);
  out.push_back(static_cast<uint8_t>(h.type));
  put_u16_be(out, h.flags);
  put_u32_be(out, h.stream_id);
  put_u32_be(out, h.length);
}

Result<Header> decode_header(const uint8_t* in) {
  Header h;
  h.version = in[0];
  if (h.version != kVersion) return protocol_error("yamux: unknown version " + std::to_string(h.version));
  if (in[1] > static_cast<uint8_t>(FrameType::kGoAway)) {
    return protocol_error("yamux: unknown frame type " + std::to_string(in[1]));
  }
  h.type = static_cast<FrameType>(in[1]);
  h.flags = get_u16_be(in + 2);
  if (h.flags & ~uint16_t{kSyn | kAck | kFin | kRst}) return protocol_error("yamux: unknown flag bits");
  h.stream_id = get_u32_be(in + 4);
  h.length = get_u32_be(in + 8);
  return h;
}

}  // namespace noloco::p2p::yamux
