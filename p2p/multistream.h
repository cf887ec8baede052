// multistream-select 1.0 (github.com/libp2p/specs connections/README.md#multistream-select and
// multiformats/multistream-select): agree on one protocol for a connection or stream.
// Every message is <uvarint length><utf-8 text>'\n', the length counting the '\n'.
// Both sides first send "/multistream/1.0.0"; the dialer then proposes protocols one by one,
// the listener echoes a supported one or answers "na". "ls" (listener only) lists the supported
// protocols. Messages are capped at kMaxMultistreamMessage, checked before any allocation.
//
// Sans-IO: feed() the bytes received, send take_output(). When done(), any bytes that arrived
// after the final negotiation message belong to the selected protocol: take_leftover() and hand
// them on (a peer may send the header, its answer and the first application data in one write).
// See docs/protocols/multistream.md.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "common/bytes.h"
#include "common/status.h"

namespace noloco::p2p {

constexpr std::string_view kMultistreamHeader = "/multistream/1.0.0";
constexpr size_t kMaxMultistreamMessage = 1024;  // bytes, including the '\n'

// Encodes one multistream message (length prefix, text, '\n').
Bytes encode_multistream_message(std::string_view text);

class MultistreamDialer {
 public:
  // protocols: in order of preference, at least one; each non-empty, without '\n'.
  explicit MultistreamDialer(std::vector<std::string> protocols);

  // Consumes received bytes. Returns the terminal error once failed (and keeps returning it).
  // kUnsupported when the listener refused every protocol; kProtocolError / kCorrupt /
  // kTooLarge for a misbehaving peer.
  Status feed(ByteView in);
  Bytes take_output();  // bytes to send; the header and first proposal are ready at once

  bool done() const { return state_ == State::kDone; }
  bool failed() const { return state_ == State::kFailed; }
  const Status& error() const { return error_; }
  const std::string& selected_protocol() const { return selected_; }  // valid when done()
  Bytes take_leftover();  // bytes after the final message; valid when done()

 private:
  enum class State { kAwaitHeader, kAwaitAnswer, kDone, kFailed };
  Status fail(Status s);
  std::vector<std::string> protocols_;
  size_t next_ = 0;
  State state_ = State::kAwaitHeader;
  Status error_;
  Bytes in_;
  Bytes out_;
  std::string selected_;
};

class MultistreamListener {
 public:
  // supported: the protocols we accept; the header is ready in take_output() at once.
  explicit MultistreamListener(std::vector<std::string> supported);

  Status feed(ByteView in);
  Bytes take_output();

  bool done() const { return state_ == State::kDone; }
  bool failed() const { return state_ == State::kFailed; }
  const Status& error() const { return error_; }
  const std::string& selected_protocol() const { return selected_; }
  Bytes take_leftover();

  // Proposals answered "na" (and "ls" requests) before giving up on the peer (kProtocolError), so a peer cannot
  // keep a stream busy forever.
  static constexpr size_t kMaxProposals = 64;

 private:
  enum class State { kAwaitHeader, kAwaitProposal, kDone, kFailed };
  Status fail(Status s);
  std::vector<std::string> supported_;
  State state_ = State::kAwaitHeader;
  Status error_;
  size_t refused_ = 0;
  Bytes in_;
  Bytes out_;
  std::string selected_;
};

}  // namespace noloco::p2p
