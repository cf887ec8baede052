// Telling a deliberate trickle (slowloris) from an honest failure on a stream we are reading a
// message from (docs/defences.md, "Trickles"). Sans-IO: the adapter feeds each arrival (time,
// bytes) while a message is still incomplete; the detector says when the stream is trickling.
//
// An honest sender queues a whole frame at once, so a real link delivers it at the link's rate, in
// segments of up to ~1.4 KB: even a congested link with a one-second round trip moves more than
// 1 KiB/s. A trickle is bytes arriving in EVERY part of a window (the sender keeps at it) while
// the window's total stays under the rate floor. A peer that sends nothing at all (a SIGSTOPped
// process, a cut link, a partition) never trickles: some part of its window is empty.
#pragma once

#include <cstddef>
#include <deque>
#include <utility>

#include "common/clock.h"

namespace noloco::node {

struct TrickleLimits {
  Duration window = std::chrono::seconds(8);  // judged over this much time (shorter than an exchange budget)
  size_t slots = 4;                           // every window/slots part must have seen an arrival
  double floor_bytes_per_s = 1024;            // below this over the whole window: a trickle
};

class TrickleDetector {
 public:
  explicit TrickleDetector(TrickleLimits limits = {}) : limits_(limits) {}

  // `bytes` arrived at `now` (non-decreasing). True when the stream trickles (and stays true).
  bool on_bytes(TimePoint now, size_t bytes);
  bool trickling() const { return trickling_; }
  // The bytes and arrivals within the last window, as of the latest arrival (for the log line).
  size_t window_bytes() const;
  size_t window_arrivals() const { return arrivals_.size(); }

 private:
  bool judge(TimePoint now) const;

  TrickleLimits limits_;
  std::deque<std::pair<TimePoint, size_t>> arrivals_;  // within the last window
  bool trickling_ = false;
};

}  // namespace noloco::node
