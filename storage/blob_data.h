// A checkpoint blob's bytes. Either an ordinary Bytes (what loads return, what tests build) or a
// slice of a SnapshotBuffer: one allocation holding every blob of a checkpoint back to back, as
// the data file lays them out (docs/storage.md, "Checkpoint data files"). A snapshot buffer is
// not zero-filled, is aligned to 2 MiB and asks for transparent huge pages, so taking a 1.7 GB
// snapshot costs ~850 page faults instead of ~420k and one pass over memory instead of two; and
// because it is aligned the writer can hand it to the disk with O_DIRECT, without copying it
// into the page cache. It is freed when the last slice goes (after the commit).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <variant>

#include "common/bytes.h"
#include "common/status.h"

namespace noloco::storage {

class SnapshotBuffer {
 public:
  // Alignment of the start and granularity of the allocated size: a 2 MiB huge page, which
  // also satisfies O_DIRECT's block alignment.
  static constexpr size_t kAlign = size_t{2} << 20;
  // `size` usable bytes, uninitialised (the padding up to allocated() is zeroed so that a
  // block written past the end never carries stale memory). kTooLarge when it cannot be had.
  static Result<std::shared_ptr<SnapshotBuffer>> allocate(size_t size);
  ~SnapshotBuffer();
  SnapshotBuffer(const SnapshotBuffer&) = delete;
  SnapshotBuffer& operator=(const SnapshotBuffer&) = delete;

  uint8_t* data() { return data_; }
  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  size_t allocated() const { return allocated_; }

 private:
  SnapshotBuffer(uint8_t* data, size_t size, size_t allocated) : data_(data), size_(size), allocated_(allocated) {}
  uint8_t* data_;
  size_t size_;
  size_t allocated_;
};

// The checksum the store records for each blob and verifies at load (xxh3_64 with the store's
// blob seed), fed piece by piece: a snapshot hashes each piece right after copying it, while it
// is still in the CPU cache, so the writer does not read the bytes again from memory.
class BlobHasher {
 public:
  BlobHasher();
  ~BlobHasher();
  BlobHasher(const BlobHasher&) = delete;
  BlobHasher& operator=(const BlobHasher&) = delete;
  void update(ByteView data);
  uint64_t digest() const;

 private:
  void* state_;
};

class BlobData {
 public:
  BlobData() = default;
  BlobData(Bytes bytes) : v_(std::move(bytes)) {}  // NOLINT: implicit, a blob is its bytes
  BlobData(std::shared_ptr<SnapshotBuffer> buffer, size_t offset, size_t size)
      : v_(Slice{std::move(buffer), offset, size}) {}

  const uint8_t* data() const;
  uint8_t* data();  // drops checksum(): the caller may change the bytes
  size_t size() const;
  bool empty() const { return size() == 0; }
  const uint8_t* begin() const { return data(); }
  const uint8_t* end() const { return data() + size(); }
  operator ByteView() const { return {data(), size()}; }  // NOLINT: read like Bytes
  ByteView view() const { return *this; }
  Bytes to_bytes() const { return Bytes(begin(), end()); }
  // Resizing turns a slice into owned bytes (a copy): tests damage blobs this way.
  void resize(size_t n);
  // The bytes as a Bytes to change in place (a slice becomes owned bytes first, a copy).
  Bytes& bytes();

  // BlobHasher's digest of the bytes, when whoever filled them computed it on the way (a
  // snapshot); the store then records it without hashing the bytes again. Unset by default and
  // after any non-const access.
  std::optional<uint64_t> checksum() const { return checksum_; }
  void set_checksum(uint64_t c) { checksum_ = c; }

  // The buffer this is a slice of and where in it; nullptr for owned bytes.
  const SnapshotBuffer* buffer() const;
  size_t offset() const;

  friend bool operator==(const BlobData& a, const BlobData& b) { return equal(a, b); }
  friend bool operator==(const BlobData& a, const Bytes& b) { return equal(a, ByteView(b)); }

 private:
  struct Slice {
    std::shared_ptr<SnapshotBuffer> buffer;
    size_t offset = 0;
    size_t size = 0;
  };
  static bool equal(ByteView a, ByteView b);
  std::variant<Bytes, Slice> v_;
  std::optional<uint64_t> checksum_;
};

}  // namespace noloco::storage
