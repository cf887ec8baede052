// Fuzzes multiaddr parsing in both forms; whatever parses must round-trip exactly.
#include <cstdint>
#include <cstdlib>

#include "p2p/multiaddr.h"

using namespace noloco;
using namespace noloco::p2p;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  ByteView in(data, size);
  auto bin = Multiaddr::from_bytes(in);
  if (bin.ok()) {
    if (bin->to_bytes() != Bytes(in.begin(), in.end())) std::abort();
    auto text = Multiaddr::parse(bin->to_string());
    if (!text.ok() || !(*text == *bin)) std::abort();
    (void)bin->host();
    (void)bin->tcp_port();
    (void)bin->peer_id();
    (void)bin->without_peer_id();
  }
  auto text = Multiaddr::parse(to_string(in));
  if (text.ok()) {
    auto back = Multiaddr::from_bytes(text->to_bytes());
    if (!back.ok() || !(*back == *text)) std::abort();
    auto reprinted = Multiaddr::parse(text->to_string());
    if (!reprinted.ok() || !(*reprinted == *text)) std::abort();
  }
  return 0;
}
