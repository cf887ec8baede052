// /noloco/time/1.0.0 (docs/protocols/time.md): a peer's wall clock, so `noloco doctor` can tell
// how far this machine's clock is from its peers'. Sans-IO: the reply's bytes and the NTP-style
// offset estimate; time_service.h reads and writes them on a Host.
//
//   client: opens the stream, sends nothing, half-closes (FIN)
//   server: on that FIN, replies 8 bytes, its Unix time in milliseconds, unsigned big-endian; FIN
//
// The client stamps its own clock when it sends the FIN (t_send) and times the round trip on a
// monotonic clock; the server's reading lies somewhere in that round trip, so
//   offset = peer_ms - (t_send + rtt / 2),  |error| <= rtt / 2.
#pragma once

#include <cstdint>
#include <string_view>

#include "common/bytes.h"
#include "common/status.h"

namespace noloco::p2p::timeproto {

inline constexpr std::string_view kTimeProtocolId = "/noloco/time/1.0.0";
inline constexpr size_t kTimeReplySize = 8;
// Readings outside [2020-01-01, 2200-01-01) are refused: a peer that sends one is not reporting
// a clock (zero, a counter, seconds instead of milliseconds).
inline constexpr uint64_t kMinPlausibleUnixMs = 1577836800000ull;
inline constexpr uint64_t kMaxPlausibleUnixMs = 7258118400000ull;

Bytes encode_time_reply(uint64_t unix_ms);
// kProtocolError unless exactly 8 bytes holding a plausible reading.
Result<uint64_t> decode_time_reply(ByteView reply);

struct ClockSample {
  int64_t offset_ms = 0;  // peer's clock minus ours (positive: the peer is ahead)
  int64_t error_ms = 0;   // bound on |true offset - offset_ms|: half the round trip, rounded up
  int64_t rtt_ms = 0;
};
// t_send_unix_us: our wall clock when the request left (microseconds); rtt_us: the round trip
// measured on a monotonic clock (microseconds, >= 0).
Result<ClockSample> clock_sample(int64_t t_send_unix_us, int64_t rtt_us, uint64_t peer_unix_ms);

}  // namespace noloco::p2p::timeproto
