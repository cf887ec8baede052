// The fixed 64-byte header of every /noloco/allreduce/1.0.0 message (version 2) (docs/protocols/allreduce.md)
// and the tags that name a round. Sans-IO, no torch, no Asio: plain bytes in and out.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/bytes.h"
#include "common/status.h"
#include "trainer/core/codec.h"

namespace noloco::node {

inline constexpr std::string_view kAllReduceProtocolId = "/noloco/allreduce/1.0.0";
inline constexpr size_t kAllReduceHeaderBytes = 64;
// 2: byte 6 names the value encoding (version 1 carried fp32 only and is refused).
inline constexpr uint8_t kAllReduceVersion = 2;
// int8/int4 payloads: one fp32 scale per block of this many values, blocks starting at the
// chunk's first value (fixed: the header has no room for it, and 128 is the codec's default).
inline constexpr uint32_t kAllReduceBlock = 128;
// Caps checked before anything is allocated: members of one ring, floats per vector, floats per chunk.
inline constexpr uint32_t kMaxAllReduceMembers = 1024;
inline constexpr uint64_t kMaxAllReduceElements = uint64_t{1} << 31;
inline constexpr uint32_t kMaxAllReduceChunkElems = 1u << 22;  // 16 MiB of fp32

// Everything that must be equal on all members of one attempt of one round.
struct RoundId {
  uint64_t run_tag = 0;      // first 8 bytes of SHA-256(run id)
  uint64_t outer_step = 0;
  uint32_t attempt = 0;
  uint64_t members_tag = 0;  // first 8 bytes of SHA-256 of the ring-ordered member ids
  bool operator==(const RoundId&) const = default;
};

enum class AllReduceKind : uint8_t { kReady = 1, kData = 2 };

struct AllReduceHeader {
  AllReduceKind kind = AllReduceKind::kData;
  RoundId round;
  uint32_t members = 0;      // ring size (kData); 0 in kReady
  uint32_t sender = 0;       // sender's rank in the ring (kData)
  uint32_t step = 0;         // 0 .. 2(members-1)-1
  uint32_t segment = 0;
  uint32_t chunk_elems = 0;  // the sender's chunk size, must equal ours
  uint32_t offset = 0;       // first element of this chunk within the segment
  uint32_t count = 0;        // values that follow the header, encoded as `encoding` says
  codec::Mode encoding = codec::Mode::kFp32;  // must equal ours
};

// Payload bytes of a DATA message of `count` values (codec raw layout, kAllReduceBlock).
uint64_t allreduce_payload_bytes(codec::Mode encoding, uint32_t count);

uint64_t run_tag_of(std::string_view run_id);
uint64_t members_tag_of(const std::vector<std::string>& ordered_ids);

void encode_allreduce_header(const AllReduceHeader& h, uint8_t* out);  // writes kAllReduceHeaderBytes
Bytes encode_allreduce_header(const AllReduceHeader& h);
// Checks magic, version, kind, encoding, reserved byte and the caps; the ring checks the rest.
Result<AllReduceHeader> decode_allreduce_header(ByteView bytes);

}  // namespace noloco::node
