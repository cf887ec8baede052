// Hashes that every module may use without pulling in a crypto library:
// - SHA-256 (FIPS 180-4) for identities of things: run ids, tensor payload hashes, manifests.
// - xxh3_64: a fast non-cryptographic checksum against accidental damage (codec messages, store
//   records, checkpoint blobs), where the threat is a flipped bit or a framing bug, not an
//   adversary.
// - legacy_hash64: the home-made checksum used before xxHash, kept only to read data written
//   with it (store records and checkpoints of schema version 1) and to derive the node's data
//   seed as before (see below).
#pragma once

#include <array>
#include <cstdint>

#include "common/bytes.h"

namespace noloco {

using Sha256Digest = std::array<uint8_t, 32>;

class Sha256 {
 public:
  Sha256();
  void update(ByteView data);
  Sha256Digest finish();  // the object must not be used after finish()

 private:
  void compress(const uint8_t* block);
  std::array<uint32_t, 8> state_;
  std::array<uint8_t, 64> buffer_{};
  size_t buffered_ = 0;
  uint64_t total_bytes_ = 0;
};

Sha256Digest sha256(ByteView data);

// XXH3-64 with a seed, from Debian's libxxhash (XXH3_64bits_withSeed). Chosen over XXH64 because
// it is faster on every size we hash (small records, MB-sized codec messages, GB-sized blobs: it
// uses SSE2/AVX2 where XXH64 is scalar) and its output has been frozen since xxHash 0.8.0.
// Not collision resistant against an attacker.
uint64_t xxh3_64(ByteView data, uint64_t seed = 0);

// The pre-xxHash checksum, frozen. Only for reading old-format data (record version 1, schema
// version 1 checkpoints) and for the node's data seed, which old checkpoints' configs record
// (trainer/node/node_run.cc). Never for anything new.
uint64_t legacy_hash64(ByteView data, uint64_t seed = 0);

}  // namespace noloco
