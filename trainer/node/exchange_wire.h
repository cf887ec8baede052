// Wire format of /noloco/exchange/1.0.0: one outer-step payload (a header, then the encoded
// tensors in chunked frames), and a sans-IO reader that checks it as the bytes arrive.
// Torch-free: the numeric checks (codec decode, finiteness, norms) belong to the runtime; this
// file checks structure, sizes and hashes. Layout and rules: docs/protocols/exchange.md.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/bytes.h"
#include "common/hash.h"
#include "common/status.h"

namespace noloco::node {

inline constexpr std::string_view kExchangeProtocolId = "/noloco/exchange/1.0.0";
inline constexpr uint8_t kExchangeVersion = 1;
inline constexpr size_t kMaxExchangeHeaderBytes = 16 * 1024;  // the whole header frame
inline constexpr size_t kExchangeChunkBytes = 1 << 20;        // tensor bytes per frame
// Caps on header strings (checked when decoding, before anything else looks at them).
inline constexpr size_t kMaxExchangeErrorBytes = 1024;
inline constexpr size_t kMaxExchangeIdBytes = 128;  // run_id, sender
inline constexpr size_t kMaxExchangeTensors = 2;

// The two refusals a node answers an exchange with when it has no payload to give
// (docs/protocols/exchange.md, "Refusals"): "no snapshot yet" only while its process is fresh (no
// payload published and its advertised outer step not moved since it started), "no payload now"
// at any later gap (between dropping one payload and publishing the next). Callers tell them
// apart: the first at two claimed steps of one process is a false claim (claim_watch.h).
inline constexpr std::string_view kRefusalNoPayloadYet = "no snapshot yet";
inline constexpr std::string_view kRefusalPayloadBusy = "no payload now";

enum class WireForm : uint8_t { kDeltaPhi = 0, kTheta = 1 };
Result<WireForm> wire_form_from_name(std::string_view name);  // "delta_phi" | "theta"
const char* wire_form_name(WireForm form);
// The tensor names a payload of this form carries, in order: {"delta","phi"} or {"theta"}.
std::vector<std::string> wire_form_tensor_names(WireForm form);

struct TensorEntry {
  std::string name;
  uint64_t encoded_bytes = 0;
  Bytes sha256;  // of the encoded bytes
};

struct PayloadHeader {
  uint8_t version = kExchangeVersion;
  std::string error;          // non-empty: a refusal ("no snapshot yet", "wrong run", ...)
  std::string run_id;
  std::string sender;         // PeerId text of the sender
  uint64_t outer_step = 0;    // outer steps the sender had completed when the payload was taken
  uint64_t inner_step = 0;
  WireForm form = WireForm::kDeltaPhi;
  uint64_t numel = 0;         // elements of every tensor (the flat parameter vector)
  std::vector<TensorEntry> tensors;
};

// tensors[i]: codec message (trainer/core/codec.h) for header.tensors[i].
struct Payload {
  PayloadHeader header;
  std::vector<Bytes> tensors;
};

struct ExchangeExpectations {
  std::string run_id;
  uint64_t numel = 0;
  WireForm form = WireForm::kDeltaPhi;
  uint64_t max_tensor_bytes = 0;
  std::string sender;  // empty: any
};

// Where a spooled payload's frames are kept (trainer/node/payload_spool.h: an unlinked file).
class FrameStore {
 public:
  virtual ~FrameStore() = default;
  virtual Result<Bytes> read(uint64_t offset, size_t length) const = 0;
};

struct FrameSpan {
  uint64_t offset = 0;
  uint64_t length = 0;
};

// A payload ready to send: its frames in stream order (the header frame first), each with its
// length prefix and at most kExchangeChunkBytes of content, so it is sent frame by frame and
// never needs a contiguous copy. The frames are in memory (`frames`), or, spooled, in `store` at
// `spans` (then `frames` is empty) and read back one at a time when sent: a payload kept for
// callers all phase then costs no heap (docs/memory.md, "One exchange").
struct WirePayload {
  std::vector<Bytes> frames;
  std::shared_ptr<const FrameStore> store;
  std::vector<FrameSpan> spans;

  size_t frame_count() const { return store ? spans.size() : frames.size(); }
  Result<Bytes> frame(size_t i) const;  // a copy of frame i (i < frame_count())
  uint64_t size() const;                // bytes on the wire
  Result<Bytes> joined() const;         // the whole stream in one buffer (tests, tools)
};

// Frames one tensor's codec message, given as pieces of at most kExchangeChunkBytes: each
// non-empty piece becomes a frame handed to `emit` (and is freed before the next one is framed).
// Returns the header's entry for it (name, size, sha256 over the pieces).
Result<TensorEntry> frame_tensor(std::string name, std::vector<Bytes>& pieces,
                                 const std::function<Status(Bytes frame)>& emit);

// The header frame (length prefix included) for `base` with its tensor entries.
Bytes header_frame(const PayloadHeader& base);

// Frames a payload in memory from each tensor's codec message, given as pieces of at most
// kExchangeChunkBytes (one frame per non-empty piece); fills the header's tensor list (names,
// sizes, sha256 over the pieces).
WirePayload frame_payload(PayloadHeader base, std::vector<std::pair<std::string, std::vector<Bytes>>> tensor_pieces);

// Fills header.tensors (names, sizes, sha256) from the encoded codec messages.
Payload make_payload(PayloadHeader base, std::vector<std::pair<std::string, Bytes>> named_tensors);
// A refusal; `why` is cut to kMaxExchangeErrorBytes (and "refused" when empty).
Payload make_error_payload(std::string why);

// Stream bytes: frame(header), then each tensor's bytes in frames of at most
// kExchangeChunkBytes; frame = uvarint length + bytes. The header frame holds the msgpack header
// followed by the SHA-256 of those msgpack bytes.
Bytes encode_payload(const Payload& p);

// The header frame's content alone (msgpack header + its SHA-256), and its strict decoder
// (caps, types, canonical encoding, digest). Exposed for tests and tools.
Bytes encode_header(const PayloadHeader& h);
Result<PayloadHeader> decode_header(ByteView frame);

// version, run id, sender (if expected), form and the exact tensor names for it, numel, each
// encoded_bytes in (0, max_tensor_bytes], sha256 is 32 bytes. An error header gives
// kUnavailable with the peer's reason.
Status check_header(const PayloadHeader& h, const ExchangeExpectations& e);

// Sans-IO receiver: feed stream bytes in any split. After the header frame it runs check_header
// (an error header is accepted as-is and completes the payload). Tensor frames may not exceed the
// declared sizes; each tensor's sha256 is checked when complete. Any violation returns an error
// and the reader stays failed. Bytes after the end of the payload are an error.
class PayloadReader {
 public:
  explicit PayloadReader(ExchangeExpectations expect);
  Status feed(ByteView bytes);
  bool done() const;
  // The header frame arrived and passed check_header (the tensors may still be on the way):
  // enough to know who sends what for which run, so a server can start its answer.
  bool header_accepted() const { return have_header_ && state_ != State::kFailed; }
  Result<Payload> take();   // once done (moves out)
  Status finish();          // at end of stream: kTruncated unless done
  uint64_t bytes_received() const;

 private:
  enum class State { kFrameLength, kHeaderBody, kTensorBody, kDone, kTaken, kFailed };
  Status fail(Status st);
  Status on_frame_length(uint64_t len);
  Status on_header(ByteView frame);
  Status on_tensor_bytes_complete();

  ExchangeExpectations expect_;
  State state_ = State::kFrameLength;
  Status failure_;
  Bytes length_buf_;            // bytes of a varint not yet complete
  Bytes header_buf_;            // header frame being collected
  uint64_t frame_left_ = 0;     // bytes of the current frame still to come
  bool have_header_ = false;
  size_t tensor_index_ = 0;     // tensor the current/next frame belongs to
  std::optional<Sha256> hasher_;
  Payload payload_;
  uint64_t received_ = 0;
};

}  // namespace noloco::node
