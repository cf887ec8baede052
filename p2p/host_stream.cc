// HostStream: buffering between a connection's stream events and the application's reads and
// writes. Received chunks wait in the inbox until read; only then is their window returned to
// the peer, so an application that stops reading stops the peer instead of growing memory.
#include <asio/post.hpp>

#include "common/log.h"
#include "common/varint.h"
#include "p2p/host.h"
#include "p2p/host_connection.h"

namespace noloco::p2p {

HostStream::HostStream(asio::io_context& io, std::weak_ptr<HostConnection> conn, uint32_t id, std::string protocol,
                       PeerId remote, bool inbound, size_t max_message)
    : io_(io),
      conn_(std::move(conn)),
      id_(id),
      protocol_(std::move(protocol)),
      remote_(std::move(remote)),
      inbound_(inbound),
      max_message_(max_message) {}

void HostStream::post(std::function<void()> fn) {
  asio::post(io_, [fn = std::move(fn)] {
    try {
      fn();
    } catch (const std::exception& e) {
      NLOG_ERROR("p2p: stream callback threw: {}", e.what());
    }
  });
}

void HostStream::read_some(ReadCallback cb) {
  // Bytes read_message received beyond its last message come first (a protocol that starts
  // with messages and goes on raw, such as a relayed connection after its STATUS).
  if (!message_buf_.empty() && !pending_read_) {
    post([cb = std::move(cb), rest = std::move(message_buf_)]() mutable { cb(std::move(rest)); });
    message_buf_.clear();
    return;
  }
  read_raw(std::move(cb));
}

void HostStream::read_raw(ReadCallback cb) {
  if (pending_read_) {
    post([cb = std::move(cb)] { cb(internal_error("read_some: a read is already pending")); });
    return;
  }
  pending_read_ = std::move(cb);
  deliver();
}

void HostStream::deliver() {
  if (!pending_read_) return;
  if (!inbox_.empty()) {
    Bytes chunk = std::move(inbox_.front());
    inbox_.pop_front();
    if (auto c = conn_.lock()) c->stream_consume(id_, chunk.size());
    post([cb = std::move(pending_read_), chunk = std::move(chunk)]() mutable { cb(std::move(chunk)); });
    pending_read_ = nullptr;
  } else if (!error_.ok()) {
    post([cb = std::move(pending_read_), st = error_] { cb(st); });
    pending_read_ = nullptr;
  } else if (eof_) {
    post([cb = std::move(pending_read_)] { cb(Bytes{}); });
    pending_read_ = nullptr;
  }
}

void HostStream::on_data(Bytes data) {
  if (data.empty()) return;
  inbox_.push_back(std::move(data));
  deliver();
}

void HostStream::on_finished() {
  eof_ = true;
  deliver();
}

void HostStream::on_error(Status why) {
  if (eof_ && write_closed_ && writes_.empty()) return;  // already finished cleanly
  if (error_.ok()) error_ = why.ok() ? Status(StatusCode::kUnavailable, "stream closed") : why;
  inbox_.clear();
  fail_writes(error_);
  deliver();
}

void HostStream::on_writable() { pump_writes(); }

void HostStream::write(Bytes data, WriteCallback cb) {
  if (!error_.ok() || write_closed_ || close_after_writes_) {
    Status st = !error_.ok() ? error_ : invalid_argument("write after close_write");
    if (cb) post([cb = std::move(cb), st] { cb(st); });
    return;
  }
  writes_.push_back(PendingWrite{std::move(data), 0, std::move(cb)});
  pump_writes();
}

void HostStream::pump_writes() {
  auto c = conn_.lock();
  if (!c) {
    fail_writes(Status(StatusCode::kUnavailable, "connection is closed"));
    return;
  }
  while (!writes_.empty()) {
    PendingWrite& w = writes_.front();
    if (w.offset < w.data.size()) {
      Result<size_t> n = c->stream_write(id_, ByteView(w.data).subspan(w.offset));
      if (!n.ok()) {
        if (error_.ok()) error_ = n.status();
        fail_writes(error_);
        break;
      }
      w.offset += *n;
      if (w.offset < w.data.size()) break;  // wait for on_writable
    }
    if (w.cb) post([cb = std::move(w.cb)] { cb(Status::Ok()); });
    writes_.pop_front();
  }
  if (writes_.empty() && close_after_writes_ && !write_closed_) {
    write_closed_ = true;
    (void)c->stream_close_write(id_);
  }
  c->flush();
}

void HostStream::fail_writes(const Status& why) {
  auto writes = std::move(writes_);
  writes_.clear();
  for (auto& w : writes) {
    if (w.cb) post([cb = std::move(w.cb), why] { cb(why); });
  }
}

void HostStream::close_write() {
  if (write_closed_ || close_after_writes_ || !error_.ok()) return;
  close_after_writes_ = true;
  pump_writes();
}

void HostStream::reset() {
  if (auto c = conn_.lock()) c->stream_reset(id_);
  on_error(Status(StatusCode::kUnavailable, "stream reset locally"));
}

void HostStream::read_to_end(size_t max, ReadCallback cb) {
  read_to_end_step(std::make_shared<Bytes>(), max, std::move(cb));
}

void HostStream::read_to_end_step(std::shared_ptr<Bytes> acc, size_t max, ReadCallback cb) {
  // The callback holds the stream until the read completes; a closing connection completes
  // every pending read with an error, so this cannot outlive the connection.
  read_some([self = shared_from_this(), acc, max, cb = std::move(cb)](Result<Bytes> r) mutable {
    if (!r.ok()) return cb(r.status());
    if (r->empty()) return cb(std::move(*acc));
    if (acc->size() + r->size() > max) {
      self->reset();
      return cb(too_large("stream carried more than " + std::to_string(max) + " bytes"));
    }
    append(*acc, *r);
    self->read_to_end_step(std::move(acc), max, std::move(cb));
  });
}

void HostStream::read_message(ReadCallback cb, size_t max) {
  if (max == 0) max = max_message_;
  read_message_step(max, std::move(cb));
}

// message_buf_ holds bytes received but not yet part of a returned message.
void HostStream::read_message_step(size_t max, ReadCallback cb) {
  if (!message_buf_.empty()) {
    auto v = read_varint(message_buf_);
    if (!v.ok() && v.status().code() != StatusCode::kTruncated) {
      reset();
      return post([cb = std::move(cb), st = v.status().context("message length")] { cb(st); });
    }
    if (v.ok()) {
      if (v->value > max) {
        reset();
        return post([cb = std::move(cb), st = too_large("message of " + std::to_string(v->value) +
                                                        " bytes exceeds the cap of " + std::to_string(max))] {
          cb(st);
        });
      }
      const size_t total = v->consumed + static_cast<size_t>(v->value);
      if (message_buf_.size() >= total) {
        Bytes msg(message_buf_.begin() + static_cast<std::ptrdiff_t>(v->consumed),
                  message_buf_.begin() + static_cast<std::ptrdiff_t>(total));
        message_buf_.erase(message_buf_.begin(), message_buf_.begin() + static_cast<std::ptrdiff_t>(total));
        return post([cb = std::move(cb), msg = std::move(msg)]() mutable { cb(std::move(msg)); });
      }
    }
  }
  read_raw([self = shared_from_this(), max, cb = std::move(cb)](Result<Bytes> r) mutable {
    if (!r.ok()) return cb(r.status());
    if (r->empty()) {
      return cb(truncated(self->message_buf_.empty() ? "end of stream" : "stream ended inside a message"));
    }
    append(self->message_buf_, *r);
    self->read_message_step(max, std::move(cb));
  });
}

}  // namespace noloco::p2p
