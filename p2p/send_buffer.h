// Bytes waiting for the socket, in storage that is reused and never shrinks: writing into
// storage that was used before costs nothing extra, whereas growing a std::vector zero-fills
// every new byte just before a cipher overwrites it (on the bulk path, a whole extra pass).
#pragma once

#include <cstring>
#include <span>

#include "common/bytes.h"

namespace noloco::p2p {

class SendBuffer {
 public:
  bool empty() const { return size_ == 0; }
  size_t size() const { return size_; }
  ByteView view() const { return ByteView(buf_.data(), size_); }
  void clear() { size_ = 0; }  // keeps the storage

  // n writable bytes after the current contents; they count only once commit()ed. Valid until
  // the next non-const call.
  std::span<uint8_t> prepare(size_t n) {
    if (buf_.size() < size_ + n) buf_.resize(size_ + n);  // zero-fills storage never used before
    return std::span<uint8_t>(buf_).subspan(size_, n);
  }
  void commit(size_t n) { size_ += n; }  // n <= what the last prepare() gave
  void append(ByteView b) {
    if (b.empty()) return;
    std::memcpy(prepare(b.size()).data(), b.data(), b.size());
    commit(b.size());
  }

 private:
  Bytes buf_;  // [0, size_) is ours to send; the rest is storage to reuse
  size_t size_ = 0;
};

}  // namespace noloco::p2p
