#include "trainer/node/state_wire.h"

#include <algorithm>

#include "common/msgpack_safe.h"

namespace noloco::node {

namespace {

constexpr size_t kRequestFields = 5;
constexpr size_t kResponseFields = 8;
constexpr size_t kDigestBytes = 32;

void pack_bin(msgpack::packer<msgpack::sbuffer>& pk, ByteView b) {
  pk.pack_bin(static_cast<uint32_t>(b.size()));
  pk.pack_bin_body(reinterpret_cast<const char*>(b.data()), static_cast<uint32_t>(b.size()));
}

Result<Bytes> get_bin(const msgpack::object& o, const char* what) {
  if (o.type != msgpack::type::BIN) return corrupt(std::string("msgpack: field '") + what + "' is not bin");
  const auto* p = reinterpret_cast<const uint8_t*>(o.via.bin.ptr);
  return Bytes(p, p + o.via.bin.size);
}

Status check_version(uint64_t version, const char* what) {
  if (version != kStateVersion)
    return unsupported(std::string(what) + ": version " + std::to_string(version) + ", we speak " +
                       std::to_string(kStateVersion));
  return Status::Ok();
}

StateResponse refusal(std::string why) {
  StateResponse r;
  r.error = std::move(why);
  return r;
}

}  // namespace

Bytes encode_state_request(const StateRequest& r) {
  msgpack::sbuffer buf;
  msgpack::packer<msgpack::sbuffer> pk(buf);
  pk.pack_array(kRequestFields);
  pk.pack_uint8(r.version);
  pk.pack(r.run_id);
  pack_bin(pk, r.want_sha256);
  pk.pack_uint64(r.offset);
  pk.pack_uint32(r.max_len);
  return Bytes(buf.data(), buf.data() + buf.size());
}

Result<StateRequest> decode_state_request(ByteView bytes) {
  if (bytes.size() > kMaxStateRequestBytes)
    return too_large("state request: " + std::to_string(bytes.size()) + " bytes, cap " +
                     std::to_string(kMaxStateRequestBytes));
  MsgpackLimits limits;
  limits.max_array = kRequestFields;
  limits.max_map = 0;
  limits.max_str = kMaxStateRunIdBytes;
  limits.max_bin = kDigestBytes;
  limits.max_depth = 2;
  NOLOCO_ASSIGN_OR_RETURN(auto handle, msgpack_unpack_bounded(bytes, limits));
  const msgpack::object& o = handle.get();
  if (o.type != msgpack::type::ARRAY || o.via.array.size != kRequestFields)
    return corrupt("state request: not a 5-element array");
  const msgpack::object* f = o.via.array.ptr;
  StateRequest r;
  NOLOCO_ASSIGN_OR_RETURN(uint64_t version, msgpack_as<uint64_t>(f[0], "version"));
  NOLOCO_RETURN_IF_ERROR(check_version(version, "state request"));
  NOLOCO_ASSIGN_OR_RETURN(r.run_id, msgpack_as<std::string>(f[1], "run_id"));
  NOLOCO_ASSIGN_OR_RETURN(r.want_sha256, get_bin(f[2], "want_sha256"));
  if (!r.want_sha256.empty() && r.want_sha256.size() != kDigestBytes)
    return corrupt("state request: 'want_sha256' must be empty or 32 bytes");
  NOLOCO_ASSIGN_OR_RETURN(r.offset, msgpack_as<uint64_t>(f[3], "offset"));
  NOLOCO_ASSIGN_OR_RETURN(uint64_t max_len, msgpack_as<uint64_t>(f[4], "max_len"));
  if (max_len == 0 || max_len > UINT32_MAX)
    return corrupt("state request: 'max_len' must be in 1..2^32-1");
  r.max_len = static_cast<uint32_t>(max_len);
  if (encode_state_request(r) != Bytes(bytes.begin(), bytes.end()))
    return corrupt("state request: not in canonical encoding");
  return r;
}

Bytes encode_state_response(const StateResponse& r) {
  msgpack::sbuffer buf(r.chunk.size() + 256);
  msgpack::packer<msgpack::sbuffer> pk(buf);
  pk.pack_array(kResponseFields);
  pk.pack_uint8(r.version);
  pk.pack(r.error);
  pk.pack_uint64(r.outer_step);
  pk.pack_uint64(r.inner_step);
  pk.pack_uint64(r.total_bytes);
  pack_bin(pk, r.sha256);
  pk.pack_uint64(r.offset);
  pack_bin(pk, r.chunk);
  return Bytes(buf.data(), buf.data() + buf.size());
}

Result<StateResponse> decode_state_response(ByteView bytes) {
  if (bytes.size() > kMaxStateResponseBytes)
    return too_large("state response: " + std::to_string(bytes.size()) + " bytes, cap " +
                     std::to_string(kMaxStateResponseBytes));
  MsgpackLimits limits;
  limits.max_array = kResponseFields;
  limits.max_map = 0;
  limits.max_str = kMaxStateErrorBytes;
  limits.max_bin = kStateChunkBytes;
  limits.max_depth = 2;
  NOLOCO_ASSIGN_OR_RETURN(auto handle, msgpack_unpack_bounded(bytes, limits));
  const msgpack::object& o = handle.get();
  if (o.type != msgpack::type::ARRAY || o.via.array.size != kResponseFields)
    return corrupt("state response: not an 8-element array");
  const msgpack::object* f = o.via.array.ptr;
  StateResponse r;
  NOLOCO_ASSIGN_OR_RETURN(uint64_t version, msgpack_as<uint64_t>(f[0], "version"));
  NOLOCO_RETURN_IF_ERROR(check_version(version, "state response"));
  NOLOCO_ASSIGN_OR_RETURN(r.error, msgpack_as<std::string>(f[1], "error"));
  NOLOCO_ASSIGN_OR_RETURN(r.outer_step, msgpack_as<uint64_t>(f[2], "outer_step"));
  NOLOCO_ASSIGN_OR_RETURN(r.inner_step, msgpack_as<uint64_t>(f[3], "inner_step"));
  NOLOCO_ASSIGN_OR_RETURN(r.total_bytes, msgpack_as<uint64_t>(f[4], "total_bytes"));
  NOLOCO_ASSIGN_OR_RETURN(r.sha256, get_bin(f[5], "sha256"));
  NOLOCO_ASSIGN_OR_RETURN(r.offset, msgpack_as<uint64_t>(f[6], "offset"));
  NOLOCO_ASSIGN_OR_RETURN(r.chunk, get_bin(f[7], "chunk"));
  if (!r.sha256.empty() && r.sha256.size() != kDigestBytes)
    return corrupt("state response: 'sha256' must be empty or 32 bytes");
  if (!r.error.empty() && !r.chunk.empty())
    return corrupt("state response: a refusal must not carry a chunk");
  if (r.offset > r.total_bytes || r.chunk.size() > r.total_bytes - r.offset)
    return corrupt("state response: chunk [" + std::to_string(r.offset) + ", +" +
                   std::to_string(r.chunk.size()) + ") lies outside the " +
                   std::to_string(r.total_bytes) + "-byte snapshot");
  if (encode_state_response(r) != Bytes(bytes.begin(), bytes.end()))
    return corrupt("state response: not in canonical encoding");
  return r;
}

StateResponse answer_state_request(const StateRequest& req, std::string_view run_id,
                                   ByteView snapshot, ByteView snapshot_sha256,
                                   uint64_t outer_step, uint64_t inner_step) {
  if (req.version != kStateVersion)
    return refusal("unsupported version " + std::to_string(req.version));
  if (req.run_id != run_id) return refusal("wrong run: this node trains run " + std::string(run_id));
  if (snapshot.empty()) return refusal(std::string(kNoStateYet));
  if (!req.want_sha256.empty() &&
      !std::equal(req.want_sha256.begin(), req.want_sha256.end(), snapshot_sha256.begin(),
                  snapshot_sha256.end()))
    return refusal("snapshot changed");
  if (req.offset >= snapshot.size())
    return refusal("offset " + std::to_string(req.offset) + " is beyond the end of the " +
                   std::to_string(snapshot.size()) + "-byte snapshot");
  if (req.max_len == 0) return refusal("max_len is 0");
  const uint64_t len =
      std::min<uint64_t>({req.max_len, kStateChunkBytes, snapshot.size() - req.offset});
  StateResponse r;
  r.outer_step = outer_step;
  r.inner_step = inner_step;
  r.total_bytes = snapshot.size();
  r.sha256.assign(snapshot_sha256.begin(), snapshot_sha256.end());
  r.offset = req.offset;
  const ByteView piece = snapshot.subspan(static_cast<size_t>(req.offset), static_cast<size_t>(len));
  r.chunk.assign(piece.begin(), piece.end());
  return r;
}

// ---- StateDownload ----

StateDownload::StateDownload(std::string run_id, uint64_t max_total_bytes)
    : run_id_(std::move(run_id)), cap_(max_total_bytes) {}

StateRequest StateDownload::next_request() const {
  StateRequest r;
  r.run_id = run_id_;
  r.want_sha256 = sha_;
  r.offset = received_;
  r.max_len = kStateChunkBytes;
  return r;
}

Status StateDownload::on_response(const StateResponse& r) {
  if (complete_) return protocol_error("state download: already complete");
  if (r.version != kStateVersion)
    return unsupported("state download: response version " + std::to_string(r.version));
  if (!r.error.empty())
    return Status(StatusCode::kUnavailable, "state download: peer refused: " +
                                                r.error.substr(0, kMaxStateErrorBytes));
  if (r.sha256.size() != kDigestBytes)
    return corrupt("state download: response sha256 is " + std::to_string(r.sha256.size()) +
                   " bytes, not 32");
  if (r.total_bytes == 0) return protocol_error("state download: peer offers an empty snapshot");
  if (r.total_bytes > cap_)
    return too_large("state download: snapshot of " + std::to_string(r.total_bytes) +
                     " bytes is over our cap of " + std::to_string(cap_));
  if (started_ && (r.total_bytes != total_ || r.sha256 != sha_ || r.outer_step != outer_ ||
                   r.inner_step != inner_))
    return protocol_error(
        "state download: the snapshot changed during the download (size, hash or step counters "
        "differ); restart it");
  if (r.offset != received_)
    return protocol_error("state download: chunk at offset " + std::to_string(r.offset) +
                          ", we asked for " + std::to_string(received_));
  if (r.chunk.empty()) return protocol_error("state download: empty chunk");
  if (r.chunk.size() > r.total_bytes - r.offset)
    return protocol_error("state download: chunk runs past the end of the snapshot");

  if (!started_) {
    started_ = true;
    total_ = r.total_bytes;
    sha_ = r.sha256;
    outer_ = r.outer_step;
    inner_ = r.inner_step;
    // Room for the whole blob (<= our cap) at once: growing it would copy it, twice its size at
    // the peak; the pages are only committed as the chunks arrive.
    blob_.reserve(static_cast<size_t>(total_));
  }
  blob_.insert(blob_.end(), r.chunk.begin(), r.chunk.end());
  hasher_.update(r.chunk);
  received_ += r.chunk.size();
  if (received_ < total_) return Status::Ok();

  const Sha256Digest d = hasher_.finish();
  hasher_ = Sha256();
  if (!std::equal(d.begin(), d.end(), sha_.begin(), sha_.end())) {
    restart();
    return corrupt("state download: the snapshot does not match its sha256; starting over");
  }
  complete_ = true;
  return Status::Ok();
}

void StateDownload::restart() {
  started_ = false;
  complete_ = false;
  total_ = outer_ = inner_ = 0;
  sha_.clear();
  received_ = 0;
  blob_.clear();
  blob_.shrink_to_fit();
  hasher_ = Sha256();
}

bool StateDownload::complete() const { return complete_; }

Bytes StateDownload::take() {
  if (!complete_) return {};
  return std::move(blob_);
}

uint64_t StateDownload::received() const { return received_; }
uint64_t StateDownload::total() const { return total_; }
uint64_t StateDownload::outer_step() const { return outer_; }
uint64_t StateDownload::inner_step() const { return inner_; }

}  // namespace noloco::node
