#include "trainer/node/allreduce_ring.h"

#include <algorithm>
#include <array>
#include <bit>
#include <cmath>
#include <cstring>
#include <span>
#include <string>

namespace noloco::node {

static_assert(std::endian::native == std::endian::little, "fp32 payloads are copied as little-endian bytes");

double ring_error_bound(codec::Mode encoding, uint32_t members, double m) {
  // Per hop: eps relative to the block's magnitude from the quantiser, plus fp32 rounding
  // (one add per hop, the 1/N multiply at the end): c covers both; tau the absolute terms.
  const double u = 0x1p-24, tau = 0x1p-133;
  double eps = 0;
  if (encoding == codec::Mode::kBf16) eps = 0x1p-8;
  if (encoding == codec::Mode::kInt8) eps = 1.0 / 254 + 0x1p-23;
  if (encoding == codec::Mode::kInt4) eps = 1.0 / 14 + 0x1p-23;
  const double c = eps + 3 * u + 3 * u * eps;
  const double grow = std::pow(1 + c, members);
  return (grow - 1) * m / members + 4 * grow * tau;
}

Result<RingAllReduce> RingAllReduce::create(const RingConfig& c, std::vector<float> data) {
  if (c.size == 0 || c.size > kMaxAllReduceMembers) return invalid_argument("allreduce: ring size out of range");
  if (c.rank >= c.size) return invalid_argument("allreduce: rank outside the ring");
  if (c.chunk_elems == 0 || c.chunk_elems > kMaxAllReduceChunkElems)
    return invalid_argument("allreduce: chunk size out of range");
  if (static_cast<uint8_t>(c.encoding) > static_cast<uint8_t>(codec::Mode::kInt4))
    return invalid_argument("allreduce: unknown value encoding");
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

std::string RingAllReduce::progress() const {
  return "sent step " + std::to_string(send_.step) + " chunk " + std::to_string(send_.chunk) + ", received step " +
         std::to_string(recv_.step) + " chunk " + std::to_string(recv_.chunk) + " of " + std::to_string(total_steps_) +
         (in_payload_ ? " (a message half in)" : "");
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
  out.reserve(kAllReduceHeaderBytes + allreduce_payload_bytes(cfg_.encoding, h.count));
  out.resize(kAllReduceHeaderBytes);
  h.encoding = cfg_.encoding;
  encode_allreduce_header(h, out.data());
  if (Status st = append_values(seg, h.offset, h.count, out); !st.ok()) {
    (void)fail(std::move(st));
    return std::nullopt;
  }
  advance(send_, seg);
  bytes_sent_ += out.size();
  fp32_bytes_sent_ += kAllReduceHeaderBytes + uint64_t{4} * h.count;
  return out;
}

// fp32: our values as they are. Encoded: reduce-scatter hops encode the partial sum; the owner's
// first all-gather step encodes its finished segment and keeps the decoded values itself; later
// all-gather steps forward what arrived, byte for byte.
Status RingAllReduce::append_values(uint32_t seg, uint32_t offset, uint32_t count, Bytes& out) {
  const float* src = acc_.data() + seg_off(seg) + offset;
  if (!encoded()) {
    const auto* values = reinterpret_cast<const uint8_t*>(src);
    out.insert(out.end(), values, values + size_t{count} * 4);
    return Status::Ok();
  }
  if (send_.step >= cfg_.size) {
    if (forward_.empty()) return internal_error("allreduce: nothing to forward");
    out.insert(out.end(), forward_.front().begin(), forward_.front().end());
    forward_.pop_front();
    return Status::Ok();
  }
  // A sum of finite values can still overflow; the codec must not see the infinity.
  if (!all_finite(src, count)) return invalid_argument("allreduce: a partial sum overflowed to infinity");
  const size_t at = out.size();
  out.resize(at + allreduce_payload_bytes(cfg_.encoding, count));
  codec::encode_raw(cfg_.encoding, std::span<const float>(src, count), kAllReduceBlock, out.data() + at);
  if (send_.step + 1 < cfg_.size) return Status::Ok();
  float* own = acc_.data() + seg_off(seg) + offset;
  return codec::decode_raw(cfg_.encoding, kAllReduceBlock, ByteView(out.data() + at, out.size() - at),
                           std::span<float>(own, count));
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
  if (h.encoding != cfg_.encoding)
    return protocol_error(std::string("allreduce: the sender encodes values as ") + codec::mode_name(h.encoding) +
                          ", we use " + codec::mode_name(cfg_.encoding) + " (every member must use the same codec)");
  if (received_all()) return protocol_error("allreduce: message after the last step");
  const uint32_t seg = segment_received_at(recv_.step);
  if (h.step != recv_.step || h.segment != seg || h.offset != recv_.chunk * cfg_.chunk_elems)
    return protocol_error("allreduce: out of order" + at + ", expected step " + std::to_string(recv_.step) +
                          " chunk " + std::to_string(recv_.chunk));
  if (h.count != chunk_count(seg, recv_.chunk)) return protocol_error("allreduce: wrong chunk length" + at);
  in_payload_ = true;
  payload_left_ = h.count;
  write_pos_ = seg_off(seg) + h.offset;
  if (encoded()) {
    // count <= chunk_elems <= kMaxAllReduceChunkElems was checked: at most ~16 MiB.
    pending_need_ = allreduce_payload_bytes(cfg_.encoding, h.count);
    pending_count_ = h.count;
    pending_.clear();
    pending_.reserve(pending_need_);
  }
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
    } else if (encoded()) {
      feed_encoded(p, left);
    } else if (Status st = feed_fp32(p, left); !st.ok()) {
      return fail(st);
    }
    if (in_payload_ && payload_complete()) {
      if (Status st = finish_payload(); !st.ok()) return fail(st);
    }
  }
  return Status::Ok();
}

// fp32 payloads are applied as they arrive; a float split across two reads is completed from carry_.
Status RingAllReduce::feed_fp32(const uint8_t*& p, size_t& left) {
  if (carry_have_ > 0) {
    const size_t take = std::min(left, 4 - carry_have_);
    std::memcpy(carry_ + carry_have_, p, take);
    carry_have_ += take;
    p += take;
    left -= take;
    if (carry_have_ < 4) return Status::Ok();
    carry_have_ = 0;
    NOLOCO_RETURN_IF_ERROR(apply(carry_, 1));
    --payload_left_;
  }
  const size_t whole = std::min(payload_left_, left / 4);
  NOLOCO_RETURN_IF_ERROR(apply(p, whole));
  payload_left_ -= whole;
  p += whole * 4;
  left -= whole * 4;
  if (payload_left_ > 0 && left > 0) {
    std::memcpy(carry_, p, left);
    carry_have_ = left;
    left = 0;
  }
  return Status::Ok();
}

void RingAllReduce::feed_encoded(const uint8_t*& p, size_t& left) {
  const size_t take = std::min(left, pending_need_ - pending_.size());
  pending_.insert(pending_.end(), p, p + take);
  p += take;
  left -= take;
}

bool RingAllReduce::payload_complete() const {
  return encoded() ? pending_.size() == pending_need_ : payload_left_ == 0;
}

Status RingAllReduce::finish_payload() {
  in_payload_ = false;
  if (encoded()) NOLOCO_RETURN_IF_ERROR(apply_encoded());
  advance(recv_, segment_received_at(recv_.step));
  return Status::Ok();
}

// An encoded payload is checked and decoded whole (the codec's checks: scales, codes, finite
// values), kept when the all-gather forwards it, then added or copied like fp32 values.
Status RingAllReduce::apply_encoded() {
  decoded_.resize(pending_count_);
  if (Status st = codec::decode_raw(cfg_.encoding, kAllReduceBlock, pending_, decoded_); !st.ok())
    return protocol_error("allreduce: bad " + std::string(codec::mode_name(cfg_.encoding)) + " chunk at step " +
                          std::to_string(recv_.step) + ": " + st.message());
  if (recv_.step + 1 >= cfg_.size && recv_.step + 1 < total_steps_) forward_.push_back(pending_);
  return apply(reinterpret_cast<const uint8_t*>(decoded_.data()), pending_count_);
}

}  // namespace noloco::node
