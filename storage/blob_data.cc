// Checkpoint blob bytes and snapshot buffers (see blob_data.h).
#include "storage/blob_data.h"

#include <sys/mman.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <new>

#include <xxhash.h>

#include "storage/store_impl.h"  // kBlobSeed

namespace noloco::storage {

Result<std::shared_ptr<SnapshotBuffer>> SnapshotBuffer::allocate(size_t size) {
  const size_t allocated = std::max<size_t>(kAlign, (size + kAlign - 1) / kAlign * kAlign);
  if (allocated < size) return too_large("snapshot of " + std::to_string(size) + " bytes");
  void* p = std::aligned_alloc(kAlign, allocated);
  if (p == nullptr) return too_large("snapshot of " + std::to_string(size) + " bytes does not fit in memory");
  // Advisory: where THP is off or "never", the buffer works with 4 KiB pages.
  ::madvise(p, allocated, MADV_HUGEPAGE);
  auto* bytes = static_cast<uint8_t*>(p);
  std::memset(bytes + size, 0, allocated - size);
  return std::shared_ptr<SnapshotBuffer>(new (std::nothrow) SnapshotBuffer(bytes, size, allocated));
}

BlobHasher::BlobHasher() : state_(XXH3_createState()) {
  if (state_ == nullptr) throw std::bad_alloc();
  XXH3_64bits_reset_withSeed(static_cast<XXH3_state_t*>(state_), kBlobSeed);
}
BlobHasher::~BlobHasher() { XXH3_freeState(static_cast<XXH3_state_t*>(state_)); }
void BlobHasher::update(ByteView data) { XXH3_64bits_update(static_cast<XXH3_state_t*>(state_), data.data(), data.size()); }
uint64_t BlobHasher::digest() const { return XXH3_64bits_digest(static_cast<const XXH3_state_t*>(state_)); }

SnapshotBuffer::~SnapshotBuffer() { std::free(data_); }

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
