// Wire format of /noloco/state/1.0.0 (state sync for late joiners): chunked, resumable download
// of a peer's current snapshot blob, verified by SHA-256. Sans-IO: the server answer is a pure
// function of the request and the snapshot, the client is a state machine fed with responses.
// Layout and rules: docs/protocols/state.md.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "common/bytes.h"
#include "common/hash.h"
#include "common/status.h"

namespace noloco::node {

inline constexpr std::string_view kStateProtocolId = "/noloco/state/1.0.0";
inline constexpr uint32_t kStateChunkBytes = 1 << 20;
inline constexpr uint8_t kStateVersion = 1;
// Message caps (each message travels as one uvarint-length-prefixed frame).
inline constexpr size_t kMaxStateRequestBytes = 512;
inline constexpr size_t kMaxStateResponseBytes = kStateChunkBytes + 2048;
inline constexpr size_t kMaxStateErrorBytes = 1024;
inline constexpr size_t kMaxStateRunIdBytes = 128;
// The refusal of a server that has no snapshot: before its first one, and for the moment it
// rebuilds one after an outer step (it drops the old one first, to never hold two).
inline constexpr std::string_view kNoStateYet = "no state yet";

struct StateRequest {
  uint8_t version = kStateVersion;
  std::string run_id;
  Bytes want_sha256;  // empty, or the 32-byte sha256 of the snapshot being fetched
  uint64_t offset = 0;
  uint32_t max_len = kStateChunkBytes;
};

struct StateResponse {
  uint8_t version = kStateVersion;
  std::string error;  // non-empty: a refusal; the other fields are then zero/empty
  uint64_t outer_step = 0, inner_step = 0;
  uint64_t total_bytes = 0;
  Bytes sha256;       // of the whole snapshot blob
  uint64_t offset = 0;
  Bytes chunk;
};

// Decoders refuse oversized messages before parsing, wrong types, trailing bytes and
// non-canonical encodings, naming the field.
Bytes encode_state_request(const StateRequest& r);
Result<StateRequest> decode_state_request(ByteView bytes);
Bytes encode_state_response(const StateResponse& r);
Result<StateResponse> decode_state_response(ByteView bytes);

// Server side: answers from the current snapshot blob. Errors: wrong run, a want_sha256 that is
// not the current snapshot ("snapshot changed"), offset at or beyond the end, no snapshot (empty
// blob: "no state yet"). max_len is capped at kStateChunkBytes.
StateResponse answer_state_request(const StateRequest& req, std::string_view run_id,
                                   ByteView snapshot, ByteView snapshot_sha256,
                                   uint64_t outer_step, uint64_t inner_step);

// Client side: assembles the blob over several request/response rounds, possibly across streams
// and reconnects (resumable from received()).
class StateDownload {
 public:
  StateDownload(std::string run_id, uint64_t max_total_bytes);
  // offset = received(); want_sha256 = the snapshot being fetched (empty before the first answer).
  StateRequest next_request() const;
  // Checks the response against the download so far (a peer's error text -> kUnavailable with
  // it; version, offset == received(), chunk non-empty and within total, total <= cap, sha256 of
  // 32 bytes, total/sha/counters unchanged). A refused response changes nothing. On the last
  // chunk it verifies the whole blob's sha256 (mismatch -> kCorrupt and the download restarts).
  Status on_response(const StateResponse& r);
  void restart();  // forget progress (e.g. the peer said "snapshot changed")
  bool complete() const;
  Bytes take();    // the blob once complete (moved out); empty before
  uint64_t received() const;
  uint64_t total() const;
  uint64_t outer_step() const;
  uint64_t inner_step() const;
  const Bytes& sha256() const { return sha_; }

 private:
  std::string run_id_;
  uint64_t cap_;
  bool started_ = false;
  bool complete_ = false;
  uint64_t received_ = 0;
  uint64_t total_ = 0, outer_ = 0, inner_ = 0;
  Bytes sha_;
  Bytes blob_;
  Sha256 hasher_;
};

}  // namespace noloco::node
