// Fuzzes the identify decoder and the length-prefixed framing it travels in: anything decoded
// must re-encode to a message that decodes to the same fields; the framing reader must give
// the same messages whatever the split.
#include <cstdint>
#include <cstdlib>

#include "fuzz/fuzz_split.h"
#include "p2p/framing.h"
#include "p2p/identify.h"

using namespace noloco;
using namespace noloco::p2p;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  ByteView in(data, size);
  auto info = decode_identify(in);
  if (info.ok()) {
    auto again = decode_identify(encode_identify(*info));
    if (!again.ok()) std::abort();
    if (again->protocols != info->protocols || again->agent_version != info->agent_version ||
        again->protocol_version != info->protocol_version || again->public_key != info->public_key ||
        again->listen_addrs != info->listen_addrs || again->observed_addr != info->observed_addr) {
      std::abort();
    }
  }

  LengthPrefixedReader whole(4096), pieces(4096);
  fuzz::Splitter split(data, size);
  std::span<const uint8_t> piece;
  Bytes stream;
  Status b;
  while (split.next(piece)) {
    append(stream, piece);
    if (b.ok()) b = pieces.feed(piece);
  }
  Status a = whole.feed(stream);
  if (a.ok() != b.ok()) std::abort();
  // Messages before any error agree whatever the split.
  for (;;) {
    auto m1 = whole.next();
    auto m2 = pieces.next();
    if (!m1 || !m2) break;
    if (*m1 != *m2) std::abort();
  }
  return 0;
}
