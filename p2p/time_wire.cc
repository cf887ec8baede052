#include "p2p/time_wire.h"

namespace noloco::p2p::timeproto {

Bytes encode_time_reply(uint64_t unix_ms) {
  Bytes out(kTimeReplySize);
  for (size_t i = 0; i < kTimeReplySize; ++i) out[i] = static_cast<uint8_t>(unix_ms >> (8 * (kTimeReplySize - 1 - i)));
  return out;
}

Result<uint64_t> decode_time_reply(ByteView reply) {
  if (reply.size() != kTimeReplySize)
    return protocol_error("time: the reply is " + std::to_string(reply.size()) + " bytes, not 8");
  uint64_t v = 0;
  for (uint8_t b : reply) v = (v << 8) | b;
  if (v < kMinPlausibleUnixMs || v >= kMaxPlausibleUnixMs)
    return protocol_error("time: " + std::to_string(v) + " is not a Unix time in milliseconds between 2020 and 2200");
  return v;
}

Result<ClockSample> clock_sample(int64_t t_send_unix_us, int64_t rtt_us, uint64_t peer_unix_ms) {
  if (rtt_us < 0) return invalid_argument("time: negative round trip");
  ClockSample s;
  // Midpoint in microseconds, so a sub-millisecond loopback round trip is not rounded away.
  const int64_t mid_us = t_send_unix_us + rtt_us / 2;
  const int64_t offset_us = static_cast<int64_t>(peer_unix_ms) * 1000 - mid_us;
  s.offset_ms = offset_us >= 0 ? (offset_us + 500) / 1000 : -((-offset_us + 500) / 1000);
  // The peer's reading is truncated to whole milliseconds, so up to 1 ms more on top of rtt/2.
  s.error_ms = (rtt_us / 2 + 999) / 1000 + 1;
  s.rtt_ms = (rtt_us + 999) / 1000;
  return s;
}

}  // namespace noloco::p2p::timeproto
