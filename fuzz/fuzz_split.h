// Shared by the p2p fuzz targets: cuts the fuzz input into pieces whose sizes come from the
// input itself, so the sans-IO decoders see every possible split of their stream.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

namespace noloco::fuzz {

class Splitter {
 public:
  Splitter(const uint8_t* data, size_t size) : data_(data), size_(size) {}
  // Next piece: its size is one input byte (1..256), then that many bytes (or what is left).
  bool next(std::span<const uint8_t>& piece) {
    if (pos_ >= size_) return false;
    size_t n = size_t{data_[pos_++]} + 1;
    if (n > size_ - pos_) n = size_ - pos_;
    piece = {data_ + pos_, n};
    pos_ += n;
    return true;
  }

 private:
  const uint8_t* data_;
  size_t size_;
  size_t pos_ = 0;
};

}  // namespace noloco::fuzz
