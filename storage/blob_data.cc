// Checkpoint blob bytes and snapshot buffers (see blob_data.h).
#include "storage/blob_data.h"

#include <sys/mman.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <future>
#include <new>

#include <xxhash.h>

#include "storage/store_impl.h"  // kBlobSeed

namespace noloco::storage {

Result<std::shared_ptr<SnapshotBuffer>> SnapshotBuffer::allocate(size_t size) {
  const size_t allocated = std::max<size_t>(kAlign, (size + kAlign - 1) / kAlign * kAlign);
  if (allocated < size || allocated > SIZE_MAX - kAlign) return too_large("snapshot of " + std::to_string(size) + " bytes");
  // Its own mapping, not the heap: the process turns off mmap for large mallocs (heap_policy),
  // and a 1.7 GB block in the heap would stay resident after it is freed. Mapped with one
  // alignment's slack, then trimmed to a 2 MiB-aligned range. The kernel hands out zeroed pages.
  void* raw = ::mmap(nullptr, allocated + kAlign, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (raw == MAP_FAILED) return too_large("snapshot of " + std::to_string(size) + " bytes does not fit in memory");
  const auto base = reinterpret_cast<uintptr_t>(raw);
  const uintptr_t start = (base + kAlign - 1) / kAlign * kAlign;
  if (start > base) ::munmap(raw, start - base);
  if (const uintptr_t tail = base + allocated + kAlign - (start + allocated); tail > 0)
    ::munmap(reinterpret_cast<void*>(start + allocated), tail);
  auto* bytes = reinterpret_cast<uint8_t*>(start);
  // No MADV_HUGEPAGE: with the usual defrag=madvise the kernel then compacts memory on the
  // faulting thread, and the first fill of a 1.7 GB buffer took 15 s that way (0.5-2.7 s with
  // 4 KiB pages; docs/benchmarks.md). The pool makes the faults a once-per-run cost anyway.
  auto* buffer = new (std::nothrow) SnapshotBuffer(bytes, size, allocated);
  if (buffer == nullptr) {
    ::munmap(bytes, allocated);
    return too_large("snapshot of " + std::to_string(size) + " bytes does not fit in memory");
  }
  return std::shared_ptr<SnapshotBuffer>(buffer);
}

BlobHasher::BlobHasher() : state_(XXH3_createState()) {
  if (state_ == nullptr) throw std::bad_alloc();
  XXH3_64bits_reset_withSeed(static_cast<XXH3_state_t*>(state_), kBlobSeed);
}
BlobHasher::~BlobHasher() { XXH3_freeState(static_cast<XXH3_state_t*>(state_)); }
void BlobHasher::update(ByteView data) { XXH3_64bits_update(static_cast<XXH3_state_t*>(state_), data.data(), data.size()); }
uint64_t BlobHasher::digest() const { return XXH3_64bits_digest(static_cast<const XXH3_state_t*>(state_)); }

SnapshotBuffer::~SnapshotBuffer() { ::munmap(data_, allocated_); }

void SnapshotBuffer::set_size(size_t size) {
  if (size < size_) std::memset(data_ + size, 0, size_ - size);
  size_ = size;
}

Result<std::shared_ptr<SnapshotBuffer>> SnapshotPool::take(size_t size) {
  std::lock_guard<std::mutex> lock(mu_);
  // use_count() 1: only we hold it, and only take() hands it out, so nobody can start holding
  // it again under us. The acquire fence pairs with the release in the last holder's
  // shared_ptr destructor: its reads of the old bytes (the data file write) happen before our
  // writes of the new ones.
  if (kept_ && kept_.use_count() == 1 && kept_->allocated() >= size) {
    std::atomic_thread_fence(std::memory_order_acquire);
    kept_->set_size(size);
    ++reuses_;
    return kept_;
  }
  NOLOCO_ASSIGN_OR_RETURN(std::shared_ptr<SnapshotBuffer> fresh, SnapshotBuffer::allocate(size));
  kept_ = fresh;
  ++allocations_;
  return fresh;
}

Status SnapshotPool::prepare(size_t size) {
  std::lock_guard<std::mutex> lock(mu_);
  return prepare_locked(size);
}

void SnapshotPool::prepare_in_background(size_t size) {
  if (preparer_.joinable()) preparer_.join();
  // The thread takes the lock before this returns, so a take() that follows waits for it.
  auto locked = std::make_shared<std::promise<void>>();
  auto has_lock = locked->get_future();
  preparer_ = std::thread([this, size, locked] {
    std::lock_guard<std::mutex> lock(mu_);
    locked->set_value();
    (void)prepare_locked(size);
  });
  has_lock.wait();
}

SnapshotPool::~SnapshotPool() {
  if (preparer_.joinable()) preparer_.join();
}

Status SnapshotPool::prepare_locked(size_t size) {
  if (kept_ && kept_->allocated() >= size) return Status::Ok();
  NOLOCO_ASSIGN_OR_RETURN(std::shared_ptr<SnapshotBuffer> fresh, SnapshotBuffer::allocate(size));
  // One call faults in the whole range (Linux 5.14+); else a write to every page does it.
#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif
  if (::madvise(fresh->data(), fresh->allocated(), MADV_POPULATE_WRITE) != 0) {
    volatile uint8_t* p = fresh->data();
    for (size_t at = 0; at < fresh->allocated(); at += 4096) p[at] = 0;
  }
  kept_ = std::move(fresh);
  ++allocations_;
  return Status::Ok();
}

void SnapshotPool::release() {
  std::lock_guard<std::mutex> lock(mu_);
  kept_.reset();
}

uint64_t SnapshotPool::allocations() const {
  std::lock_guard<std::mutex> lock(mu_);
  return allocations_;
}

uint64_t SnapshotPool::reuses() const {
  std::lock_guard<std::mutex> lock(mu_);
  return reuses_;
}

const uint8_t* BlobData::data() const {
  if (const Bytes* b = std::get_if<Bytes>(&v_)) return b->data();
  const Slice& s = std::get<Slice>(v_);
  return s.buffer->data() + s.offset;
}

uint8_t* BlobData::data() {
  checksum_.reset();
  if (Bytes* b = std::get_if<Bytes>(&v_)) return b->data();
  Slice& s = std::get<Slice>(v_);
  return s.buffer->data() + s.offset;
}

size_t BlobData::size() const {
  if (const Bytes* b = std::get_if<Bytes>(&v_)) return b->size();
  return std::get<Slice>(v_).size;
}

void BlobData::resize(size_t n) {
  checksum_.reset();
  bytes().resize(n);
}

Bytes& BlobData::bytes() {
  checksum_.reset();
  if (!std::holds_alternative<Bytes>(v_)) v_ = to_bytes();
  return std::get<Bytes>(v_);
}

const SnapshotBuffer* BlobData::buffer() const {
  const Slice* s = std::get_if<Slice>(&v_);
  return s ? s->buffer.get() : nullptr;
}

size_t BlobData::offset() const {
  const Slice* s = std::get_if<Slice>(&v_);
  return s ? s->offset : 0;
}

bool BlobData::equal(ByteView a, ByteView b) {
  return a.size() == b.size() && (a.empty() || std::memcmp(a.data(), b.data(), a.size()) == 0);
}

}  // namespace noloco::storage
