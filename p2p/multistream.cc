#include "p2p/multistream.h"

#include <algorithm>
#include <optional>
#include <utility>

#include "common/varint.h"

namespace noloco::p2p {

namespace {

constexpr std::string_view kNa = "na";
constexpr std::string_view kLs = "ls";

// For error messages: at most 64 characters, non-printables as '?'.
std::string printable(std::string_view s) {
  std::string out;
  for (char c : s.substr(0, 64)) out += (c >= 0x20 && c < 0x7f) ? c : '?';
  if (s.size() > 64) out += "...";
  return out;
}

bool valid_protocol(const std::string& p) {
  return !p.empty() && p.size() < kMaxMultistreamMessage && p.find('\n') == std::string::npos;
}

// Takes one complete message from the front of `in`. nullopt: need more bytes. The length is
// checked against the cap before the message body is waited for, so a peer announcing
// gigabytes is refused after reading at most 9 bytes.
Result<std::optional<std::string>> take_message(Bytes& in) {
  auto len = read_varint(in);
  if (!len.ok()) {
    if (len.status().code() == StatusCode::kTruncated) return std::optional<std::string>();
    return corrupt("multistream: bad length prefix: " + len.status().message());
  }
  if (len->value > kMaxMultistreamMessage) {
    return too_large("multistream: message of " + std::to_string(len->value) + " bytes over the cap of " +
                     std::to_string(kMaxMultistreamMessage));
  }
  if (len->value == 0) return protocol_error("multistream: empty message");
  size_t total = len->consumed + static_cast<size_t>(len->value);
  if (in.size() < total) return std::optional<std::string>();
  if (in[total - 1] != '\n') return protocol_error("multistream: message does not end in a newline");
  std::string msg(in.begin() + static_cast<std::ptrdiff_t>(len->consumed), in.begin() + static_cast<std::ptrdiff_t>(total - 1));
  in.erase(in.begin(), in.begin() + static_cast<std::ptrdiff_t>(total));
  return std::optional<std::string>(std::move(msg));
}

// The first message from either side is always exactly the header, so its bytes are checked
// as they arrive: garbage (e.g. a peer with another pnet key) fails at the first wrong byte
// instead of waiting for a length that some random prefix announced.
Status check_header_prefix(const Bytes& in) {
  static const Bytes expected = encode_multistream_message(kMultistreamHeader);
  size_t n = std::min(in.size(), expected.size());
  if (!std::equal(in.begin(), in.begin() + static_cast<std::ptrdiff_t>(n), expected.begin())) {
    return protocol_error(
        "multistream: expected the /multistream/1.0.0 header, got other bytes (a private network key (pnet) on "
        "one side only, or different keys, looks like this)");
  }
  return Status::Ok();
}

}  // namespace

Bytes encode_multistream_message(std::string_view text) {
  Bytes out;
  put_varint(out, text.size() + 1);
  append(out, as_bytes(text));
  out.push_back('\n');
  return out;
}

// ---- Dialer ----

MultistreamDialer::MultistreamDialer(std::vector<std::string> protocols) : protocols_(std::move(protocols)) {
  if (protocols_.empty()) {
    (void)fail(invalid_argument("multistream: no protocol to propose"));
    return;
  }
  for (const auto& p : protocols_) {
    if (!valid_protocol(p)) {
      (void)fail(invalid_argument("multistream: bad protocol name '" + printable(p) + "'"));
      return;
    }
  }
  // The header and the first proposal go out together (what go/js-libp2p dialers do too).
  append(out_, encode_multistream_message(kMultistreamHeader));
  append(out_, encode_multistream_message(protocols_[0]));
}

Status MultistreamDialer::fail(Status s) {
  state_ = State::kFailed;
  error_ = std::move(s);
  out_.clear();
  in_.clear();
  return error_;
}

Status MultistreamDialer::feed(ByteView in) {
  if (failed()) return error_;
  append(in_, in);
  if (state_ == State::kAwaitHeader) {
    Status s = check_header_prefix(in_);
    if (!s.ok()) return fail(s);
  }
  while (state_ == State::kAwaitHeader || state_ == State::kAwaitAnswer) {
    auto msg = take_message(in_);
    if (!msg.ok()) return fail(msg.status());
    if (!msg->has_value()) return Status::Ok();
    const std::string& m = **msg;
    if (state_ == State::kAwaitHeader) {
      if (m != kMultistreamHeader) return fail(protocol_error("multistream: expected header, got '" + printable(m) + "'"));
      state_ = State::kAwaitAnswer;
    } else if (m == protocols_[next_]) {
      selected_ = m;
      state_ = State::kDone;  // anything still in in_ belongs to the selected protocol
    } else if (m == kNa) {
      if (++next_ == protocols_.size()) return fail(unsupported("multistream: the remote supports none of our protocols"));
      append(out_, encode_multistream_message(protocols_[next_]));
    } else {
      return fail(protocol_error("multistream: unexpected answer '" + printable(m) + "' to '" +
                                 printable(protocols_[next_]) + "'"));
    }
  }
  return Status::Ok();
}

Bytes MultistreamDialer::take_output() { return std::exchange(out_, {}); }

Bytes MultistreamDialer::take_leftover() { return done() ? std::exchange(in_, {}) : Bytes{}; }

// ---- Listener ----

MultistreamListener::MultistreamListener(std::vector<std::string> supported) : supported_(std::move(supported)) {
  append(out_, encode_multistream_message(kMultistreamHeader));
}

Status MultistreamListener::fail(Status s) {
  state_ = State::kFailed;
  error_ = std::move(s);
  out_.clear();
  in_.clear();
  return error_;
}

Status MultistreamListener::feed(ByteView in) {
  if (failed()) return error_;
  append(in_, in);
  if (state_ == State::kAwaitHeader) {
    Status s = check_header_prefix(in_);
    if (!s.ok()) return fail(s);
  }
  while (state_ == State::kAwaitHeader || state_ == State::kAwaitProposal) {
    auto msg = take_message(in_);
    if (!msg.ok()) return fail(msg.status());
    if (!msg->has_value()) return Status::Ok();
    const std::string& m = **msg;
    if (state_ == State::kAwaitHeader) {
      if (m != kMultistreamHeader) return fail(protocol_error("multistream: expected header, got '" + printable(m) + "'"));
      state_ = State::kAwaitProposal;
      continue;
    }
    bool known = false;
    for (const auto& p : supported_) known = known || p == m;
    if (known) {
      selected_ = m;
      append(out_, encode_multistream_message(m));
      state_ = State::kDone;
    } else if (m == kLs) {
      if (++refused_ > kMaxProposals) return fail(protocol_error("multistream: too many requests"));
      // The answer is one message whose body is the supported protocols, each encoded as a
      // message itself, followed by a final '\n'.
      Bytes body;
      for (const auto& p : supported_) append(body, encode_multistream_message(p));
      Bytes msg_out;
      put_varint(msg_out, body.size() + 1);
      append(msg_out, body);
      msg_out.push_back('\n');
      append(out_, msg_out);
    } else {
      if (++refused_ > kMaxProposals) return fail(protocol_error("multistream: too many refused proposals"));
      append(out_, encode_multistream_message(kNa));
    }
  }
  return Status::Ok();
}

Bytes MultistreamListener::take_output() { return std::exchange(out_, {}); }

Bytes MultistreamListener::take_leftover() { return done() ? std::exchange(in_, {}) : Bytes{}; }

}  // namespace noloco::p2p
