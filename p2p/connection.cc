#include "p2p/connection.h"

#include <algorithm>
#include <utility>

namespace noloco::p2p {

ConnectionCore::ConnectionCore(const Identity& identity, ConnectionCoreOptions options)
    : identity_(identity), opt_(std::move(options)) {
  opt_.yamux.is_client = opt_.role == ConnectionRole::kDialer;
  if (!opt_.protocols) opt_.protocols = std::make_shared<const std::vector<std::string>>();
  if (opt_.psk) {
    pnet_.emplace(*opt_.psk);
    raw_out_.append(pnet_->take_output());
  }
  const std::vector<std::string> security{std::string(kNoiseProtocolId)};
  if (opt_.role == ConnectionRole::kDialer) {
    ms_dialer_ = std::make_unique<MultistreamDialer>(security);
    send_raw(ms_dialer_->take_output());
  } else {
    ms_listener_ = std::make_unique<MultistreamListener>(security);
    send_raw(ms_listener_->take_output());
  }
}

Status ConnectionCore::fail(Status s) {
  if (error_.ok()) error_ = std::move(s);
  return error_;
}

void ConnectionCore::send_raw(ByteView bytes) {
  if (bytes.empty()) return;
  raw_out_.append(pnet_ ? pnet_->encrypt(bytes) : Bytes(bytes.begin(), bytes.end()));
}

Status ConnectionCore::send_secure(ByteView plaintext) {
  if (plaintext.empty()) return Status::Ok();
  // Sealed straight into the send buffer (and pnet applied there): no intermediate copy.
  const size_t n = NoiseTransport::sealed_size(plaintext.size());
  std::span<uint8_t> frames = raw_out_.prepare(n);
  NOLOCO_RETURN_IF_ERROR(transport_->encrypt_to(plaintext, frames));
  if (pnet_) NOLOCO_RETURN_IF_ERROR(pnet_->encrypt_in_place(frames));
  raw_out_.commit(n);
  return Status::Ok();
}

bool ConnectionCore::has_output() const {
  return !raw_out_.empty() || (session_ && session_->has_output());
}

Bytes ConnectionCore::take_output() {
  ByteView v = take_output_view();
  return Bytes(v.begin(), v.end());
}

ByteView ConnectionCore::take_output_view() {
  if (session_ && error_.ok()) {
    Status st = flush_session_output();
    if (!st.ok()) (void)fail(st);
    // Taking the output lets blocked writers go on (kWritable): report that now rather than
    // at the next feed(), which may be a long way off on a connection that mostly sends.
    if (error_.ok() && session_->has_events()) (void)process_session();
  }
  std::swap(raw_out_, raw_taken_);
  raw_out_.clear();
  return raw_taken_.view();
}

Status ConnectionCore::flush_session_output() {
  if (!session_ || !session_->has_output()) return Status::Ok();
  session_->take_output_into(session_out_);
  return send_secure(session_out_);
}

std::vector<ConnectionEvent> ConnectionCore::take_events() {
  std::vector<ConnectionEvent> out;
  out.swap(events_);
  return out;
}

void ConnectionCore::emit(ConnectionEvent::Kind kind, uint32_t stream) {
  ConnectionEvent e;
  e.kind = kind;
  e.stream = stream;
  events_.push_back(std::move(e));
}

Status ConnectionCore::feed(ByteView raw) {
  if (!error_.ok()) return error_;
  Bytes copy(raw.begin(), raw.end());
  return feed_in_place(copy);
}

Status ConnectionCore::feed_in_place(std::span<uint8_t> raw) {
  if (!error_.ok()) return error_;
  if (raw.empty()) return Status::Ok();
  std::span<uint8_t> plain = pnet_ ? pnet_->decrypt_in_place(raw) : raw;
  Status st = on_plain(plain);
  if (!st.ok()) return fail(st);
  return Status::Ok();
}

Status ConnectionCore::on_plain(std::span<uint8_t> data) {
  if (data.empty()) return Status::Ok();
  switch (phase_) {
    case Phase::kSecurityNegotiation: {
      // Garbage here is what a peer with another pre-shared key (or none) looks like.
      const char* where = pnet_ ? "security negotiation (does the peer use the same PSK?)"
                                : "security negotiation (does the peer require a PSK?)";
      Bytes leftover;
      if (ms_dialer_) {
        NOLOCO_RETURN_IF_ERROR(ms_dialer_->feed(data).context(where));
        send_raw(ms_dialer_->take_output());
        if (!ms_dialer_->done()) return Status::Ok();
        leftover = ms_dialer_->take_leftover();
      } else {
        NOLOCO_RETURN_IF_ERROR(ms_listener_->feed(data).context(where));
        send_raw(ms_listener_->take_output());
        if (!ms_listener_->done()) return Status::Ok();
        leftover = ms_listener_->take_leftover();
      }
      ms_dialer_.reset();
      ms_listener_.reset();
      const NoiseRole role = opt_.role == ConnectionRole::kDialer ? NoiseRole::kInitiator : NoiseRole::kResponder;
      handshake_ = std::make_unique<NoiseHandshake>(role, identity_, opt_.expected_remote);
      send_raw(handshake_->take_output());
      phase_ = Phase::kNoise;
      return on_plain(leftover);
    }
    case Phase::kNoise: {
      NOLOCO_RETURN_IF_ERROR(handshake_->feed(data));
      send_raw(handshake_->take_output());
      if (!handshake_->done()) return Status::Ok();
      NOLOCO_ASSIGN_OR_RETURN(NoiseTransport t, handshake_->take_transport());
      transport_.emplace(std::move(t));
      remote_ = handshake_->remote_peer_id();
      Bytes leftover = handshake_->take_leftover();
      handshake_.reset();
      phase_ = Phase::kMuxerNegotiation;
      NOLOCO_RETURN_IF_ERROR(start_muxer_negotiation());
      return on_plain(leftover);
    }
    case Phase::kMuxerNegotiation:
    case Phase::kReady: {
      // Every frame of this read is authenticated before any of it is used.
      parts_.clear();
      NOLOCO_RETURN_IF_ERROR(transport_->decrypt_in_place(data, parts_).context("noise transport"));
      size_t i = 0;
      for (; i < parts_.size() && phase_ == Phase::kMuxerNegotiation; ++i) {
        NOLOCO_RETURN_IF_ERROR(on_secure_plain(parts_[i]));
      }
      if (i == parts_.size()) return Status::Ok();
      return feed_session(std::span<const ByteView>(parts_).subspan(i));
    }
  }
  return Status::Ok();
}

Status ConnectionCore::start_muxer_negotiation() {
  const std::vector<std::string> muxers{std::string(kYamuxProtocolId)};
  if (opt_.role == ConnectionRole::kDialer) {
    ms_dialer_ = std::make_unique<MultistreamDialer>(muxers);
    return send_secure(ms_dialer_->take_output());
  }
  ms_listener_ = std::make_unique<MultistreamListener>(muxers);
  return send_secure(ms_listener_->take_output());
}

Status ConnectionCore::on_secure_plain(ByteView plaintext) {
  if (plaintext.empty()) return Status::Ok();
  if (phase_ == Phase::kMuxerNegotiation) {
    Bytes leftover;
    if (ms_dialer_) {
      NOLOCO_RETURN_IF_ERROR(ms_dialer_->feed(plaintext).context("muxer negotiation"));
      NOLOCO_RETURN_IF_ERROR(send_secure(ms_dialer_->take_output()));
      if (!ms_dialer_->done()) return Status::Ok();
      leftover = ms_dialer_->take_leftover();
    } else {
      NOLOCO_RETURN_IF_ERROR(ms_listener_->feed(plaintext).context("muxer negotiation"));
      NOLOCO_RETURN_IF_ERROR(send_secure(ms_listener_->take_output()));
      if (!ms_listener_->done()) return Status::Ok();
      leftover = ms_listener_->take_leftover();
    }
    ms_dialer_.reset();
    ms_listener_.reset();
    session_ = std::make_unique<yamux::Session>(opt_.yamux);
    phase_ = Phase::kReady;
    emit(ConnectionEvent::Kind::kUpgraded, 0);
    if (leftover.empty()) return process_session();
    return on_secure_plain(leftover);
  }
  return feed_session(std::span<const ByteView>(&plaintext, 1));
}

Status ConnectionCore::feed_session(std::span<const ByteView> plaintext) {
  Status st = session_->feed(plaintext);
  // Events before a violation are still delivered; the caller closes the connection.
  Status ps = process_session();
  if (!st.ok()) return st.context("yamux");
  return ps;
}

Status ConnectionCore::process_session() {
  using K = yamux::Event::Kind;
  for (auto& ev : session_->take_events()) {
    const uint32_t id = ev.stream;
    switch (ev.kind) {
      case K::kStreamOpened: {
        StreamState& st = streams_[id];
        st.inbound = true;
        st.listener = std::make_unique<MultistreamListener>(*opt_.protocols);
        Bytes out = st.listener->take_output();
        (void)session_->write(id, out);  // a fresh stream always has window for a header
        break;
      }
      case K::kData: {
        auto it = streams_.find(id);
        if (it == streams_.end()) break;
        if (it->second.ready) {
          ConnectionEvent e;
          e.kind = ConnectionEvent::Kind::kData;
          e.stream = id;
          e.data = std::move(ev.data);
          emit(std::move(e));
        } else {
          on_stream_bytes(id, it->second, std::move(ev.data));
        }
        break;
      }
      case K::kStreamFinished: {
        auto it = streams_.find(id);
        if (it == streams_.end()) break;
        if (it->second.ready) {
          emit(ConnectionEvent::Kind::kStreamFinished, id);
        } else {
          // The peer gave up before agreeing on a protocol.
          const bool inbound = it->second.inbound;
          const bool lazy = it->second.lazy;
          streams_.erase(it);
          session_->reset(id);
          if (lazy) {
            emit(ConnectionEvent::Kind::kStreamReset, id);
          } else if (!inbound) {
            ConnectionEvent e;
            e.kind = ConnectionEvent::Kind::kStreamFailed;
            e.stream = id;
            e.status = Status(StatusCode::kUnavailable, "stream closed during protocol negotiation");
            emit(std::move(e));
          }
        }
        break;
      }
      case K::kStreamReset:
      case K::kStreamClosed: {
        auto it = streams_.find(id);
        if (it == streams_.end()) break;
        const bool ready = it->second.announced();
        const bool inbound = it->second.inbound;
        streams_.erase(it);
        if (ready) {
          emit(ev.kind == K::kStreamReset ? ConnectionEvent::Kind::kStreamReset : ConnectionEvent::Kind::kStreamClosed,
               id);
        } else if (!inbound) {
          ConnectionEvent e;
          e.kind = ConnectionEvent::Kind::kStreamFailed;
          e.stream = id;
          e.status = Status(StatusCode::kUnavailable, "stream reset by the peer (stream limit?)");
          emit(std::move(e));
        }
        break;
      }
      case K::kWritable: {
        auto it = streams_.find(id);
        if (it != streams_.end() && it->second.announced()) emit(ConnectionEvent::Kind::kWritable, id);
        break;
      }
      case K::kGoAway:
        emit(ConnectionEvent::Kind::kGoAway, 0);
        break;
      case K::kPong:
        break;
    }
  }
  return Status::Ok();
}

void ConnectionCore::on_stream_bytes(uint32_t id, StreamState& st, Bytes data) {
  // Negotiation bytes are ours to consume: return their window at once.
  session_->consume(id, data.size());
  Status fs;
  Bytes out;
  bool done = false;
  std::string protocol;
  Bytes leftover;
  if (st.listener) {
    fs = st.listener->feed(data);
    out = st.listener->take_output();
    done = st.listener->done();
    if (done) {
      protocol = st.listener->selected_protocol();
      leftover = st.listener->take_leftover();
    }
  } else {
    fs = st.dialer->feed(data);
    out = st.dialer->take_output();
    done = st.dialer->done();
    if (done) {
      protocol = st.dialer->selected_protocol();
      leftover = st.dialer->take_leftover();
    }
  }
  if (!out.empty()) (void)session_->write(id, out);
  if (!fs.ok()) {
    const bool inbound = st.inbound;
    const bool lazy = st.lazy;
    streams_.erase(id);
    session_->reset(id);
    if (lazy) {
      emit(ConnectionEvent::Kind::kStreamReset, id);
    } else if (!inbound) {
      ConnectionEvent e;
      e.kind = ConnectionEvent::Kind::kStreamFailed;
      e.stream = id;
      e.status = fs;
      emit(std::move(e));
    }
    return;
  }
  if (!done) return;
  const bool announced = st.lazy;
  st.ready = true;
  st.listener.reset();
  st.dialer.reset();
  st.credit = leftover.size();
  if (!announced) {
    ConnectionEvent e;
    e.kind = ConnectionEvent::Kind::kStreamReady;
    e.stream = id;
    e.inbound = st.inbound;
    e.protocol = std::move(protocol);
    emit(std::move(e));
  }
  if (!leftover.empty()) {
    ConnectionEvent d;
    d.kind = ConnectionEvent::Kind::kData;
    d.stream = id;
    d.data = std::move(leftover);
    emit(std::move(d));
  }
}

Result<uint32_t> ConnectionCore::open_stream(std::vector<std::string> protocols) {
  if (!error_.ok()) return error_;
  if (!session_) return Status(StatusCode::kUnavailable, "connection not upgraded yet");
  if (protocols.empty()) return invalid_argument("open_stream: no protocol given");
  NOLOCO_ASSIGN_OR_RETURN(uint32_t id, session_->open_stream());
  const bool lazy = protocols.size() == 1 && std::find(opt_.lazy_protocols.begin(), opt_.lazy_protocols.end(),
                                                       protocols[0]) != opt_.lazy_protocols.end();
  std::string protocol = protocols[0];
  StreamState& st = streams_[id];
  st.dialer = std::make_unique<MultistreamDialer>(std::move(protocols));
  Bytes out = st.dialer->take_output();
  (void)session_->write(id, out);
  if (lazy) {
    // Writes queue behind the proposal in the stream's order; the answer is checked when it comes.
    st.lazy = true;
    ConnectionEvent e;
    e.kind = ConnectionEvent::Kind::kStreamReady;
    e.stream = id;
    e.protocol = std::move(protocol);
    emit(std::move(e));
  }
  return id;
}

Result<size_t> ConnectionCore::write(uint32_t stream, ByteView data) {
  if (!error_.ok()) return error_;
  auto it = streams_.find(stream);
  if (it == streams_.end() || !it->second.announced()) return Status(StatusCode::kUnavailable, "stream is not open");
  // The caller keeps what is not taken until kWritable, so yamux need not copy it aside.
  return session_->write_direct(stream, data);
}

Status ConnectionCore::close_write(uint32_t stream) {
  if (!error_.ok()) return error_;
  auto it = streams_.find(stream);
  if (it == streams_.end()) return Status(StatusCode::kUnavailable, "stream is not open");
  return session_->close_write(stream);
}

void ConnectionCore::reset(uint32_t stream) {
  if (!session_) return;
  streams_.erase(stream);
  session_->reset(stream);
}

void ConnectionCore::consume(uint32_t stream, size_t n) {
  if (!session_) return;
  auto it = streams_.find(stream);
  if (it == streams_.end()) return;
  const size_t k = std::min(n, it->second.credit);
  it->second.credit -= k;
  if (n > k) session_->consume(stream, n - k);
}

void ConnectionCore::go_away() {
  if (session_) session_->go_away(yamux::GoAwayCode::kNormal);
}

}  // namespace noloco::p2p
