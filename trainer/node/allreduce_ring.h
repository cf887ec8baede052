// Sans-IO ring all-reduce of one float vector among `size` members (docs/protocols/allreduce.md).
//
// Reduce-scatter then all-gather, 2(size-1) steps. The vector is cut into `size` segments
// (lengths differ by at most one) and each segment into chunks of at most `chunk_elems` floats
// (at least one chunk per segment, possibly empty). Messages go to the right neighbour
// (rank+1) and come from the left one (rank-1), in (step, chunk) order. Chunk c of step t may
// be sent as soon as chunk c of step t-1 has arrived, so chunks pipeline around the ring.
// The result is the MEAN of the members' vectors, bit-identical on every member.
//
// Values travel in the ring's encoding (fp32, bf16, int8, int4: the codec's raw layouts). With
// a lossy one, sums stay fp32 and only the wire is quantised: a reduce-scatter hop decodes the
// incoming partial sum, adds its own values and re-encodes for the next hop; the owner of a
// finished segment encodes it once, replaces its own copy by the decoded values, and the
// all-gather forwards those bytes unchanged, so every member still ends bit-identical.
//
// Every received header is checked (round id, ring size, sender, step, segment, offset,
// count, chunk size) and every value must be finite; the first violation fails the round for
// good (error() says why). The caller's vector is not touched: the ring works on its own copy.
#pragma once

#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <vector>

#include "common/bytes.h"
#include "common/status.h"
#include "trainer/node/allreduce_wire.h"

namespace noloco::node {

// True when no value is NaN or infinite.
bool all_finite(const float* p, size_t n);

// The documented worst case |ring mean - exact mean| of one element in a ring of `members` with
// the given encoding (derivation: docs/protocols/allreduce.md "Error bound"). `m` is the sum
// over members of |x| of that element for fp32 and bf16; for int8/int4 the largest such sum in
// the element's 128-value block (blocks start at each chunk's first value: the largest within
// 127 elements either side is a safe stand-in).
double ring_error_bound(codec::Mode encoding, uint32_t members, double m);

struct RingConfig {
  RoundId round;
  uint32_t size = 1;
  uint32_t rank = 0;
  uint32_t chunk_elems = 32768;  // 128 KiB of fp32 per message
  codec::Mode encoding = codec::Mode::kFp32;  // of every value on the wire; must be equal on all members
};

class RingAllReduce {
 public:
  // Checks the config and that every value of `data` is finite.
  static Result<RingAllReduce> create(const RingConfig& config, std::vector<float> data);

  // The next message for the right neighbour, once its data is ready (none: wait for more
  // input, or everything was sent).
  std::optional<Bytes> next_outgoing();
  // Bytes of the left neighbour's stream, any split. An error is final.
  Status feed(ByteView bytes);

  bool done() const { return failed_.ok() && sent_all() && received_all(); }
  bool sent_all() const { return send_.step >= total_steps_; }
  bool received_all() const { return recv_.step >= total_steps_; }
  const Status& error() const { return failed_; }
  // The mean; call once done().
  std::vector<float> take() { return std::move(acc_); }

  uint64_t bytes_sent() const { return bytes_sent_; }
  // What the same messages would have taken in fp32 (= bytes_sent() in an fp32 ring).
  uint64_t fp32_bytes_sent() const { return fp32_bytes_sent_; }
  uint64_t bytes_received() const { return bytes_received_; }
  uint32_t total_steps() const { return total_steps_; }
  // Where the ring is, for failure messages: "sent step 12 chunk 0, received step 11 chunk 1 of 30".
  std::string progress() const;

 private:
  struct Cursor {
    uint32_t step = 0, chunk = 0;
  };
  RingAllReduce(const RingConfig& c, std::vector<float> data);

  uint32_t segment_sent_at(uint32_t step) const;
  uint32_t segment_received_at(uint32_t step) const;
  size_t seg_len(uint32_t s) const;
  size_t seg_off(uint32_t s) const;
  uint32_t chunks_of(uint32_t s) const;
  uint32_t chunk_count(uint32_t s, uint32_t chunk) const;
  void advance(Cursor& c, uint32_t segment) const;
  Status fail(Status why);
  Status start_payload(const AllReduceHeader& h);
  Status apply(const uint8_t* bytes, size_t floats);
  bool encoded() const { return cfg_.encoding != codec::Mode::kFp32; }
  Status append_values(uint32_t seg, uint32_t offset, uint32_t count, Bytes& out);
  Status feed_fp32(const uint8_t*& p, size_t& left);
  void feed_encoded(const uint8_t*& p, size_t& left);
  bool payload_complete() const;
  Status finish_payload();
  Status apply_encoded();

  RingConfig cfg_;
  std::vector<float> acc_;
  uint32_t total_steps_ = 0;
  Cursor send_, recv_;
  Status failed_;
  // Receive side: header being assembled, then the payload of the current message.
  uint8_t header_[kAllReduceHeaderBytes] = {};
  size_t header_have_ = 0;
  bool in_payload_ = false;
  size_t payload_left_ = 0;  // floats
  size_t write_pos_ = 0;     // index into acc_
  uint8_t carry_[4] = {};
  size_t carry_have_ = 0;
  // Encoded rings: the whole payload of the current message is gathered, then decoded.
  Bytes pending_;
  size_t pending_need_ = 0;  // bytes
  uint32_t pending_count_ = 0;  // values
  std::vector<float> decoded_;
  std::deque<Bytes> forward_;  // all-gather payloads received, sent on unchanged (FIFO)
  uint64_t bytes_sent_ = 0, bytes_received_ = 0, fp32_bytes_sent_ = 0;
};

}  // namespace noloco::node
