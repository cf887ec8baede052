// Replica state <-> storage checkpoint (see checkpointing.h).
#include "trainer/node/checkpointing.h"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <functional>
#include <thread>
#include <sstream>
#include <vector>

#include "trainer/core/replica_state.h"

namespace noloco::node {
namespace {

int64_t now_unix_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

Result<StateCounters> parse_counters(ByteView b) {
  if (b.size() != 24) return corrupt("counters: expected 24 bytes, got " + std::to_string(b.size()));
  return StateCounters{get_u64_le(b.data()), get_u64_le(b.data() + 8), get_u64_le(b.data() + 16)};
}

// Copies one blob into the snapshot and hashes it on the way, a cache-sized piece at a time:
// the hash reads the piece just written, from the cache, so the bytes cross memory once.
uint64_t copy_and_hash(ByteView from, uint8_t* to) {
  constexpr size_t kPiece = 256 << 10;
  storage::BlobHasher hash;
  for (size_t at = 0; at < from.size(); at += kPiece) {
    const size_t n = std::min(kPiece, from.size() - at);
    std::memcpy(to + at, from.data() + at, n);
    hash.update(ByteView(to + at, n));
  }
  return hash.digest();
}

// The replica's state copied into one snapshot buffer (storage/blob_data.h: not zero-filled,
// huge pages, laid out like the data file so the writer can use O_DIRECT), each blob a slice
// of it with its checksum. Blobs are shared out over a few threads (a blob's hash is one
// sequential stream): training waits for the snapshot either way.
Result<storage::Checkpoint> snapshot_state(const trainer::Replica& replica, storage::SnapshotPool* pool) {
  NOLOCO_ASSIGN_OR_RETURN(std::vector<trainer::BlobSource> sources, trainer::view_state(replica));
  std::vector<uint64_t> offsets;
  uint64_t total = 0;
  for (const auto& s : sources) offsets.push_back(total), total += s.data().size();
  NOLOCO_ASSIGN_OR_RETURN(std::shared_ptr<storage::SnapshotBuffer> buffer,
                          pool ? pool->take(total) : storage::SnapshotBuffer::allocate(total));
  // Largest blob first onto the least loaded thread.
  const size_t threads = std::clamp(std::thread::hardware_concurrency(), 1u, 4u);
  std::vector<size_t> order(sources.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return sources[a].data().size() > sources[b].data().size(); });
  std::vector<std::vector<size_t>> work(threads);
  std::vector<uint64_t> load(threads, 0);
  for (size_t i : order) {
    const size_t t = static_cast<size_t>(std::min_element(load.begin(), load.end()) - load.begin());
    work[t].push_back(i);
    load[t] += sources[i].data().size();
  }
  std::vector<uint64_t> checksums(sources.size());
  auto run = [&](size_t t) {
    for (size_t i : work[t]) checksums[i] = copy_and_hash(sources[i].data(), buffer->data() + offsets[i]);
  };
  std::vector<std::thread> helpers;
  for (size_t t = 1; t < threads; ++t)
    if (!work[t].empty()) helpers.emplace_back(run, t);
  run(0);
  for (auto& h : helpers) h.join();
  storage::Checkpoint cp;
  for (size_t i = 0; i < sources.size(); ++i) {
    storage::BlobData data(buffer, offsets[i], sources[i].data().size());
    data.set_checksum(checksums[i]);
    cp.blobs.push_back({sources[i].name, std::move(data)});
  }
  return cp;
}

}  // namespace

std::string config_difference(const std::string& saved, const std::string& running) {
  if (saved == running) return {};
  std::istringstream a(saved), b(running);
  std::string la, lb;
  while (true) {
    const bool ga = static_cast<bool>(std::getline(a, la));
    const bool gb = static_cast<bool>(std::getline(b, lb));
    if (!ga) la = "(nothing)";
    if (!gb) lb = "(nothing)";
    if (la != lb || (!ga && !gb)) break;
  }
  return "stored '" + la + "', flags give '" + lb + "'";
}

Result<StateCounters> read_counters(const storage::Checkpoint& checkpoint) {
  const storage::NamedBlob* c = checkpoint.find("counters");
  if (c == nullptr) return corrupt("checkpoint has no 'counters' blob");
  return parse_counters(c->data);
}

Status prepare_snapshots(const trainer::Replica& replica, storage::SnapshotPool& pool, bool in_background) {
  NOLOCO_ASSIGN_OR_RETURN(std::vector<trainer::BlobSource> sources, trainer::view_state(replica));
  uint64_t total = 0;
  for (const auto& s : sources) total += s.data().size();
  if (in_background) return pool.prepare_in_background(total), Status::Ok();
  return pool.prepare(total);
}

Result<storage::Checkpoint> make_checkpoint(const trainer::Replica& replica, const std::string& run_id,
                                            const std::string& run_config,
                                            std::map<std::string, std::string> fields,
                                            storage::SnapshotPool* pool) {
  NOLOCO_ASSIGN_OR_RETURN(storage::Checkpoint cp, snapshot_state(replica, pool));
  NOLOCO_ASSIGN_OR_RETURN(StateCounters counters, read_counters(cp));
  cp.manifest.run_id = run_id;
  cp.manifest.step = counters.inner_step;
  cp.manifest.outer_step = counters.outer_step;
  cp.manifest.created_unix_ms = now_unix_ms();
  cp.manifest.config = run_config;
  cp.manifest.codec = "fp32-le-raw";
  fields["format"] = kNodeCheckpointFormat;
  fields["replica_format"] = trainer::kReplicaStateFormat;
  cp.manifest.fields = std::move(fields);
  return cp;
}

Status restore_checkpoint(trainer::Replica& replica, const storage::Checkpoint& checkpoint,
                          const std::string& run_config) {
  const auto& m = checkpoint.manifest;
  auto fmt = m.fields.find("format");
  if (fmt == m.fields.end() || fmt->second != kNodeCheckpointFormat)
    return unsupported("checkpoint format is '" + (fmt == m.fields.end() ? std::string("(none)") : fmt->second) +
                       "', expected '" + kNodeCheckpointFormat + "'");
  if (std::string d = config_difference(m.config, run_config); !d.empty())
    return invalid_argument("the store holds a run with a different config: " + d);
  NOLOCO_ASSIGN_OR_RETURN(StateCounters counters, read_counters(checkpoint));
  if (counters.inner_step != m.step || counters.outer_step != m.outer_step)
    return corrupt("checkpoint manifest says step " + std::to_string(m.step) + "/outer " +
                   std::to_string(m.outer_step) + " but its counters say " +
                   std::to_string(counters.inner_step) + "/" + std::to_string(counters.outer_step));
  std::vector<trainer::NamedBlob> blobs;
  blobs.reserve(checkpoint.blobs.size());
  for (const auto& b : checkpoint.blobs) blobs.push_back({b.name, b.data.to_bytes()});
  return trainer::import_state(replica, blobs);
}

Result<trainer::ModelConfig> model_config_of(const storage::Checkpoint& checkpoint) {
  const storage::NamedBlob* c = checkpoint.find("config");
  if (c == nullptr) return corrupt("checkpoint has no 'config' blob");
  std::map<std::string, std::string> kv;
  std::istringstream in(to_string(c->data));
  std::string line;
  while (std::getline(in, line)) {
    const size_t eq = line.find('=');
    if (eq != std::string::npos) kv[line.substr(0, eq)] = line.substr(eq + 1);
  }
  trainer::ModelConfig mc;
  mc.name = "stored";
  auto get = [&](const char* key, int64_t& out) -> Status {
    auto it = kv.find(key);
    if (it == kv.end()) return corrupt(std::string("config blob lacks ") + key);
    try {
      size_t used = 0;
      out = std::stoll(it->second, &used);
      if (used != it->second.size()) throw std::invalid_argument("trailing");
    } catch (const std::exception&) {
      return corrupt(std::string("config blob: bad ") + key + " '" + it->second + "'");
    }
    return Status::Ok();
  };
  NOLOCO_RETURN_IF_ERROR(get("model.vocab_size", mc.vocab_size));
  NOLOCO_RETURN_IF_ERROR(get("model.d_model", mc.d_model));
  NOLOCO_RETURN_IF_ERROR(get("model.n_layer", mc.n_layer));
  NOLOCO_RETURN_IF_ERROR(get("model.n_head", mc.n_head));
  NOLOCO_RETURN_IF_ERROR(get("model.context", mc.context));
  NOLOCO_RETURN_IF_ERROR(mc.validate());
  return mc;
}

}  // namespace noloco::node
