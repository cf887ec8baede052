#include "p2p/framing.h"

#include <algorithm>
#include <string>

#include "common/varint.h"

namespace noloco::p2p {

void append_length_prefixed(Bytes& out, ByteView message) {
  put_varint(out, message.size());
  append(out, message);
}

Bytes encode_length_prefixed(ByteView message) {
  Bytes out;
  out.reserve(message.size() + varint_size(message.size()));
  append_length_prefixed(out, message);
  return out;
}

Status LengthPrefixedReader::feed(ByteView in) {
  if (!error_.ok()) return error_;
  while (!in.empty()) {
    if (!have_length_) {
      prefix_.push_back(in.front());
      in = in.subspan(1);
      Result<VarintRead> v = read_varint(prefix_);
      if (!v.ok()) {
        if (v.status().code() == StatusCode::kTruncated) continue;
        error_ = v.status().context("length prefix");
        return error_;
      }
      prefix_.clear();
      if (v->value > max_message_) {
        error_ = too_large("message of " + std::to_string(v->value) + " bytes exceeds the cap of " +
                           std::to_string(max_message_));
        return error_;
      }
      body_left_ = static_cast<size_t>(v->value);
      body_.clear();
      body_.reserve(body_left_);  // safe: checked against the cap above
      have_length_ = true;
    }
    const size_t n = std::min(body_left_, in.size());
    body_.insert(body_.end(), in.begin(), in.begin() + static_cast<std::ptrdiff_t>(n));
    in = in.subspan(n);
    body_left_ -= n;
    if (body_left_ == 0) {
      ready_.push_back(std::move(body_));
      body_ = Bytes();
      have_length_ = false;
    }
  }
  return Status::Ok();
}

std::optional<Bytes> LengthPrefixedReader::next() {
  if (ready_.empty()) return std::nullopt;
  Bytes m = std::move(ready_.front());
  ready_.pop_front();
  return m;
}

}  // namespace noloco::p2p
