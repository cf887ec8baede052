#include "trainer/node/allreduce_ring.h"

#include <algorithm>
#include <array>
#include <bit>
#include <cmath>
#include <cstring>
#include <string>

namespace noloco::node {

static_assert(std::endian::native == std::endian::little, "fp32 payloads are copied as little-endian bytes");

Result<RingAllReduce> RingAllReduce::create(const RingConfig& c, std::vector<float> data) {
  if (c.size == 0 || c.size > kMaxAllReduceMembers) return invalid_argument("allreduce: ring size out of range");
  if (c.rank >= c.size) return invalid_argument("allreduce: rank outside the ring");
  if (c.chunk_elems == 0 || c.chunk_elems > kMaxAllReduceChunkElems)
    return invalid_argument("allreduce: chunk size out of range");
  if (data.size() > kMaxAllReduceElements) return too_large("allreduce: vector too long");
  if (!all_finite(data.data(), data.size())) return invalid_argument("allreduce: one of our own values is not finite");
  return RingAllReduce(c, std::move(data));
}

RingAllReduce::RingAllReduce(const RingConfig& c, std::vector<float> data)
    : cfg_(c), acc_(std::move(data)), total_steps_(2 * (c.size - 1)) {}

// Reduce-scatter step t: send segment r-t, receive r-t-1 (added). All-gather step u = t-(N-1):
// send r+1-u, receive r-u (copied). What arrives at step t is what leaves at step t+1.
uint32_t RingAllReduce::segment_sent_at(uint32_t t) const {
  const uint32_t n = cfg_.size, r = cfg_.rank;
  if (t < n - 1) return (r + n - t) % n;
  return (r + 1 + n - (t - (n - 1)) % n) % n;
}
uint32_t RingAllReduce::segment_received_at(uint32_t t) const { return segment_sent_at(t + 1); }

size_t RingAllReduce::seg_len(uint32_t s) const { return acc_.size() / cfg_.size + (s < acc_.size() % cfg_.size); }
size_t RingAllReduce::seg_off(uint32_t s) const {
  return s * (acc_.size() / cfg_.size) + std::min<size_t>(s, acc_.size() % cfg_.size);
}
uint32_t RingAllReduce::chunks_of(uint32_t s) const {
  return static_cast<uint32_t>(std::max<size_t>(1, (seg_len(s) + cfg_.chunk_elems - 1) / cfg_.chunk_elems));
}
uint32_t RingAllReduce::chunk_count(uint32_t s, uint32_t chunk) const {
  const size_t off = size_t{chunk} * cfg_.chunk_elems;
  return static_cast<uint32_t>(std::min<size_t>(cfg_.chunk_elems, seg_len(s) - off));
}
void RingAllReduce::advance(Cursor& c, uint32_t segment) const {
  if (++c.chunk >= chunks_of(segment)) {
    c.chunk = 0;
    ++c.step;
  }
}

Status RingAllReduce::fail(Status why) {
  if (failed_.ok()) failed_ = std::move(why);
  return failed_;
}

std::optional<Bytes> RingAllReduce::next_outgoing() {
  if (!failed_.ok() || sent_all()) return std::nullopt;
  // Chunk c of step t carries what arrived as chunk c of step t-1.
  if (send_.step > 0) {
    const bool arrived = recv_.step > send_.step - 1 || (recv_.step == send_.step - 1 && recv_.chunk > send_.chunk);
    if (!arrived) return std::nullopt;
  }
  const uint32_t seg = segment_sent_at(send_.step);
  AllReduceHeader h;
  h.kind = AllReduceKind::kData;
  h.round = cfg_.round;
  h.members = cfg_.size;
  h.sender = cfg_.rank;
  h.step = send_.step;
  h.segment = seg;
  h.chunk_elems = cfg_.chunk_elems;
  h.offset = send_.chunk * cfg_.chunk_elems;
  h.count = chunk_count(seg, send_.chunk);
  // Header, then the values appended (no zero-fill of a buffer that is overwritten at once).
  Bytes out;
  out.reserve(kAllReduceHeaderBytes + size_t{h.count} * 4);
  out.resize(kAllReduceHeaderBytes);
  encode_allreduce_header(h, out.data());
  const auto* values = reinterpret_cast<const uint8_t*>(acc_.data() + seg_off(seg) + h.offset);
  out.insert(out.end(), values, values + size_t{h.count} * 4);
  advance(send_, seg);
  bytes_sent_ += out.size();
  return out;
}

Status RingAllReduce::start_payload(const AllReduceHeader& h) {
  const uint32_t left = (cfg_.rank + cfg_.size - 1) % cfg_.size;
  const std::string at = " (step " + std::to_string(h.step) + ", segment " + std::to_string(h.segment) + ")";
  if (h.kind != AllReduceKind::kData) return protocol_error("allreduce: READY inside the ring stream");
  if (h.round.run_tag != cfg_.round.run_tag) return protocol_error("allreduce: message of another run");
  if (h.round.outer_step != cfg_.round.outer_step || h.round.attempt != cfg_.round.attempt)
    return protocol_error("allreduce: message of outer step " + std::to_string(h.round.outer_step) + " attempt " +
                          std::to_string(h.round.attempt) + ", we are at " + std::to_string(cfg_.round.outer_step) +
                          " attempt " + std::to_string(cfg_.round.attempt));
  if (h.round.members_tag != cfg_.round.members_tag || h.members != cfg_.size)
    return protocol_error("allreduce: the sender's member list differs from ours");
  if (h.sender != left) return protocol_error("allreduce: sender rank " + std::to_string(h.sender) + " is not our left neighbour");
  if (h.chunk_elems != cfg_.chunk_elems) return protocol_error("allreduce: chunk size differs from ours");
  if (received_all()) return protocol_error("allreduce: message after the last step");
  const uint32_t seg = segment_received_at(recv_.step);
  if (h.step != recv_.step || h.segment != seg || h.offset != recv_.chunk * cfg_.chunk_elems)
    return protocol_error("allreduce: out of order" + at + ", expected step " + std::to_string(recv_.step) +
                          " chunk " + std::to_string(recv_.chunk));
  if (h.count != chunk_count(seg, recv_.chunk)) return protocol_error("allreduce: wrong chunk length" + at);
  in_payload_ = true;
  payload_left_ = h.count;
  write_pos_ = seg_off(seg) + h.offset;
  return Status::Ok();
}

namespace {

// Whole blocks of a fixed size with branch-free bodies, so that -O2 (GCC's cheap vectorizer)
// turns them into SIMD loops; the tail of a chunk takes the scalar path.
constexpr size_t kBlock = 1024;

bool finite_bits(uint32_t b) { return (b & 0x7f800000u) != 0x7f800000u; }

bool block_finite(const float* __restrict p) {
  uint32_t bad = 0;
  for (size_t i = 0; i < kBlock; ++i) bad |= !finite_bits(std::bit_cast<uint32_t>(p[i]));
  return bad == 0;
}
void block_add(float* __restrict d, const float* __restrict s) {
  for (size_t i = 0; i < kBlock; ++i) d[i] += s[i];
}
void block_add_scale(float* __restrict d, const float* __restrict s, float k) {
  for (size_t i = 0; i < kBlock; ++i) d[i] = (d[i] + s[i]) * k;
}

}  // namespace

bool all_finite(const float* p, size_t n) {
  size_t i = 0;
  for (; i + kBlock <= n; i += kBlock)
    if (!block_finite(p + i)) return false;
  for (; i < n; ++i)
    if (!finite_bits(std::bit_cast<uint32_t>(p[i]))) return false;
  return true;
}

// Adds (reduce-scatter), adds and scales to the mean (its last step), or copies (all-gather).
Status RingAllReduce::apply(const uint8_t* bytes, size_t floats) {
  const uint32_t n = cfg_.size;
  const bool reduce = recv_.step < n - 1;
  const bool last_reduce = recv_.step == n - 2;
  const float inv = 1.0f / static_cast<float>(n);
  alignas(64) float tmp[kBlock];
  while (floats > 0) {
    const size_t k = std::min(floats, kBlock);
    std::memcpy(tmp, bytes, k * 4);
    if (!all_finite(tmp, k)) return protocol_error("allreduce: a received value is not finite");
    float* dst = acc_.data() + write_pos_;
    if (k == kBlock && last_reduce) {
      block_add_scale(dst, tmp, inv);
    } else if (k == kBlock && reduce) {
      block_add(dst, tmp);
    } else if (last_reduce) {
      for (size_t i = 0; i < k; ++i) dst[i] = (dst[i] + tmp[i]) * inv;
    } else if (reduce) {
      for (size_t i = 0; i < k; ++i) dst[i] += tmp[i];
    } else {
      std::memcpy(dst, tmp, k * 4);
    }
    write_pos_ += k;
    bytes += k * 4;
    floats -= k;
  }
  return Status::Ok();
}

Status RingAllReduce::feed(ByteView in) {
  if (!failed_.ok()) return failed_;
  bytes_received_ += in.size();
  const uint8_t* p = in.data();
  size_t left = in.size();
  while (left > 0) {
    if (!in_payload_) {
      if (received_all()) return fail(protocol_error("allreduce: bytes after the last message"));
      const size_t take = std::min(left, kAllReduceHeaderBytes - header_have_);
      std::memcpy(header_ + header_have_, p, take);
      header_have_ += take;
      p += take;
      left -= take;
      if (header_have_ < kAllReduceHeaderBytes) break;
      header_have_ = 0;
      auto h = decode_allreduce_header(ByteView(header_, kAllReduceHeaderBytes));
      if (!h.ok()) return fail(h.status());
      if (Status st = start_payload(*h); !st.ok()) return fail(st);
    } else {
      // A float split across two reads is completed from carry_.
      if (carry_have_ > 0) {
        const size_t take = std::min(left, 4 - carry_have_);
        std::memcpy(carry_ + carry_have_, p, take);
        carry_have_ += take;
        p += take;
        left -= take;
        if (carry_have_ < 4) break;
        carry_have_ = 0;
        if (Status st = apply(carry_, 1); !st.ok()) return fail(st);
        --payload_left_;
      }
      const size_t whole = std::min(payload_left_, left / 4);
      if (Status st = apply(p, whole); !st.ok()) return fail(st);
      payload_left_ -= whole;
      p += whole * 4;
      left -= whole * 4;
      if (payload_left_ > 0 && left > 0) {
        std::memcpy(carry_, p, left);
        carry_have_ = left;
        left = 0;
      }
    }
    if (in_payload_ && payload_left_ == 0) {
      in_payload_ = false;
      advance(recv_, segment_received_at(recv_.step));
    }
  }
  return Status::Ok();
}

}  // namespace noloco::node
