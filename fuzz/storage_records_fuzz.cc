// Stored records are read back from disk, which we treat as hostile: every decoder must
// refuse garbage cleanly, and whatever it accepts must re-encode to the same bytes.
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "common/hash.h"
#include "storage/records.h"

using namespace noloco;
using namespace noloco::storage;

namespace {
template <typename T>
void round_trip(ByteView in, Result<T> (*decode)(ByteView), Result<Bytes> (*encode)(const T&)) {
  auto d = decode(in);
  if (!d.ok()) return;
  auto e = encode(*d);
  // A decoded record is within every cap, so it must encode, and to the very same bytes
  // (the layout has exactly one encoding per value).
  if (!e.ok() || Bytes(in.begin(), in.end()) != *e) std::abort();
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  Bytes sealed;
  ByteView in(data + 1, size - 1);
  if (data[0] & 4) {
    // Append the right checksum (seed "nolocor1", docs/storage.md) so the fuzzer gets past
    // it into the field parsers.
    sealed.assign(in.begin(), in.end());
    put_u64_le(sealed, hash64(in, 0x6e6f6c6f636f7231ULL));
    in = sealed;
  }
  switch (data[0] % 4) {
    case 0: round_trip<CheckpointManifest>(in, decode_manifest, encode_manifest); break;
    case 1: round_trip<PeerRecord>(in, decode_peer, encode_peer); break;
    case 2: round_trip<BanRecord>(in, decode_ban, encode_ban); break;
    default: round_trip<MetricsRecord>(in, decode_metrics, encode_metrics); break;
  }
  return 0;
}
