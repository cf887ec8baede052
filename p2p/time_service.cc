#include "p2p/time_service.h"

#include <chrono>
#include <memory>

namespace noloco::p2p::timeproto {
namespace {

int64_t unix_now_us() {
  return std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

void serve_time(Host& host) {
  host.set_handler(std::string(kTimeProtocolId), [](std::shared_ptr<HostStream> s) {
    // The request is the client's FIN: any byte before it is a protocol error (max 0).
    s->read_to_end(0, [s](Result<Bytes> body) {
      if (!body.ok()) return s->reset();
      s->write(encode_time_reply(static_cast<uint64_t>(unix_now_us() / 1000)));
      s->close_write();
    });
  });
}

void query_time(Host& host, const PeerId& peer, std::function<void(Result<ClockSample>)> cb) {
  host.new_stream(peer, {std::string(kTimeProtocolId)}, [cb](Result<std::shared_ptr<HostStream>> s) {
    if (!s.ok()) return cb(s.status());
    auto stream = *s;
    const int64_t t_send_us = unix_now_us();
    const auto t0 = std::chrono::steady_clock::now();
    stream->close_write();
    stream->read_to_end(kTimeReplySize, [cb, stream, t_send_us, t0](Result<Bytes> reply) {
      const auto rtt = std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - t0);
      if (!reply.ok()) return cb(reply.status().context("time"));
      auto peer_ms = decode_time_reply(*reply);
      if (!peer_ms.ok()) return cb(peer_ms.status());
      cb(clock_sample(t_send_us, rtt.count(), *peer_ms));
    });
  });
}

}  // namespace noloco::p2p::timeproto
