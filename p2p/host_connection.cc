#include "p2p/host_connection.h"

#include <asio/post.hpp>

#include "common/log.h"

namespace noloco::p2p {

HostConnection::HostConnection(asio::io_context& io, std::unique_ptr<ConnectionTransport> transport,
                               const Identity& identity,
                               ConnectionCoreOptions core_options, const HostOptions& host_options, Hooks hooks,
                               std::optional<Multiaddr> remote_addr)
    : io_(io),
      transport_(std::move(transport)),
      timer_(io),
      core_(identity, std::move(core_options)),
      options_(host_options),
      hooks_(std::move(hooks)),
      remote_addr_(std::move(remote_addr)) {}

void HostConnection::post(std::function<void()> fn) {
  asio::post(io_, [fn = std::move(fn)] {
    try {
      fn();
    } catch (const std::exception& e) {
      NLOG_ERROR("p2p: callback threw: {}", e.what());
    }
  });
}

void HostConnection::start(Duration handshake_timeout) {
  timer_.expires_after(handshake_timeout);
  std::weak_ptr<HostConnection> weak = weak_from_this();
  timer_.async_wait([weak](const asio::error_code& ec) {
    if (ec) return;
    if (auto self = weak.lock(); self && !self->core_.upgraded()) {
      self->close(Status(StatusCode::kTimeout, "handshake timed out"), false);
    }
  });
  read_loop();
  flush();
}

void HostConnection::read_loop() {
  if (closed_) return;
  transport_->read([self = shared_from_this()](Status why, std::span<uint8_t> bytes) {
    if (self->closed_) return;
    if (!why.ok()) {
      if (!self->core_.upgraded()) why = why.context("handshake failed");
      self->close(why, false);
      return;
    }
    self->on_read(bytes);
    self->read_loop();
  });
}

void HostConnection::on_read(std::span<uint8_t> bytes) {
  Status st = core_.feed_in_place(bytes);
  handle_events();
  if (!st.ok()) {
    if (!core_.upgraded()) st = st.context("handshake failed");
    close(st, true);
    return;
  }
  flush();
}

void HostConnection::handle_events() {
  using K = ConnectionEvent::Kind;
  for (auto& e : core_.take_events()) {
    if (closed_) return;
    switch (e.kind) {
      case K::kUpgraded:
        timer_.cancel();
        if (hooks_.upgraded) hooks_.upgraded(shared_from_this());
        break;
      case K::kStreamReady: {
        auto stream = std::make_shared<HostStream>(io_, weak_from_this(), e.stream, e.protocol, core_.remote_peer(),
                                                   e.inbound, options_.max_message_size);
        streams_[e.stream] = stream;
        if (e.inbound) {
          if (hooks_.inbound_stream) hooks_.inbound_stream(stream);
        } else if (auto it = opening_.find(e.stream); it != opening_.end()) {
          StreamCallback cb = std::move(it->second);
          opening_.erase(it);
          post([cb = std::move(cb), stream] { cb(stream); });
        }
        break;
      }
      case K::kStreamFailed:
        if (auto it = opening_.find(e.stream); it != opening_.end()) {
          StreamCallback cb = std::move(it->second);
          opening_.erase(it);
          post([cb = std::move(cb), st = e.status] { cb(st); });
        }
        break;
      case K::kData:
        if (auto it = streams_.find(e.stream); it != streams_.end()) it->second->on_data(std::move(e.data));
        break;
      case K::kStreamFinished:
        if (auto it = streams_.find(e.stream); it != streams_.end()) it->second->on_finished();
        break;
      case K::kStreamReset:
        if (auto it = streams_.find(e.stream); it != streams_.end()) {
          auto s = it->second;
          streams_.erase(it);
          s->on_error(Status(StatusCode::kUnavailable, "stream reset by the peer"));
        }
        break;
      case K::kStreamClosed:
        if (auto it = streams_.find(e.stream); it != streams_.end()) {
          auto s = it->second;
          streams_.erase(it);
          s->on_finished();
        }
        break;
      case K::kWritable:
        if (auto it = streams_.find(e.stream); it != streams_.end()) it->second->on_writable();
        break;
      case K::kGoAway:
        remote_go_away_ = true;
        break;
    }
  }
}

void HostConnection::open_stream(std::vector<std::string> protocols, StreamCallback cb) {
  if (!upgraded()) {
    post([cb = std::move(cb)] { cb(Status(StatusCode::kUnavailable, "connection is closed")); });
    return;
  }
  Result<uint32_t> id = core_.open_stream(std::move(protocols));
  if (!id.ok()) {
    post([cb = std::move(cb), st = id.status()] { cb(st); });
    return;
  }
  opening_[*id] = std::move(cb);
  handle_events();  // a lazily selected stream is ready at once
  flush();
}

Result<size_t> HostConnection::stream_write(uint32_t id, ByteView data) {
  if (closed_) return Status(StatusCode::kUnavailable, "connection is closed");
  return core_.write(id, data);
}

Status HostConnection::stream_close_write(uint32_t id) {
  if (closed_) return Status(StatusCode::kUnavailable, "connection is closed");
  Status st = core_.close_write(id);
  flush();
  return st;
}

void HostConnection::stream_reset(uint32_t id) {
  if (closed_) return;
  core_.reset(id);
  streams_.erase(id);
  flush();
}

void HostConnection::stream_consume(uint32_t id, size_t n) {
  if (closed_) return;
  core_.consume(id, n);
  flush();
}

void HostConnection::flush() {
  if (closed_ || writing_) return;
  if (!core_.has_output()) {
    if (closing_) finish_close();
    return;
  }
  // The core keeps these bytes unchanged until the next take, and flush() takes only once
  // this write has completed.
  const ByteView out = core_.take_output_view();
  if (out.empty()) {
    if (closing_) finish_close();
    return;
  }
  writing_ = true;
  auto done = [self = shared_from_this()](Status st) {
    self->writing_ = false;
    if (self->closed_) return;
    if (!st.ok()) {
      self->close(st, false);
      return;
    }
    // Taking the output let yamux move more stream data; writers waiting on it may resume.
    self->handle_events();
    self->flush();
  };
  transport_->write(out, std::move(done));
}

void HostConnection::close(Status why, bool graceful) {
  if (closed_) return;
  auto keep_alive = shared_from_this();  // the host drops its reference from inside the hook
  if (close_reason_.ok()) close_reason_ = why;
  if (graceful && !closing_) {
    closing_ = true;
    core_.go_away();
    // Bound the goodbye: a peer that does not read cannot keep us here.
    timer_.expires_after(std::chrono::seconds(2));
    std::weak_ptr<HostConnection> weak = weak_from_this();
    timer_.async_wait([weak](const asio::error_code& ec) {
      if (ec) return;
      if (auto self = weak.lock()) self->finish_close();
    });
    // Stop taking new work now; the socket closes once the output is written.
    auto streams = std::move(streams_);
    streams_.clear();
    for (auto& [id, s] : streams) s->on_error(close_reason_);
    auto opening = std::move(opening_);
    opening_.clear();
    for (auto& [id, cb] : opening) post([cb = std::move(cb), st = close_reason_] { cb(st); });
    if (hooks_.closed) hooks_.closed(this, close_reason_);
    hooks_ = {};
    flush();
    return;
  }
  finish_close();
}

void HostConnection::finish_close() {
  if (closed_) return;
  auto keep_alive = shared_from_this();
  closed_ = true;
  timer_.cancel();
  transport_->close();
  auto streams = std::move(streams_);
  streams_.clear();
  for (auto& [id, s] : streams) s->on_error(close_reason_);
  auto opening = std::move(opening_);
  opening_.clear();
  for (auto& [id, cb] : opening) post([cb = std::move(cb), st = close_reason_] { cb(st); });
  auto closed = std::move(hooks_.closed);
  hooks_ = {};
  if (closed) closed(this, close_reason_);
}

}  // namespace noloco::p2p
