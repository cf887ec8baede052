// Hashes that every module may use without pulling in a crypto library:
// - SHA-256 (FIPS 180-4) for identities of things: run ids, tensor payload hashes, manifests.
// - hash64: a fast non-cryptographic checksum for large local blobs (checkpoint tensors),
//   where the threat is a flipped bit on disk, not an adversary.
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

// 64-bit checksum, ~several GB/s. Not collision resistant against an attacker.
uint64_t hash64(ByteView data, uint64_t seed = 0);

}  // namespace noloco
