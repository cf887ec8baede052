// ping (`/ipfs/ping/1.0.0`, github.com/libp2p/specs ping/ping.md): the dialer sends 32 random
// bytes, the listener echoes them, the dialer checks them and measures the round trip. A stream
// may carry many pings in a row. Sans-IO pieces used by the host's stream handlers.
#pragma once

#include <array>
#include <string_view>

#include "common/bytes.h"
#include "common/status.h"

namespace noloco::p2p {

constexpr std::string_view kPingProtocolId = "/ipfs/ping/1.0.0";
constexpr size_t kPingSize = 32;

// Listener side: echoes whole 32-byte blocks back, holding a partial block until it completes.
class PingEcho {
 public:
  // Returns the bytes to send back.
  Bytes feed(ByteView in);

 private:
  Bytes partial_;
};

// Dialer side: one probe.
class PingProbe {
 public:
  PingProbe();  // 32 fresh random bytes
  explicit PingProbe(const std::array<uint8_t, kPingSize>& payload) : payload_(payload) {}

  ByteView payload() const { return payload_; }
  // Feed the reply as it arrives. Ok once 32 matching bytes came back (done() turns true);
  // kCorrupt on a mismatch; bytes beyond 32 are a protocol error.
  Status feed(ByteView in);
  bool done() const { return have_ == kPingSize; }

 private:
  std::array<uint8_t, kPingSize> payload_;
  std::array<uint8_t, kPingSize> got_{};
  size_t have_ = 0;
};

}  // namespace noloco::p2p
