// The yamux frame header: 12 bytes, big-endian (libp2p/specs yamux/README.md, hashicorp
// yamux spec.md). The header is the whole wire format; a Data frame is followed by `length`
// payload bytes, every other type carries its value in `length` itself.
#pragma once

#include <cstdint>

#include "common/bytes.h"
#include "common/status.h"

namespace noloco::p2p::yamux {

constexpr size_t kHeaderSize = 12;
constexpr uint8_t kVersion = 0;

enum class FrameType : uint8_t { kData = 0, kWindowUpdate = 1, kPing = 2, kGoAway = 3 };

// Flags may be combined (e.g. SYN on the first frame of a stream, FIN with the last data).
enum Flag : uint16_t { kSyn = 0x1, kAck = 0x2, kFin = 0x4, kRst = 0x8 };

// GoAway codes.
enum class GoAwayCode : uint32_t { kNormal = 0, kProtocolError = 1, kInternalError = 2 };

// The spec's initial per-stream window, before any WindowUpdate.
constexpr uint32_t kInitialWindow = 256 * 1024;

struct Header {
  uint8_t version = kVersion;
  FrameType type = FrameType::kData;
  uint16_t flags = 0;
  uint32_t stream_id = 0;
  uint32_t length = 0;  // payload size (Data), window delta (WindowUpdate), opaque (Ping), code (GoAway)
};

void encode_header(Bytes& out, const Header& h);
// `in` must hold at least kHeaderSize bytes. Rejects unknown versions, types and flag bits.
Result<Header> decode_header(const uint8_t* in);

}  // namespace noloco::p2p::yamux
