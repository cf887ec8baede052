// Fuzzes multistream-select: the input, cut into pieces, is what the remote sends to a dialer
// and to a listener. Checks: nothing is lost (selected protocol + leftover account for the
// bytes), output stays bounded, a failed side stays failed and silent.
#include <cstdint>
#include <cstdlib>

#include "fuzz/fuzz_split.h"
#include "p2p/multistream.h"

using namespace noloco;
using namespace noloco::p2p;

namespace {
template <typename Side>
void drive(Side& side, const uint8_t* data, size_t size) {
  fuzz::Splitter split(data, size);
  std::span<const uint8_t> piece;
  size_t fed_after_done = 0;
  size_t out_total = 0;
  while (split.next(piece)) {
    bool was_done = side.done();
    Status s = side.feed(piece);
    if (was_done) {
      fed_after_done += piece.size();
      if (!s.ok()) std::abort();  // after completion bytes are only kept for the caller
    }
    if (side.failed() && s.ok()) std::abort();
    out_total += side.take_output().size();
  }
  if (side.failed() && !side.take_output().empty()) std::abort();
  if (side.done()) {
    if (side.selected_protocol().empty()) std::abort();
    if (side.take_leftover().size() < fed_after_done) std::abort();
  }
  // At most 64 "na"/"ls" answers of bounded size, plus the header and an echo.
  if (out_total > 80 * 1024) std::abort();
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  MultistreamDialer d({"/noise", "/yamux/1.0.0", "/ipfs/id/1.0.0"});
  (void)d.take_output();
  drive(d, data, size);
  MultistreamListener l({"/noise", "/yamux/1.0.0"});
  drive(l, data, size);
  return 0;
}
