// Fuzzes AutoNAT v1: the Message decoder (anything decoded re-encodes to the same message),
// the server's decision on the input as a DIAL request (exactly one of a reply or addresses to
// dial; dialled addresses only on the observed IP and within the cap; limits hold), and the
// client fed the input as an answer (votes never exceed the servers that answered).
#include <cstdint>
#include <cstdlib>

#include "p2p/autonat.h"

using namespace noloco;
using namespace noloco::p2p;
using namespace noloco::p2p::autonat;

namespace {

const PeerId& fixed_peer(uint8_t which) {
  static const PeerId a = Identity::from_seed(Bytes(32, 1))->peer_id();
  static const PeerId b = Identity::from_seed(Bytes(32, 2))->peer_id();
  return which & 1 ? a : b;
}

void check_codec(ByteView in) {
  auto m = decode_message(in);
  if (!m.ok()) return;
  Message copy = *m;
  copy.dropped_addrs = 0;
  auto again = decode_message(encode_message(copy));
  if (!again.ok() || !(*again == copy)) std::abort();
}

void check_server(ByteView in) {
  ServerOptions o;
  o.max_requests = 3;
  o.max_requests_per_peer = 2;
  Server s(o);
  const auto observed = *Multiaddr::from_ip_tcp("1.2.3.4", 5555);
  size_t admitted = 0;
  for (int i = 0; i < 6; ++i) {
    auto d = s.on_request(fixed_peer(static_cast<uint8_t>(i)), observed, in, TimePoint{});
    if (d.reply.has_value() == !d.dial.empty()) std::abort();
    if (d.reply && !decode_message(encode_message(*d.reply)).ok()) std::abort();
    if (d.dial.size() > o.max_dial_addrs) std::abort();
    for (const auto& a : d.dial) {
      if (a.host() != observed.host()) std::abort();
    }
    if (!d.dial.empty()) ++admitted;
  }
  if (admitted > o.max_requests) std::abort();
}

void check_client(ByteView in) {
  Client c(ClientOptions{});
  (void)c.on_answer(fixed_peer(0), Bytes(in.begin(), in.end()));
  (void)c.on_answer(fixed_peer(1), Bytes(in.begin(), in.end()));
  auto st = c.status();
  if (st.public_votes + st.private_votes > 2) std::abort();
  if (st.reachability != Reachability::kUnknown) std::abort();  // 2 votes < min_votes 3
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  ByteView in(data, size);
  check_codec(in);
  check_server(in);
  check_client(in);
  return 0;
}
