// Sans-IO ring all-reduce of one float vector among `size` members (docs/protocols/allreduce.md).
//
// Reduce-scatter then all-gather, 2(size-1) steps. The vector is cut into `size` segments
// (lengths differ by at most one) and each segment into chunks of at most `chunk_elems` floats
// (at least one chunk per segment, possibly empty). Messages go to the right neighbour
// (rank+1) and come from the left one (rank-1), in (step, chunk) order. Chunk c of step t may
// be sent as soon as chunk c of step t-1 has arrived, so chunks pipeline around the ring.
// The result is the MEAN of the members' vectors, bit-identical on every member.
//
// Every received header is checked (round id, ring size, sender, step, segment, offset,
// count, chunk size) and every value must be finite; the first violation fails the round for
// good (error() says why). The caller's vector is not touched: the ring works on its own copy.
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "common/bytes.h"
#include "common/status.h"
#include "trainer/node/allreduce_wire.h"

namespace noloco::node {

// True when no value is NaN or infinite.
bool all_finite(const float* p, size_t n);

struct RingConfig {
  RoundId round;
  uint32_t size = 1;
  uint32_t rank = 0;
  uint32_t chunk_elems = 32768;  // 128 KiB of fp32 per message
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
  uint64_t bytes_received() const { return bytes_received_; }
  uint32_t total_steps() const { return total_steps_; }

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
  uint64_t bytes_sent_ = 0, bytes_received_ = 0;
};

}  // namespace noloco::node
