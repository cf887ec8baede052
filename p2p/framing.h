// Varint-length-prefixed messages (<uvarint length><bytes>), the framing identify and most
// libp2p protocols use on a stream. The reader checks the length against its cap as soon as
// the varint is complete, before allocating anything, so a peer announcing gigabytes costs us
// nothing. Sans-IO: feed bytes in any split, pop whole messages.
#pragma once

#include <deque>
#include <optional>

#include "common/bytes.h"
#include "common/status.h"

namespace noloco::p2p {

// <uvarint len><msg>
Bytes encode_length_prefixed(ByteView message);
void append_length_prefixed(Bytes& out, ByteView message);

class LengthPrefixedReader {
 public:
  explicit LengthPrefixedReader(size_t max_message) : max_message_(max_message) {}

  // kTooLarge when a length exceeds the cap, kCorrupt for a malformed varint. Terminal: the
  // same error is returned by every later call.
  Status feed(ByteView in);
  // The next complete message, oldest first.
  std::optional<Bytes> next();
  // True while a message has started (length or body partly received) but is not complete.
  bool mid_message() const { return !prefix_.empty() || have_length_; }
  size_t max_message() const { return max_message_; }

 private:
  size_t max_message_;
  Status error_;
  Bytes prefix_;        // varint bytes collected so far
  bool have_length_ = false;
  size_t body_left_ = 0;
  Bytes body_;
  std::deque<Bytes> ready_;
};

}  // namespace noloco::p2p
