#include "p2p/yamux.h"

#include <algorithm>
#include <limits>
#include <string>

namespace noloco::p2p::yamux {
namespace {

const Clock& default_clock() {
  static const SteadyClock clock;
  return clock;
}

}  // namespace

Status SessionOptions::validate() const {
  if (initial_window != kInitialWindow) {
    return invalid_argument("yamux: initial_window must be 256 KiB (the spec assumes it)");
  }
  if (max_window < initial_window) return invalid_argument("yamux: max_window below initial_window");
  if (max_total_receive_window < initial_window) {
    return invalid_argument("yamux: max_total_receive_window below one window");
  }
  if (max_streams == 0) return invalid_argument("yamux: max_streams must be positive");
  if (max_data_frame == 0) return invalid_argument("yamux: max_data_frame must be positive");
  if (max_send_buffer == 0) return invalid_argument("yamux: max_send_buffer must be positive");
  if (output_hard_cap < output_high_water) return invalid_argument("yamux: output_hard_cap below high water");
  return Status::Ok();
}

Session::Session(SessionOptions options)
    : opt_(options),
      clock_(options.clock ? options.clock : &default_clock()),
      next_stream_id_(options.is_client ? 1 : 2) {
  if (opt_.send_initial_ping) ping();
}

Status Session::fail(Status why, GoAwayCode code) {
  if (!dead_) {
    if (!local_go_away_) go_away(code);
    dead_ = true;
  }
  return why;
}

void Session::emit(Event::Kind kind, uint32_t stream) {
  Event e;
  e.kind = kind;
  e.stream = stream;
  events_.push_back(std::move(e));
}

void Session::send_control(FrameType type, uint16_t flags, uint32_t stream, uint32_t length) {
  Header h;
  h.type = type;
  h.flags = flags;
  h.stream_id = stream;
  h.length = length;
  encode_header(output_, h);
}

std::vector<Event> Session::take_events() {
  std::vector<Event> out;
  out.swap(events_);
  return out;
}

Bytes Session::take_output() {
  Bytes out;
  take_output_into(out);
  return out;
}

void Session::take_output_into(Bytes& out) {
  out.clear();
  out.swap(output_);
  pump_all();
}

Status Session::feed(ByteView in) { return feed(std::span<const ByteView>(&in, 1)); }

Status Session::feed(std::span<const ByteView> parts) {
  if (dead_) return protocol_error("yamux: session is closed");
  size_t rest = 0;  // bytes of this call not yet parsed: sizes one Data event for all of them
  for (ByteView p : parts) rest += p.size();
  for (ByteView in : parts) {
    rest -= in.size();
    NOLOCO_RETURN_IF_ERROR(feed_part(in, rest));
  }
  if (output_.size() > opt_.output_hard_cap) {
    return fail(protocol_error("yamux: peer does not read what we send"), GoAwayCode::kInternalError);
  }
  return Status::Ok();
}

Status Session::feed_part(ByteView in, size_t after) {
  while (!in.empty()) {
    if (payload_left_ > 0) {
      size_t n = std::min<size_t>(payload_left_, in.size());
      if (!payload_discard_) deliver_data(payload_stream_, in.first(n), in.size() + after);
      in = in.subspan(n);
      payload_left_ -= static_cast<uint32_t>(n);
      if (payload_left_ == 0 && !payload_discard_) {
        if (payload_flags_ & kRst) {
          if (streams_.erase(payload_stream_)) emit(Event::Kind::kStreamReset, payload_stream_);
        } else if (payload_flags_ & kFin) {
          remote_fin(payload_stream_);
        }
      }
      continue;
    }
    size_t n = std::min(kHeaderSize - header_have_, in.size());
    std::copy_n(in.data(), n, header_buf_ + header_have_);
    header_have_ += n;
    in = in.subspan(n);
    if (header_have_ == kHeaderSize) {
      header_have_ = 0;
      Status st = handle_header();
      if (!st.ok()) return st;
    }
  }
  return Status::Ok();
}

Status Session::handle_header() {
  Result<Header> hr = decode_header(header_buf_);
  if (!hr.ok()) return fail(hr.status(), GoAwayCode::kProtocolError);
  const Header h = *hr;
  switch (h.type) {
    case FrameType::kData: {
      if (h.stream_id == 0) return fail(protocol_error("yamux: data on stream 0"), GoAwayCode::kProtocolError);
      bool refused = false;
      if (h.flags & kSyn) NOLOCO_RETURN_IF_ERROR(handle_new_stream(h, &refused));
      auto it = streams_.find(h.stream_id);
      payload_stream_ = h.stream_id;
      payload_flags_ = h.flags;
      payload_left_ = h.length;
      payload_discard_ = refused || it == streams_.end();
      if (payload_discard_) {
        // Data for a stream we reset or refused may still be in flight; drop it as it streams
        // past. A length beyond any window we could have granted is still a violation.
        if (h.length > opt_.max_window) {
          return fail(too_large("yamux: data frame of " + std::to_string(h.length) + " bytes"),
                      GoAwayCode::kProtocolError);
        }
        return Status::Ok();
      }
      Stream& s = it->second;
      if (h.length > s.recv_available) {
        return fail(protocol_error("yamux: peer sent " + std::to_string(h.length) +
                                   " bytes beyond a window of " + std::to_string(s.recv_available)),
                    GoAwayCode::kProtocolError);
      }
      if (s.remote_fin && h.length > 0) {
        return fail(protocol_error("yamux: data after FIN"), GoAwayCode::kProtocolError);
      }
      s.recv_available -= h.length;
      if (h.length == 0) {
        payload_discard_ = true;  // nothing to stream; act on the flags now
        if (h.flags & kRst) {
          streams_.erase(it);
          emit(Event::Kind::kStreamReset, h.stream_id);
        } else if (h.flags & kFin) {
          remote_fin(h.stream_id);
        }
      }
      return Status::Ok();
    }
    case FrameType::kWindowUpdate:
      return handle_window_update(h);
    case FrameType::kPing:
      if (h.stream_id != 0) return fail(protocol_error("yamux: ping on a stream"), GoAwayCode::kProtocolError);
      if (h.flags & kSyn) {
        send_control(FrameType::kPing, kAck, 0, h.length);
      } else if ((h.flags & kAck) && ping_outstanding_ && *ping_outstanding_ == h.length) {
        rtt_ = clock_->now() - ping_sent_;
        ping_outstanding_.reset();
        emit(Event::Kind::kPong, 0);
      }
      return Status::Ok();
    case FrameType::kGoAway: {
      remote_go_away_ = true;
      Event e;
      e.kind = Event::Kind::kGoAway;
      e.code = h.length;
      events_.push_back(std::move(e));
      return Status::Ok();
    }
  }
  return Status::Ok();
}

Status Session::handle_new_stream(const Header& h, bool* refused) {
  const uint32_t id = h.stream_id;
  const bool peer_is_client = !opt_.is_client;
  if ((id % 2 == 1) != peer_is_client) {
    return fail(protocol_error("yamux: peer opened stream " + std::to_string(id) + " with our parity"),
                GoAwayCode::kProtocolError);
  }
  if (streams_.count(id)) {
    return fail(protocol_error("yamux: SYN for open stream " + std::to_string(id)), GoAwayCode::kProtocolError);
  }
  if (local_go_away_ || streams_.size() >= opt_.max_streams ||
      total_recv_target() + opt_.initial_window > opt_.max_total_receive_window) {
    send_control(FrameType::kWindowUpdate, kRst, id, 0);
    *refused = true;
    return Status::Ok();
  }
  Stream& s = streams_[id];
  s.last_update = clock_->now();
  send_control(FrameType::kWindowUpdate, kAck, id, start_window(s));
  emit(Event::Kind::kStreamOpened, id);
  return Status::Ok();
}

Status Session::handle_window_update(const Header& h) {
  if (h.stream_id == 0) return fail(protocol_error("yamux: window update on stream 0"), GoAwayCode::kProtocolError);
  bool refused = false;
  if (h.flags & kSyn) NOLOCO_RETURN_IF_ERROR(handle_new_stream(h, &refused));
  if (refused) return Status::Ok();
  auto it = streams_.find(h.stream_id);
  if (it == streams_.end()) return Status::Ok();  // late frame for a stream already gone
  if (h.flags & kRst) {
    streams_.erase(it);
    emit(Event::Kind::kStreamReset, h.stream_id);
    return Status::Ok();
  }
  Stream& s = it->second;
  if (uint64_t{s.send_window} + h.length > std::numeric_limits<uint32_t>::max()) {
    return fail(protocol_error("yamux: send window overflow"), GoAwayCode::kProtocolError);
  }
  s.send_window += h.length;
  pump(h.stream_id, s);
  if (h.flags & kFin) remote_fin(h.stream_id);
  else maybe_forget(h.stream_id);
  return Status::Ok();
}

void Session::deliver_data(uint32_t id, ByteView chunk, size_t size_hint) {
  if (!events_.empty() && events_.back().kind == Event::Kind::kData && events_.back().stream == id) {
    append(events_.back().data, chunk);
    return;
  }
  Event e;
  e.kind = Event::Kind::kData;
  e.stream = id;
  // The rest of this feed() is likely more frames of the same stream: one allocation for all.
  e.data.reserve(size_hint);
  e.data.assign(chunk.begin(), chunk.end());
  events_.push_back(std::move(e));
}

void Session::remote_fin(uint32_t id) {
  auto it = streams_.find(id);
  if (it == streams_.end() || it->second.remote_fin) return;
  it->second.remote_fin = true;
  emit(Event::Kind::kStreamFinished, id);
  maybe_forget(id);
}

void Session::maybe_forget(uint32_t id) {
  auto it = streams_.find(id);
  if (it == streams_.end()) return;
  const Stream& s = it->second;
  if (s.remote_fin && s.local_fin_sent && s.pending_size() == 0) {
    streams_.erase(it);
    emit(Event::Kind::kStreamClosed, id);
  }
}

Result<uint32_t> Session::open_stream() {
  if (dead_) return Status(StatusCode::kUnavailable, "yamux: session is closed");
  if (remote_go_away_ || local_go_away_) return Status(StatusCode::kUnavailable, "yamux: session is going away");
  if (streams_.size() >= opt_.max_streams) return too_large("yamux: stream limit reached");
  if (total_recv_target() + opt_.initial_window > opt_.max_total_receive_window) {
    return too_large("yamux: receive memory limit reached");
  }
  if (next_stream_id_ > std::numeric_limits<uint32_t>::max() - 2) {
    return Status(StatusCode::kUnavailable, "yamux: stream ids exhausted");
  }
  const uint32_t id = next_stream_id_;
  next_stream_id_ += 2;
  Stream& s = streams_[id];
  s.last_update = clock_->now();
  send_control(FrameType::kWindowUpdate, kSyn, id, start_window(s));
  return id;
}

Result<Session::Stream*> Session::writable_stream(uint32_t id) {
  if (dead_) return Status(StatusCode::kUnavailable, "yamux: session is closed");
  auto it = streams_.find(id);
  if (it == streams_.end()) return Status(StatusCode::kUnavailable, "yamux: stream " + std::to_string(id) + " is gone");
  if (it->second.fin_queued) return invalid_argument("yamux: write after close_write");
  return &it->second;
}

Result<size_t> Session::write(uint32_t id, ByteView data) {
  NOLOCO_ASSIGN_OR_RETURN(Stream * sp, writable_stream(id));
  Stream& s = *sp;
  // What the peer's window lets out now plus the buffer; the window term is capped so a peer
  // granting a huge window cannot make us hold more than max_window + max_send_buffer.
  const size_t capacity = std::min(s.send_window, opt_.max_window) + opt_.max_send_buffer;
  const size_t room = capacity > s.pending_size() ? capacity - s.pending_size() : 0;
  const size_t n = std::min(room, data.size());
  if (n < data.size()) {
    s.writer_blocked = true;
    s.writer_direct = false;
  }
  size_t direct = 0;
  if (s.pending_size() == 0) direct = frame_out(id, s, data.first(n));  // skip the buffer copy
  if (direct < n) {
    if (s.pending_head > 0 && s.pending_head >= s.pending.size() / 2) {
      s.pending.erase(s.pending.begin(), s.pending.begin() + static_cast<std::ptrdiff_t>(s.pending_head));
      s.pending_head = 0;
    }
    s.pending.insert(s.pending.end(), data.begin() + static_cast<std::ptrdiff_t>(direct),
                     data.begin() + static_cast<std::ptrdiff_t>(n));
  }
  pump(id, s);
  return n;
}

Result<size_t> Session::write_direct(uint32_t id, ByteView data) {
  NOLOCO_ASSIGN_OR_RETURN(Stream * sp, writable_stream(id));
  Stream& s = *sp;
  // Buffered bytes go first; pump() has already moved out all of them it could.
  const size_t n = s.pending_size() == 0 ? frame_out(id, s, data) : 0;
  if (n < data.size()) {
    s.writer_blocked = true;
    s.writer_direct = true;
  }
  return n;
}

bool Session::writer_room(const Stream& s) const {
  if (s.writer_direct) {
    return s.pending_size() == 0 && s.send_window > 0 && output_.size() < opt_.output_high_water;
  }
  return s.pending_size() < opt_.max_send_buffer / 2;
}

Status Session::close_write(uint32_t id) {
  if (dead_) return Status(StatusCode::kUnavailable, "yamux: session is closed");
  auto it = streams_.find(id);
  if (it == streams_.end()) return Status(StatusCode::kUnavailable, "yamux: stream " + std::to_string(id) + " is gone");
  it->second.fin_queued = true;
  pump(id, it->second);
  maybe_forget(id);
  return Status::Ok();
}

void Session::reset(uint32_t id) {
  if (dead_) return;
  if (streams_.erase(id)) send_control(FrameType::kWindowUpdate, kRst, id, 0);
}

size_t Session::frame_out(uint32_t id, Stream& s, ByteView src) {
  size_t done = 0;
  while (done < src.size() && s.send_window > 0 && output_.size() < opt_.output_high_water) {
    const size_t n = std::min<size_t>({src.size() - done, s.send_window, opt_.max_data_frame});
    send_control(FrameType::kData, 0, id, static_cast<uint32_t>(n));
    output_.insert(output_.end(), src.begin() + static_cast<std::ptrdiff_t>(done),
                   src.begin() + static_cast<std::ptrdiff_t>(done + n));
    s.send_window -= static_cast<uint32_t>(n);
    done += n;
  }
  return done;
}

void Session::pump(uint32_t id, Stream& s) {
  if (dead_) return;
  while (s.pending_size() > 0 && s.send_window > 0 && output_.size() < opt_.output_high_water) {
    const size_t n = std::min<size_t>({s.pending_size(), s.send_window, opt_.max_data_frame});
    uint16_t flags = 0;
    if (s.fin_queued && n == s.pending_size()) {
      flags |= kFin;
      s.local_fin_sent = true;
    }
    send_control(FrameType::kData, flags, id, static_cast<uint32_t>(n));
    const uint8_t* from = s.pending.data() + s.pending_head;
    output_.insert(output_.end(), from, from + n);
    s.pending_head += n;
    s.send_window -= static_cast<uint32_t>(n);
  }
  if (s.pending_size() == 0) {
    s.pending.clear();
    s.pending_head = 0;
    if (s.fin_queued && !s.local_fin_sent) {
      send_control(FrameType::kWindowUpdate, kFin, id, 0);
      s.local_fin_sent = true;
    }
  }
  if (s.writer_blocked && writer_room(s)) {
    s.writer_blocked = false;
    emit(Event::Kind::kWritable, id);
  }
}

void Session::pump_all() {
  std::vector<uint32_t> ids;
  for (auto& [id, s] : streams_) {
    if (s.pending_size() > 0 || s.writer_blocked) ids.push_back(id);
  }
  for (uint32_t id : ids) {
    auto it = streams_.find(id);
    if (it == streams_.end()) continue;
    pump(id, it->second);
    maybe_forget(id);
  }
}

uint32_t Session::start_window(Stream& s) {
  // The caller checked that the initial window fits; the rest is granted only where it fits too.
  const size_t others = total_recv_target() - s.recv_target;
  const size_t room = opt_.max_total_receive_window > others ? opt_.max_total_receive_window - others : 0;
  const uint32_t start =
      static_cast<uint32_t>(std::max<size_t>(opt_.initial_window, std::min<size_t>(learned_window_, room)));
  const uint32_t extra = start - s.recv_target;
  s.recv_target = start;
  s.recv_available += extra;
  return extra;
}

size_t Session::total_recv_target() const {
  size_t total = 0;
  for (const auto& [id, s] : streams_) total += s.recv_target;
  return total;
}

void Session::consume(uint32_t id, size_t n) {
  if (dead_) return;
  auto it = streams_.find(id);
  if (it == streams_.end()) return;
  Stream& s = it->second;
  s.unacked_consumed += static_cast<uint32_t>(std::min<size_t>(n, s.recv_target));
  if (s.remote_fin || s.unacked_consumed < s.recv_target / 2) return;
  const TimePoint now = clock_->now();
  uint32_t grow = 0;
  if (rtt_ && s.recv_target < opt_.max_window) {
    const Duration rtt = std::max(*rtt_, opt_.min_tuning_rtt);
    if (now - s.last_update < 4 * rtt) {
      const uint32_t target = std::min(opt_.max_window, s.recv_target * 2);
      const size_t total = total_recv_target();
      if (total + (target - s.recv_target) <= opt_.max_total_receive_window) grow = target - s.recv_target;
    }
  }
  s.recv_target += grow;
  learned_window_ = std::max(learned_window_, s.recv_target);
  const uint32_t delta = s.unacked_consumed + grow;
  s.recv_available += delta;
  s.unacked_consumed = 0;
  s.last_update = now;
  send_control(FrameType::kWindowUpdate, 0, id, delta);
}

void Session::ping() {
  if (dead_ || ping_outstanding_) return;
  ping_outstanding_ = ++ping_nonce_;
  ping_sent_ = clock_->now();
  send_control(FrameType::kPing, kSyn, 0, *ping_outstanding_);
}

void Session::go_away(GoAwayCode code) {
  if (dead_ || local_go_away_) return;
  local_go_away_ = true;
  send_control(FrameType::kGoAway, 0, 0, static_cast<uint32_t>(code));
}

uint32_t Session::receive_window_target(uint32_t id) const {
  auto it = streams_.find(id);
  return it == streams_.end() ? 0 : it->second.recv_target;
}

uint32_t Session::send_window(uint32_t id) const {
  auto it = streams_.find(id);
  return it == streams_.end() ? 0 : it->second.send_window;
}

size_t Session::send_buffered(uint32_t id) const {
  auto it = streams_.find(id);
  return it == streams_.end() ? 0 : it->second.pending_size();
}

}  // namespace noloco::p2p::yamux
