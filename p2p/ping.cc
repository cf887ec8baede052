#include "p2p/ping.h"

#include <sodium.h>

#include "p2p/identity.h"

namespace noloco::p2p {

Bytes PingEcho::feed(ByteView in) {
  append(partial_, in);
  const size_t whole = partial_.size() - partial_.size() % kPingSize;
  Bytes out(partial_.begin(), partial_.begin() + static_cast<std::ptrdiff_t>(whole));
  partial_.erase(partial_.begin(), partial_.begin() + static_cast<std::ptrdiff_t>(whole));
  return out;
}

PingProbe::PingProbe() {
  (void)ensure_sodium();
  randombytes_buf(payload_.data(), payload_.size());
}

Status PingProbe::feed(ByteView in) {
  if (in.size() > kPingSize - have_) return protocol_error("ping: more than 32 bytes came back");
  std::copy(in.begin(), in.end(), got_.begin() + static_cast<std::ptrdiff_t>(have_));
  have_ += in.size();
  if (have_ == kPingSize && !constant_time_equal(got_, payload_)) {
    return corrupt("ping: the echo does not match what we sent");
  }
  return Status::Ok();
}

}  // namespace noloco::p2p
