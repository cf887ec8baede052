#include "trainer/node/watched_read.h"

#include <chrono>

#include "p2p/framing.h"

namespace noloco::node {
namespace {

struct WatchedRead {
  WatchedRead(size_t max, TrickleLimits limits) : reader(max), detector(limits) {}
  p2p::LengthPrefixedReader reader;
  TrickleDetector detector;
};

void read_step(std::shared_ptr<p2p::HostStream> s, std::shared_ptr<WatchedRead> w,
               std::function<void(Result<Bytes>)> done) {
  s->read_some([s, w, done = std::move(done)](Result<Bytes> chunk) mutable {
    if (!chunk.ok()) return done(chunk.status());
    if (chunk->empty()) return done(Status(StatusCode::kTruncated, "end of stream before a whole message"));
    if (w->detector.on_bytes(std::chrono::steady_clock::now(), chunk->size())) {
      s->reset();
      return done(trickle_error(w->detector));
    }
    if (Status st = w->reader.feed(*chunk); !st.ok()) {
      s->reset();
      return done(st);
    }
    if (auto msg = w->reader.next()) return done(std::move(*msg));
    read_step(s, w, std::move(done));
  });
}

}  // namespace

Status trickle_error(const TrickleDetector& d) {
  return Status(StatusCode::kProtocolError, "trickle: " + std::to_string(d.window_bytes()) + " bytes in " +
                                          std::to_string(d.window_arrivals()) + " dribbles over the window");
}

bool is_trickle(const Status& st) {
  return st.code() == StatusCode::kProtocolError && st.message().rfind("trickle:", 0) == 0;
}

void read_message_watched(std::shared_ptr<p2p::HostStream> s, size_t max, TrickleLimits limits,
                          std::function<void(Result<Bytes>)> done) {
  read_step(std::move(s), std::make_shared<WatchedRead>(max, limits), std::move(done));
}

}  // namespace noloco::node
