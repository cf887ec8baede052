// Header layout: docs/protocols/allreduce.md. All integers little-endian.
#include "trainer/node/allreduce_wire.h"

#include <cstring>

#include "common/hash.h"

namespace noloco::node {
namespace {

constexpr uint8_t kMagic[4] = {'N', 'L', 'A', 'R'};

template <typename T>
void put(uint8_t* p, T v) {
  for (size_t i = 0; i < sizeof(T); ++i) p[i] = static_cast<uint8_t>(static_cast<uint64_t>(v) >> (8 * i));
}
template <typename T>
T get(const uint8_t* p) {
  uint64_t v = 0;
  for (size_t i = 0; i < sizeof(T); ++i) v |= static_cast<uint64_t>(p[i]) << (8 * i);
  return static_cast<T>(v);
}
uint64_t tag_of(ByteView bytes) { return get<uint64_t>(sha256(bytes).data()); }

}  // namespace

uint64_t run_tag_of(std::string_view run_id) { return tag_of(as_bytes(run_id)); }

uint64_t members_tag_of(const std::vector<std::string>& ordered_ids) {
  std::string joined;
  for (const auto& id : ordered_ids) joined += id + "\n";
  return tag_of(as_bytes(joined));
}

uint64_t allreduce_payload_bytes(codec::Mode encoding, uint32_t count) {
  return codec::raw_payload_bytes(encoding, count, kAllReduceBlock);
}

void encode_allreduce_header(const AllReduceHeader& h, uint8_t* p) {
  std::memcpy(p, kMagic, 4);
  p[4] = kAllReduceVersion;
  p[5] = static_cast<uint8_t>(h.kind);
  p[6] = static_cast<uint8_t>(h.encoding);
  p[7] = 0;
  put<uint64_t>(p + 8, h.round.run_tag);
  put<uint64_t>(p + 16, h.round.outer_step);
  put<uint32_t>(p + 24, h.round.attempt);
  put<uint32_t>(p + 28, h.members);
  put<uint64_t>(p + 32, h.round.members_tag);
  put<uint32_t>(p + 40, h.sender);
  put<uint32_t>(p + 44, h.step);
  put<uint32_t>(p + 48, h.segment);
  put<uint32_t>(p + 52, h.chunk_elems);
  put<uint32_t>(p + 56, h.offset);
  put<uint32_t>(p + 60, h.count);
}

Bytes encode_allreduce_header(const AllReduceHeader& h) {
  Bytes out(kAllReduceHeaderBytes);
  encode_allreduce_header(h, out.data());
  return out;
}

Result<AllReduceHeader> decode_allreduce_header(ByteView b) {
  if (b.size() < kAllReduceHeaderBytes) return truncated("allreduce header: need 64 bytes");
  const uint8_t* p = b.data();
  if (std::memcmp(p, kMagic, 4) != 0) return corrupt("allreduce header: bad magic");
  if (p[4] == 1) return unsupported("allreduce header: version 1 (fp32-only ring): the sender runs an older noloco");
  if (p[4] != kAllReduceVersion)
    return unsupported("allreduce header: version " + std::to_string(p[4]) + ", this build speaks " +
                       std::to_string(kAllReduceVersion));
  if (p[5] != 1 && p[5] != 2) return corrupt("allreduce header: unknown kind " + std::to_string(p[5]));
  AllReduceHeader h;
  if (p[6] > static_cast<uint8_t>(codec::Mode::kInt4))
    return unsupported("allreduce header: unknown value encoding " + std::to_string(p[6]));
  if (p[7] != 0) return corrupt("allreduce header: reserved byte is not zero");
  h.kind = static_cast<AllReduceKind>(p[5]);
  h.encoding = static_cast<codec::Mode>(p[6]);
  h.round.run_tag = get<uint64_t>(p + 8);
  h.round.outer_step = get<uint64_t>(p + 16);
  h.round.attempt = get<uint32_t>(p + 24);
  h.members = get<uint32_t>(p + 28);
  h.round.members_tag = get<uint64_t>(p + 32);
  h.sender = get<uint32_t>(p + 40);
  h.step = get<uint32_t>(p + 44);
  h.segment = get<uint32_t>(p + 48);
  h.chunk_elems = get<uint32_t>(p + 52);
  h.offset = get<uint32_t>(p + 56);
  h.count = get<uint32_t>(p + 60);
  if (h.members > kMaxAllReduceMembers) return too_large("allreduce header: " + std::to_string(h.members) + " members");
  if (h.chunk_elems > kMaxAllReduceChunkElems || h.count > h.chunk_elems)
    return too_large("allreduce header: chunk of " + std::to_string(h.count) + "/" + std::to_string(h.chunk_elems));
  if (h.kind == AllReduceKind::kReady && h.count != 0) return corrupt("allreduce header: READY with a payload");
  return h;
}

}  // namespace noloco::node
