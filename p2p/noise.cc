#include "p2p/noise.h"

#include <algorithm>
#include <utility>

#include "p2p/protobuf.h"

namespace noloco::p2p {

namespace {

constexpr size_t kMaxStreamMuxers = 32;
constexpr size_t kMaxMuxerName = 256;

Bytes signed_static_key(ByteView static_public_key) {
  Bytes msg = to_bytes(kNoiseSignaturePrefix);
  append(msg, static_public_key);
  return msg;
}

}  // namespace

// ---- payload ----

Result<NoiseHandshakePayload> parse_noise_handshake_payload(ByteView bytes) {
  NoiseHandshakePayload p;
  bool have_key = false, have_sig = false;
  pb::Reader r(bytes, kMaxNoiseHandshakeMessage);
  while (!r.done()) {
    NOLOCO_ASSIGN_OR_RETURN(pb::Field f, r.next());
    if (f.type != pb::WireType::kLengthDelimited) continue;  // unknown scalar: ignore
    if (f.number == 1) {
      if (have_key) return corrupt("noise payload: identity_key repeated");
      p.identity_key.assign(f.data.begin(), f.data.end());
      have_key = true;
    } else if (f.number == 2) {
      if (have_sig) return corrupt("noise payload: identity_sig repeated");
      p.identity_sig.assign(f.data.begin(), f.data.end());
      have_sig = true;
    } else if (f.number == 4) {
      pb::Reader ext(f.data, kMaxNoiseHandshakeMessage);
      while (!ext.done()) {
        NOLOCO_ASSIGN_OR_RETURN(pb::Field e, ext.next());
        if (e.number != 2 || e.type != pb::WireType::kLengthDelimited) continue;  // e.g. webtransport certhashes
        if (p.stream_muxers.size() == kMaxStreamMuxers) return too_large("noise payload: too many stream muxers");
        if (e.data.size() > kMaxMuxerName) return too_large("noise payload: stream muxer name too long");
        p.stream_muxers.push_back(to_string(e.data));
      }
    }
  }
  return p;
}

Bytes encode_noise_handshake_payload(const NoiseHandshakePayload& payload) {
  pb::Writer w;
  w.add_bytes(1, payload.identity_key);
  w.add_bytes(2, payload.identity_sig);
  if (!payload.stream_muxers.empty()) {
    pb::Writer ext;
    for (const auto& m : payload.stream_muxers) ext.add_string(2, m);
    w.add_bytes(4, ext.bytes());
  }
  return w.take();
}

// ---- transport ----

Status NoiseTransport::fail(Status s) {
  error_ = std::move(s);
  in_.clear();
  return error_;
}

void NoiseTransport::set_nonces_for_test(uint64_t send, uint64_t receive) {
  send_.set_nonce(send);
  receive_.set_nonce(receive);
}

Status NoiseTransport::encrypt_into(ByteView plaintext, Bytes& out) {
  if (failed()) return error_;
  size_t frames = (plaintext.size() + kMaxNoisePlaintext - 1) / kMaxNoisePlaintext;
  // Refuse up front rather than half-way: either every frame is produced or none.
  if (frames > 0 && send_.nonce() > noise::kMaxNonce - (frames - 1)) {
    return fail(Status(StatusCode::kUnavailable, "noise: send nonce exhausted; the connection must be closed"));
  }
  out.reserve(out.size() + plaintext.size() + frames * (2 + noise::kTagLen));
  for (size_t pos = 0; pos < plaintext.size(); pos += kMaxNoisePlaintext) {
    ByteView chunk = plaintext.subspan(pos, std::min(kMaxNoisePlaintext, plaintext.size() - pos));
    put_u16_be(out, static_cast<uint16_t>(chunk.size() + noise::kTagLen));
    Status s = send_.encrypt_with_ad({}, chunk, out);
    if (!s.ok()) return fail(s);
  }
  return Status::Ok();
}

Result<Bytes> NoiseTransport::encrypt_frame(ByteView plaintext) {
  Bytes out;
  NOLOCO_RETURN_IF_ERROR(encrypt_into(plaintext, out));
  return out;
}

Status NoiseTransport::decrypt_into(ByteView in, Bytes& plaintext_out) {
  if (failed()) return error_;
  auto open_frame = [&](ByteView frame) -> Status {
    Status s = receive_.decrypt_with_ad({}, frame, plaintext_out);
    return s.ok() ? s : fail(s.context("noise transport"));
  };
  auto check_length = [&](size_t len) -> Status {
    return len < noise::kTagLen ? fail(corrupt("noise transport: frame shorter than its tag")) : Status::Ok();
  };
  size_t pos = 0;
  if (!in_.empty()) {  // finish the partial frame from the last call
    if (in_.size() < 2) {
      size_t n = std::min<size_t>(2 - in_.size(), in.size());
      append(in_, in.first(n));
      pos += n;
      if (in_.size() < 2) return Status::Ok();
    }
    size_t len = get_u16_be(in_.data());
    NOLOCO_RETURN_IF_ERROR(check_length(len));
    size_t n = std::min(2 + len - in_.size(), in.size() - pos);
    append(in_, in.subspan(pos, n));
    pos += n;
    if (in_.size() < 2 + len) return Status::Ok();
    NOLOCO_RETURN_IF_ERROR(open_frame(ByteView(in_).subspan(2)));
    in_.clear();
  }
  while (in.size() - pos >= 2) {  // whole frames straight from the input, no copy
    size_t len = get_u16_be(in.data() + pos);
    NOLOCO_RETURN_IF_ERROR(check_length(len));
    if (in.size() - pos - 2 < len) break;
    NOLOCO_RETURN_IF_ERROR(open_frame(in.subspan(pos + 2, len)));
    pos += 2 + len;
  }
  append(in_, in.subspan(pos));
  return Status::Ok();
}

Result<Bytes> NoiseTransport::feed(ByteView in) {
  Bytes out;
  NOLOCO_RETURN_IF_ERROR(decrypt_into(in, out));
  return out;
}

// ---- handshake ----

NoiseHandshake::NoiseHandshake(NoiseRole role, const Identity& identity, std::optional<PeerId> expected_remote)
    : role_(role),
      identity_(identity),
      expected_(std::move(expected_remote)),
      static_keys_(noise::DhKeyPair::generate()),
      hs_(role == NoiseRole::kInitiator, {}, static_keys_) {  // libp2p uses an empty prologue
  Status s = advance();
  if (!s.ok()) (void)fail(s);
}

Status NoiseHandshake::fail(Status s) {
  state_ = State::kFailed;
  error_ = std::move(s);
  in_.clear();
  out_.clear();
  return error_;
}

Bytes NoiseHandshake::make_payload() const {
  NoiseHandshakePayload p;
  p.identity_key = identity_.public_key_protobuf();
  p.identity_sig = identity_.sign(signed_static_key(static_keys_.public_key));
  return encode_noise_handshake_payload(p);
}

Status NoiseHandshake::check_payload(ByteView payload) {
  auto parsed = parse_noise_handshake_payload(payload);
  if (!parsed.ok()) return parsed.status().context("noise handshake payload");
  if (parsed->identity_key.empty() || parsed->identity_sig.empty()) {
    return protocol_error("noise handshake payload: identity key or signature missing");
  }
  auto raw_key = unmarshal_ed25519_public_key(parsed->identity_key);
  if (!raw_key.ok()) return raw_key.status().context("noise handshake identity key");
  if (!Identity::verify(*raw_key, signed_static_key(hs_.remote_static()), parsed->identity_sig)) {
    return Status(StatusCode::kPermissionDenied, "noise handshake: identity signature does not match the static key");
  }
  NOLOCO_ASSIGN_OR_RETURN(PeerId remote, PeerId::from_ed25519_public_key(*raw_key));
  if (expected_ && *expected_ != remote) {
    return Status(StatusCode::kPermissionDenied,
                  "noise handshake: expected peer " + expected_->to_string() + " but the remote is " + remote.to_string());
  }
  remote_ = std::move(remote);
  remote_muxers_ = std::move(parsed->stream_muxers);
  return Status::Ok();
}

Status NoiseHandshake::advance() {
  while (hs_.my_turn()) {
    // Message 1 carries no payload; messages 2 and 3 carry the sender's signed identity.
    Bytes payload = hs_.message_index() == 0 ? Bytes{} : make_payload();
    Bytes msg;
    NOLOCO_RETURN_IF_ERROR(hs_.write_message(payload, msg));
    if (msg.size() > kMaxNoiseHandshakeMessage) return internal_error("noise: our handshake message is too large");
    put_u16_be(out_, static_cast<uint16_t>(msg.size()));
    append(out_, msg);
  }
  if (hs_.complete()) state_ = State::kDone;
  return Status::Ok();
}

Status NoiseHandshake::on_message(ByteView message) {
  Bytes payload;
  Status s = hs_.read_message(message, payload);
  if (!s.ok()) return s.context("noise handshake message " + std::to_string(hs_.message_index() + 1));
  // After message 2 (initiator) or 3 (responder) the remote's static key is known and signed.
  if (hs_.message_index() >= 2) NOLOCO_RETURN_IF_ERROR(check_payload(payload));
  return advance();
}

Status NoiseHandshake::feed(ByteView in) {
  if (failed()) return error_;
  append(in_, in);
  while (state_ == State::kRunning && in_.size() >= 2) {
    size_t len = get_u16_be(in_.data());
    if (len > kMaxNoiseHandshakeMessage) {
      return fail(too_large("noise handshake: message of " + std::to_string(len) + " bytes over the cap of " +
                            std::to_string(kMaxNoiseHandshakeMessage)));
    }
    if (in_.size() < 2 + len) break;
    Status s = on_message(ByteView(in_).subspan(2, len));
    if (!s.ok()) return fail(s);
    in_.erase(in_.begin(), in_.begin() + static_cast<std::ptrdiff_t>(2 + len));
  }
  return Status::Ok();
}

Bytes NoiseHandshake::take_output() { return std::exchange(out_, {}); }

Bytes NoiseHandshake::take_leftover() { return done() ? std::exchange(in_, {}) : Bytes{}; }

Result<NoiseTransport> NoiseHandshake::take_transport() {
  if (!done()) return internal_error("noise: handshake not complete");
  if (transport_taken_) return internal_error("noise: transport already taken");
  transport_taken_ = true;
  NoiseTransport t;
  if (role_ == NoiseRole::kInitiator) {
    hs_.split(t.send_, t.receive_);
  } else {
    hs_.split(t.receive_, t.send_);
  }
  t.remote_ = remote_;
  return t;
}

}  // namespace noloco::p2p
