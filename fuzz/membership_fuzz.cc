// Fuzzes membership gossip decoding and merging: no input may crash, allocate without bound, or
// get a record into the view that does not verify.
#include <cstdint>
#include <cstdlib>

#include "p2p/membership.h"

using namespace noloco;
using namespace noloco::p2p;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const Identity self = Identity::from_seed(Bytes(32, 7)).value();
  static ManualClock clock;
  ByteView in(data, size);
  auto records = decode_gossip(in);
  if (records.ok()) {
    // Whatever decodes must re-encode to a message that decodes to the same records.
    auto again = decode_gossip(encode_gossip(*records));
    if (!again.ok() || again->size() != records->size()) std::abort();
  }
  MembershipView view(self, "fuzz-run", 1, {}, clock);
  auto report = view.on_gossip(in);
  if (report.ok()) {
    for (const auto& r : view.live_peers()) {
      if (r.run_id != "fuzz-run") std::abort();
    }
  }
  return 0;
}
