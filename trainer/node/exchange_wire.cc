#include "trainer/node/exchange_wire.h"

#include <algorithm>

#include "common/msgpack_safe.h"
#include "common/varint.h"

namespace noloco::node {

namespace {

constexpr size_t kHeaderFields = 9;
constexpr size_t kEntryFields = 3;
constexpr size_t kDigestBytes = 32;

std::string short_text(std::string_view s) {
  // Peer-supplied text in our error messages: bounded and printable.
  std::string out;
  for (char c : s.substr(0, 80)) out += (c >= 0x20 && c < 0x7f) ? c : '?';
  if (s.size() > 80) out += "...";
  return out;
}

Bytes encode_header_body(const PayloadHeader& h) {
  msgpack::sbuffer buf;
  msgpack::packer<msgpack::sbuffer> pk(buf);
  pk.pack_array(kHeaderFields);
  pk.pack_uint8(h.version);
  pk.pack(h.error);
  pk.pack(h.run_id);
  pk.pack(h.sender);
  pk.pack_uint64(h.outer_step);
  pk.pack_uint64(h.inner_step);
  pk.pack_uint8(static_cast<uint8_t>(h.form));
  pk.pack_uint64(h.numel);
  pk.pack_array(static_cast<uint32_t>(h.tensors.size()));
  for (const auto& t : h.tensors) {
    pk.pack_array(kEntryFields);
    pk.pack(t.name);
    pk.pack_uint64(t.encoded_bytes);
    pk.pack_bin(static_cast<uint32_t>(t.sha256.size()));
    pk.pack_bin_body(reinterpret_cast<const char*>(t.sha256.data()),
                     static_cast<uint32_t>(t.sha256.size()));
  }
  return Bytes(buf.data(), buf.data() + buf.size());
}

Result<PayloadHeader> decode_header_body(ByteView body) {
  MsgpackLimits limits;
  limits.max_array = kHeaderFields;
  limits.max_map = 0;
  limits.max_str = kMaxExchangeErrorBytes;
  limits.max_bin = kDigestBytes;
  limits.max_depth = 3;
  NOLOCO_ASSIGN_OR_RETURN(auto handle, msgpack_unpack_bounded(body, limits));
  const msgpack::object& o = handle.get();
  if (o.type != msgpack::type::ARRAY || o.via.array.size != kHeaderFields)
    return corrupt("exchange header: not a 9-element array");
  const msgpack::object* f = o.via.array.ptr;
  PayloadHeader h;
  NOLOCO_ASSIGN_OR_RETURN(uint64_t version, msgpack_as<uint64_t>(f[0], "version"));
  if (version != kExchangeVersion)
    return unsupported("exchange header: version " + std::to_string(version) + ", we speak " +
                       std::to_string(kExchangeVersion));
  h.version = kExchangeVersion;
  NOLOCO_ASSIGN_OR_RETURN(h.error, msgpack_as<std::string>(f[1], "error"));
  NOLOCO_ASSIGN_OR_RETURN(h.run_id, msgpack_as<std::string>(f[2], "run_id"));
  NOLOCO_ASSIGN_OR_RETURN(h.sender, msgpack_as<std::string>(f[3], "sender"));
  if (h.run_id.size() > kMaxExchangeIdBytes) return too_large("exchange header: run_id too long");
  if (h.sender.size() > kMaxExchangeIdBytes) return too_large("exchange header: sender too long");
  NOLOCO_ASSIGN_OR_RETURN(h.outer_step, msgpack_as<uint64_t>(f[4], "outer_step"));
  NOLOCO_ASSIGN_OR_RETURN(h.inner_step, msgpack_as<uint64_t>(f[5], "inner_step"));
  NOLOCO_ASSIGN_OR_RETURN(uint64_t form, msgpack_as<uint64_t>(f[6], "form"));
  if (form > static_cast<uint64_t>(WireForm::kTheta))
    return corrupt("exchange header: unknown form " + std::to_string(form));
  h.form = static_cast<WireForm>(form);
  NOLOCO_ASSIGN_OR_RETURN(h.numel, msgpack_as<uint64_t>(f[7], "numel"));
  const msgpack::object& list = f[8];
  if (list.type != msgpack::type::ARRAY) return corrupt("exchange header: 'tensors' is not an array");
  if (list.via.array.size > kMaxExchangeTensors)
    return too_large("exchange header: " + std::to_string(list.via.array.size) + " tensors");
  for (uint32_t i = 0; i < list.via.array.size; ++i) {
    const msgpack::object& e = list.via.array.ptr[i];
    if (e.type != msgpack::type::ARRAY || e.via.array.size != kEntryFields)
      return corrupt("exchange header: tensor entry is not a 3-element array");
    TensorEntry t;
    NOLOCO_ASSIGN_OR_RETURN(t.name, msgpack_as<std::string>(e.via.array.ptr[0], "tensor name"));
    NOLOCO_ASSIGN_OR_RETURN(t.encoded_bytes,
                            msgpack_as<uint64_t>(e.via.array.ptr[1], "encoded_bytes"));
    const msgpack::object& d = e.via.array.ptr[2];
    if (d.type != msgpack::type::BIN) return corrupt("exchange header: 'sha256' is not bin");
    t.sha256.assign(reinterpret_cast<const uint8_t*>(d.via.bin.ptr),
                    reinterpret_cast<const uint8_t*>(d.via.bin.ptr) + d.via.bin.size);
    h.tensors.push_back(std::move(t));
  }
  if (!h.error.empty() && !h.tensors.empty())
    return corrupt("exchange header: a refusal must not list tensors");
  // One byte string per header: refuse encodings msgpack accepts but we never write.
  if (encode_header_body(h) != Bytes(body.begin(), body.end()))
    return corrupt("exchange header: not in canonical encoding");
  return h;
}

void put_frame(Bytes& out, ByteView body) {
  put_varint(out, body.size());
  append(out, body);
}

}  // namespace

Result<WireForm> wire_form_from_name(std::string_view name) {
  if (name == "delta_phi") return WireForm::kDeltaPhi;
  if (name == "theta") return WireForm::kTheta;
  return invalid_argument("unknown wire form '" + short_text(name) + "' (use delta_phi or theta)");
}

const char* wire_form_name(WireForm form) {
  switch (form) {
    case WireForm::kDeltaPhi: return "delta_phi";
    case WireForm::kTheta: return "theta";
  }
  return "unknown";
}

std::vector<std::string> wire_form_tensor_names(WireForm form) {
  if (form == WireForm::kTheta) return {"theta"};
  return {"delta", "phi"};
}

Payload make_payload(PayloadHeader base, std::vector<std::pair<std::string, Bytes>> named_tensors) {
  Payload p;
  p.header = std::move(base);
  p.header.tensors.clear();
  for (auto& [name, bytes] : named_tensors) {
    TensorEntry e;
    e.name = name;
    e.encoded_bytes = bytes.size();
    const Sha256Digest d = sha256(bytes);
    e.sha256.assign(d.begin(), d.end());
    p.header.tensors.push_back(std::move(e));
    p.tensors.push_back(std::move(bytes));
  }
  return p;
}

Payload make_error_payload(std::string why) {
  Payload p;
  if (why.empty()) why = "refused";
  if (why.size() > kMaxExchangeErrorBytes) why.resize(kMaxExchangeErrorBytes);
  p.header.error = std::move(why);
  return p;
}

Bytes encode_header(const PayloadHeader& h) {
  Bytes frame = encode_header_body(h);
  const Sha256Digest d = sha256(frame);
  frame.insert(frame.end(), d.begin(), d.end());
  return frame;
}

Result<PayloadHeader> decode_header(ByteView frame) {
  if (frame.size() > kMaxExchangeHeaderBytes)
    return too_large("exchange header: " + std::to_string(frame.size()) + " bytes, cap " +
                     std::to_string(kMaxExchangeHeaderBytes));
  if (frame.size() <= kDigestBytes) return corrupt("exchange header: frame too short");
  const ByteView body = frame.first(frame.size() - kDigestBytes);
  const Sha256Digest d = sha256(body);
  if (!std::equal(d.begin(), d.end(), frame.end() - kDigestBytes))
    return corrupt("exchange header: digest mismatch (damaged header)");
  return decode_header_body(body);
}

Result<Bytes> WirePayload::frame(size_t i) const {
  if (i >= frame_count()) return invalid_argument("payload has no frame " + std::to_string(i));
  if (!store) return frames[i];
  return store->read(spans[i].offset, static_cast<size_t>(spans[i].length));
}

uint64_t WirePayload::size() const {
  uint64_t n = 0;
  for (const Bytes& f : frames) n += f.size();
  for (const FrameSpan& s : spans) n += s.length;
  return n;
}

Result<Bytes> WirePayload::joined() const {
  Bytes out;
  out.reserve(static_cast<size_t>(size()));
  for (size_t i = 0; i < frame_count(); ++i) {
    NOLOCO_ASSIGN_OR_RETURN(Bytes f, frame(i));
    append(out, f);
  }
  return out;
}

Result<TensorEntry> frame_tensor(std::string name, std::vector<Bytes>& pieces,
                                 const std::function<Status(Bytes frame)>& emit) {
  TensorEntry e;
  e.name = std::move(name);
  Sha256 hasher;
  for (Bytes& piece : pieces) {
    if (piece.empty()) continue;
    e.encoded_bytes += piece.size();
    hasher.update(piece);
    Bytes frame;
    frame.reserve(piece.size() + 10);
    put_frame(frame, piece);
    Bytes().swap(piece);  // freed as we go: the pieces and the frames never both exist whole
    NOLOCO_RETURN_IF_ERROR(emit(std::move(frame)));
  }
  const Sha256Digest d = hasher.finish();
  e.sha256.assign(d.begin(), d.end());
  return e;
}

Bytes header_frame(const PayloadHeader& base) {
  Bytes frame;
  put_frame(frame, encode_header(base));
  return frame;
}

WirePayload frame_payload(PayloadHeader base, std::vector<std::pair<std::string, std::vector<Bytes>>> tensor_pieces) {
  WirePayload w;
  w.frames.emplace_back();  // the header frame, once the tensors' sizes and hashes are known
  base.tensors.clear();
  auto keep = [&w](Bytes frame) {
    w.frames.push_back(std::move(frame));
    return Status::Ok();
  };
  for (auto& [name, pieces] : tensor_pieces)
    base.tensors.push_back(*frame_tensor(name, pieces, keep));  // `keep` never fails
  w.frames.front() = header_frame(base);
  return w;
}

Bytes encode_payload(const Payload& p) {
  Bytes out;
  put_frame(out, encode_header(p.header));
  for (const Bytes& t : p.tensors) {
    for (size_t off = 0; off < t.size(); off += kExchangeChunkBytes) {
      const size_t n = std::min(kExchangeChunkBytes, t.size() - off);
      put_frame(out, ByteView(t).subspan(off, n));
    }
  }
  return out;
}

Status check_header(const PayloadHeader& h, const ExchangeExpectations& e) {
  if (h.version != kExchangeVersion)
    return unsupported("exchange payload version " + std::to_string(h.version) + ", we speak " +
                       std::to_string(kExchangeVersion));
  if (!h.error.empty())
    return Status(StatusCode::kUnavailable, "peer refused the exchange: " + short_text(h.error));
  if (h.run_id != e.run_id)
    return invalid_argument("payload is for run " + short_text(h.run_id) + ", we train run " +
                            e.run_id);
  if (!e.sender.empty() && h.sender != e.sender)
    return protocol_error("payload says it is from " + short_text(h.sender) + ", but we talk to " +
                          e.sender);
  if (h.form != e.form)
    return protocol_error(std::string("payload carries the ") + wire_form_name(h.form) +
                          " form, this run exchanges " + wire_form_name(e.form));
  const auto names = wire_form_tensor_names(e.form);
  if (h.tensors.size() != names.size())
    return protocol_error("payload lists " + std::to_string(h.tensors.size()) + " tensors, the " +
                          wire_form_name(e.form) + " form has " + std::to_string(names.size()));
  for (size_t i = 0; i < names.size(); ++i)
    if (h.tensors[i].name != names[i])
      return protocol_error("payload tensor " + std::to_string(i) + " is '" +
                            short_text(h.tensors[i].name) + "', expected '" + names[i] + "'");
  if (h.numel != e.numel)
    return protocol_error("payload has " + std::to_string(h.numel) +
                          " elements per tensor, our model has " + std::to_string(e.numel));
  for (const auto& t : h.tensors) {
    if (t.encoded_bytes == 0 || t.encoded_bytes > e.max_tensor_bytes)
      return too_large("payload tensor '" + t.name + "' declares " +
                       std::to_string(t.encoded_bytes) + " bytes, allowed 1.." +
                       std::to_string(e.max_tensor_bytes));
    if (t.sha256.size() != kDigestBytes)
      return corrupt("payload tensor '" + t.name + "' has a " + std::to_string(t.sha256.size()) +
                     "-byte sha256");
  }
  return Status::Ok();
}

// ---- PayloadReader ----

PayloadReader::PayloadReader(ExchangeExpectations expect) : expect_(std::move(expect)) {}

Status PayloadReader::fail(Status st) {
  state_ = State::kFailed;
  failure_ = st.context("exchange payload");
  header_buf_.clear();
  payload_ = Payload{};
  return failure_;
}

bool PayloadReader::done() const { return state_ == State::kDone; }
uint64_t PayloadReader::bytes_received() const { return received_; }

Status PayloadReader::on_frame_length(uint64_t len) {
  if (!have_header_) {
    if (len > kMaxExchangeHeaderBytes)
      return too_large("header frame of " + std::to_string(len) + " bytes, cap " +
                       std::to_string(kMaxExchangeHeaderBytes));
    if (len <= kDigestBytes) return corrupt("header frame too short");
    header_buf_.clear();
    header_buf_.reserve(len);
    frame_left_ = len;
    state_ = State::kHeaderBody;
    return Status::Ok();
  }
  const TensorEntry& t = payload_.header.tensors[tensor_index_];
  const uint64_t left = t.encoded_bytes - payload_.tensors[tensor_index_].size();
  if (len == 0) return corrupt("empty tensor frame");
  if (len > kExchangeChunkBytes)
    return too_large("tensor frame of " + std::to_string(len) + " bytes, cap " +
                     std::to_string(kExchangeChunkBytes));
  if (len > left)
    return corrupt("tensor frame of " + std::to_string(len) + " bytes, but tensor '" + t.name +
                   "' has only " + std::to_string(left) + " bytes left");
  frame_left_ = len;
  state_ = State::kTensorBody;
  return Status::Ok();
}

Status PayloadReader::on_header(ByteView frame) {
  NOLOCO_ASSIGN_OR_RETURN(PayloadHeader h, decode_header(frame));
  have_header_ = true;
  if (!h.error.empty()) {
    payload_.header = std::move(h);
    state_ = State::kDone;
    return Status::Ok();
  }
  NOLOCO_RETURN_IF_ERROR(check_header(h, expect_));
  payload_.header = std::move(h);
  payload_.tensors.assign(payload_.header.tensors.size(), Bytes{});
  // Room for each tensor as declared (capped by check_header): filling it never reallocates, and
  // the pages are only committed as the bytes arrive.
  for (size_t i = 0; i < payload_.tensors.size(); ++i)
    payload_.tensors[i].reserve(static_cast<size_t>(payload_.header.tensors[i].encoded_bytes));
  tensor_index_ = 0;
  hasher_.emplace();
  state_ = State::kFrameLength;
  return Status::Ok();
}

Status PayloadReader::on_tensor_bytes_complete() {
  const TensorEntry& t = payload_.header.tensors[tensor_index_];
  const Sha256Digest d = hasher_->finish();
  if (!std::equal(d.begin(), d.end(), t.sha256.begin()))
    return corrupt("tensor '" + t.name + "' does not match its sha256");
  ++tensor_index_;
  if (tensor_index_ == payload_.header.tensors.size()) {
    hasher_.reset();
    state_ = State::kDone;
  } else {
    hasher_.emplace();
  }
  return Status::Ok();
}

Status PayloadReader::feed(ByteView bytes) {
  if (state_ == State::kFailed) return failure_;
  size_t pos = 0;
  while (pos < bytes.size()) {
    switch (state_) {
      case State::kFrameLength: {
        length_buf_.push_back(bytes[pos++]);
        ++received_;
        auto v = read_varint(length_buf_);
        if (!v.ok()) {
          if (v.status().code() == StatusCode::kTruncated) continue;
          return fail(v.status().context("frame length"));
        }
        length_buf_.clear();
        if (Status st = on_frame_length(v->value); !st.ok()) return fail(st);
        break;
      }
      case State::kHeaderBody: {
        const size_t n = static_cast<size_t>(std::min<uint64_t>(frame_left_, bytes.size() - pos));
        header_buf_.insert(header_buf_.end(), bytes.begin() + pos, bytes.begin() + pos + n);
        pos += n;
        received_ += n;
        frame_left_ -= n;
        if (frame_left_ == 0) {
          Bytes frame = std::move(header_buf_);
          header_buf_.clear();
          if (Status st = on_header(frame); !st.ok()) return fail(st);
        }
        break;
      }
      case State::kTensorBody: {
        const size_t n = static_cast<size_t>(std::min<uint64_t>(frame_left_, bytes.size() - pos));
        const ByteView piece = bytes.subspan(pos, n);
        Bytes& dst = payload_.tensors[tensor_index_];
        dst.insert(dst.end(), piece.begin(), piece.end());
        hasher_->update(piece);
        pos += n;
        received_ += n;
        frame_left_ -= n;
        if (frame_left_ == 0) {
          state_ = State::kFrameLength;
          if (dst.size() == payload_.header.tensors[tensor_index_].encoded_bytes)
            if (Status st = on_tensor_bytes_complete(); !st.ok()) return fail(st);
        }
        break;
      }
      case State::kDone:
      case State::kTaken:
        return fail(protocol_error(std::to_string(bytes.size() - pos) +
                                   " bytes after the end of the payload"));
      case State::kFailed:
        return failure_;
    }
  }
  return Status::Ok();
}

Result<Payload> PayloadReader::take() {
  if (state_ == State::kFailed) return failure_;
  if (state_ == State::kTaken) return internal_error("exchange payload already taken");
  if (state_ != State::kDone) return internal_error("exchange payload not complete yet");
  state_ = State::kTaken;
  return std::move(payload_);
}

Status PayloadReader::finish() {
  switch (state_) {
    case State::kFailed: return failure_;
    case State::kDone:
    case State::kTaken: return Status::Ok();
    default: break;
  }
  std::string where = !have_header_ ? "in the header"
                                    : "in tensor '" + payload_.header.tensors[tensor_index_].name +
                                          "'";
  return truncated("exchange payload: stream ended after " + std::to_string(received_) +
                   " bytes, " + where);
}

}  // namespace noloco::node
