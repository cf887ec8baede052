// A checkpoint blob's bytes. Either an ordinary Bytes (what loads return, what tests build) or a
// slice of a SnapshotBuffer: one allocation holding every blob of a checkpoint back to back, as
// the data file lays them out (docs/storage.md, "Checkpoint data files"). A snapshot buffer is
// its own mapping, aligned to 2 MiB; because it is aligned the writer can hand it to the disk
// with O_DIRECT, without copying it into the page cache. It is unmapped when the last slice and
// its SnapshotPool let go of it; the pool (below) reuses it, so its page faults are paid once.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <variant>

#include "common/bytes.h"
#include "common/status.h"

namespace noloco::storage {

class SnapshotBuffer {
 public:
  // Alignment of the start and granularity of the allocated size: 2 MiB (a huge page's size,
  // should THP back it; more than O_DIRECT's block alignment needs).
  static constexpr size_t kAlign = size_t{2} << 20;
  // `size` usable bytes, zero (fresh anonymous memory), up to allocated(): the padding stays
  // zero, so a block written past the end never carries stale memory. kTooLarge when it
  // cannot be had.
  static Result<std::shared_ptr<SnapshotBuffer>> allocate(size_t size);
  ~SnapshotBuffer();
  SnapshotBuffer(const SnapshotBuffer&) = delete;
  SnapshotBuffer& operator=(const SnapshotBuffer&) = delete;

  uint8_t* data() { return data_; }
  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  size_t allocated() const { return allocated_; }

 private:
  friend class SnapshotPool;
  SnapshotBuffer(uint8_t* data, size_t size, size_t allocated) : data_(data), size_(size), allocated_(allocated) {}
  void set_size(size_t size);  // within allocated(); zeroes the new padding
  uint8_t* data_;
  size_t size_;
  size_t allocated_;
};

// Keeps the last snapshot buffer for the next checkpoint. A fresh buffer the size of the state
// (1.7 GB at gpt-125m) costs its page faults on the training thread at every checkpoint: 1.1-2.7 s
// of a 13 s checkpoint interval measured at gpt-125m (15 s with huge pages and compaction). A kept
// one that the writer has finished with costs a memcpy. The price is that the buffer stays
// resident between checkpoints; the peak is the same, because a checkpoint holds it anyway
// (docs/memory.md). Thread-safe: take() runs on the training thread while the writer thread
// drops its slices of the previous snapshot.
class SnapshotPool {
 public:
  // The kept buffer when no checkpoint still holds it and it is large enough; else a new one,
  // which is kept instead (the old one goes when its last holder lets it go).
  Result<std::shared_ptr<SnapshotBuffer>> take(size_t size);
  // Allocates the kept buffer now and faults its pages in, so that the first checkpoint is a
  // copy too (at gpt-125m its 252k faults cost the first checkpoint's step ~0.36 s). For the
  // start of a run, before training. Nothing is done when the kept buffer is large enough.
  Status prepare(size_t size);
  // prepare(size) on a thread of the pool's (joined by the destructor); take() and release()
  // wait for it. A failure shows at the first take(), which then tries again.
  void prepare_in_background(size_t size);
  SnapshotPool() = default;
  ~SnapshotPool();
  SnapshotPool(const SnapshotPool&) = delete;
  SnapshotPool& operator=(const SnapshotPool&) = delete;
  // Frees the kept buffer (a holder keeps its buffer alive until it is done).
  void release();
  // Counters for tests and benches: buffers allocated and takes served by the kept one.
  uint64_t allocations() const;
  uint64_t reuses() const;

 private:
  Status prepare_locked(size_t size);
  mutable std::mutex mu_;
  std::thread preparer_;
  std::shared_ptr<SnapshotBuffer> kept_;
  uint64_t allocations_ = 0;
  uint64_t reuses_ = 0;
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
