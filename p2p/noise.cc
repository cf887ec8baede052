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
  completed_.clear();
  return error_;
}

void NoiseTransport::set_nonces_for_test(uint64_t send, uint64_t receive) {
  send_.set_nonce(send);
  receive_.set_nonce(receive);
}

size_t NoiseTransport::sealed_size(size_t plaintext_size) {
  const size_t frames = (plaintext_size + kMaxNoisePlaintext - 1) / kMaxNoisePlaintext;
  return plaintext_size + frames * (2 + noise::kTagLen);
}

Status NoiseTransport::encrypt_into(ByteView plaintext, Bytes& out) {
  if (failed()) return error_;
  const size_t base = out.size();
  out.resize(base + sealed_size(plaintext.size()));
  Status s = encrypt_to(plaintext, std::span<uint8_t>(out).subspan(base));
  if (!s.ok()) out.resize(base);
  return s;
}

Status NoiseTransport::encrypt_to(ByteView plaintext, std::span<uint8_t> out) {
  if (failed()) return error_;
  if (out.size() != sealed_size(plaintext.size())) return internal_error("noise: encrypt_to given the wrong size");
  const size_t frames = (plaintext.size() + kMaxNoisePlaintext - 1) / kMaxNoisePlaintext;
  // Refuse up front rather than half-way: either every frame is produced or none.
  if (frames > 0 && send_.nonce() > noise::kMaxNonce - (frames - 1)) {
    return fail(Status(StatusCode::kUnavailable, "noise: send nonce exhausted; the connection must be closed"));
  }
  uint8_t* dst = out.data();
  for (size_t pos = 0; pos < plaintext.size(); pos += kMaxNoisePlaintext) {
    ByteView chunk = plaintext.subspan(pos, std::min(kMaxNoisePlaintext, plaintext.size() - pos));
    const size_t len = chunk.size() + noise::kTagLen;
    dst[0] = static_cast<uint8_t>(len >> 8);
    dst[1] = static_cast<uint8_t>(len);
    Status s = send_.encrypt_to({}, chunk, dst + 2);
    if (!s.ok()) return fail(s);
    dst += 2 + len;
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
  Bytes copy(in.begin(), in.end());
  std::vector<ByteView> parts;
  NOLOCO_RETURN_IF_ERROR(decrypt_in_place(copy, parts));
  for (ByteView p : parts) append(plaintext_out, p);
  return Status::Ok();
}

Status NoiseTransport::decrypt_in_place(std::span<uint8_t> in, std::vector<ByteView>& parts) {
  if (failed()) return error_;
  const size_t parts_before = parts.size();
  auto open_frame = [&](std::span<uint8_t> frame) -> Status {
    Status s = receive_.decrypt_in_place({}, frame);
    if (!s.ok()) {
      parts.resize(parts_before);
      return fail(s.context("noise transport"));
    }
    if (frame.size() > noise::kTagLen) parts.push_back(ByteView(frame.first(frame.size() - noise::kTagLen)));
    return Status::Ok();
  };
  auto check_length = [&](size_t len) -> Status {
    if (len >= noise::kTagLen) return Status::Ok();
    parts.resize(parts_before);
    return fail(corrupt("noise transport: frame shorter than its tag"));
  };
  size_t pos = 0;
  if (!in_.empty()) {  // finish the partial frame from the last call
    if (in_.size() < 2) {
      size_t n = std::min<size_t>(2 - in_.size(), in.size());
      append(in_, ByteView(in.first(n)));
      pos += n;
      if (in_.size() < 2) return Status::Ok();
    }
    size_t len = get_u16_be(in_.data());
    NOLOCO_RETURN_IF_ERROR(check_length(len));
    size_t n = std::min(2 + len - in_.size(), in.size() - pos);
    append(in_, ByteView(in.subspan(pos, n)));
    pos += n;
    if (in_.size() < 2 + len) return Status::Ok();
    // Decrypt it in a buffer of its own: in_ takes the next partial frame below, and the view
    // handed out must stay valid until the next call.
    completed_.swap(in_);
    in_.clear();
    NOLOCO_RETURN_IF_ERROR(open_frame(std::span<uint8_t>(completed_).subspan(2)));
  }
  while (in.size() - pos >= 2) {  // whole frames where they lie, no copy
    size_t len = get_u16_be(in.data() + pos);
    NOLOCO_RETURN_IF_ERROR(check_length(len));
    if (in.size() - pos - 2 < len) break;
    NOLOCO_RETURN_IF_ERROR(open_frame(in.subspan(pos + 2, len)));
    pos += 2 + len;
  }
  append(in_, ByteView(in.subspan(pos)));
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
