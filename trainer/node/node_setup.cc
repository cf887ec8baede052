// Opening a node (node_setup.h): moved out of run_node so that the loop reads as the loop.
#include "trainer/node/node_setup.h"

#include <algorithm>
#include <chrono>
#include <optional>

#include <nlohmann/json.hpp>

#include "common/encoding.h"
#include "common/hash.h"
#include "common/log.h"
#include "p2p/multiaddr.h"
#include "trainer/core/data.h"
#include "trainer/core/thread_policy.h"
#include "trainer/core/replica_state.h"
#include "trainer/node/checkpointing.h"

namespace noloco::node {
namespace {

int64_t now_unix_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

Result<codec::Mode> codec_mode(const std::string& name) {
  if (name == "fp32") return codec::Mode::kFp32;
  if (name == "bf16") return codec::Mode::kBf16;
  if (name == "int8") return codec::Mode::kInt8;
  if (name == "int4") return codec::Mode::kInt4;
  return invalid_argument("unknown codec '" + name + "'");
}

// Where the run comes from: --manifest, --run-id (fetched from --join), or the store.
struct ResolvedRun {
  RunManifest manifest;
  std::string run_id;
  std::string json;
};

Result<ResolvedRun> resolve_run(const NodeOptions& o, storage::Store& store) {
  NOLOCO_ASSIGN_OR_RETURN(std::optional<std::string> stored_id, store.run_id());
  NOLOCO_ASSIGN_OR_RETURN(std::optional<Bytes> stored_manifest, store.run_manifest());
  ResolvedRun r;
  if (!o.manifest_path.empty()) {
    NOLOCO_ASSIGN_OR_RETURN(r.manifest, load_manifest_file(o.manifest_path));
    if (!o.run_id.empty()) NOLOCO_RETURN_IF_ERROR(check_run_id(r.manifest, o.run_id));
  } else if (!o.run_id.empty() && !(stored_id && *stored_id == o.run_id && stored_manifest)) {
    std::vector<p2p::Multiaddr> peers;
    for (const auto& j : o.join) {
      NOLOCO_ASSIGN_OR_RETURN(p2p::Multiaddr a, p2p::Multiaddr::parse(j));
      peers.push_back(a);
    }
    NOLOCO_ASSIGN_OR_RETURN(std::string text, fetch_run_manifest(*o.identity, o.host, peers, std::chrono::seconds(15)));
    auto parsed = manifest_from_json(text);
    if (!parsed.ok()) return parsed.status().context("the manifest a peer served");
    r.manifest = std::move(*parsed);
    NOLOCO_RETURN_IF_ERROR(check_run_id(r.manifest, o.run_id).context("refusing to train"));
  } else if (stored_manifest) {
    auto parsed = manifest_from_json(to_string(*stored_manifest));
    if (!parsed.ok()) return parsed.status().context("the run manifest in " + o.db);
    r.manifest = std::move(*parsed);
  } else {
    return invalid_argument(
        "no run to train: give --manifest FILE to start a run, or --run-id ID with --join ADDR to join one");
  }
  r.run_id = run_id_of(r.manifest);
  r.json = manifest_to_json(r.manifest);
  if (stored_id && *stored_id != r.run_id)
    return invalid_argument("the store in " + o.db + " belongs to run " + *stored_id + ", not " + r.run_id +
                            " (use another --db for another run)");
  if (!stored_id) NOLOCO_RETURN_IF_ERROR(store.set_run(r.run_id, to_bytes(r.json)));
  return r;
}

// Bootstrap addresses: --join, then what the peer book remembers (so a restarted node finds
// the swarm even when its bootstrap peer is gone).
Result<std::vector<p2p::Multiaddr>> bootstrap_addrs(const NodeOptions& o, storage::Store& store,
                                                    const p2p::PeerId& self) {
  std::vector<p2p::Multiaddr> out;
  for (const auto& j : o.join) {
    auto a = p2p::Multiaddr::parse(j);
    if (!a.ok()) return a.status().context("--join " + j);
    out.push_back(*a);
  }
  if (auto peers = store.list_peers(); peers.ok()) {
    std::sort(peers->begin(), peers->end(), [](auto& a, auto& b) { return a.last_seen_unix > b.last_seen_unix; });
    for (const auto& p : *peers) {
      auto id = p2p::PeerId::parse(p.peer_id);
      if (!id.ok() || *id == self) continue;
      for (const auto& text : p.addresses)
        if (auto a = p2p::Multiaddr::parse(text); a.ok()) {
          out.push_back(a->with_peer_id(*id));
          break;
        }
      if (out.size() >= o.join.size() + 16) break;
    }
  }
  return out;
}

// Corpus, replica, evaluation set; resumes the replica from the newest valid checkpoint.
Status open_replica(const NodeOptions& o, NodeParts& p, const p2p::PeerId& self_id) {
  const RunManifest& m = p.manifest;
  const std::string data_path = o.data.empty() ? m.data : o.data;
  NOLOCO_ASSIGN_OR_RETURN(Bytes corpus, trainer::load_corpus(data_path));
  if (!m.data_sha256.empty()) {
    const std::string got = hex_encode(sha256(corpus));
    if (got != m.data_sha256)
      return invalid_argument("the corpus at " + data_path + " has sha256 " + got + ", the run expects " +
                              m.data_sha256 + " (wrong --data?)");
  }
  p.split = trainer::split_corpus(corpus);
  const trainer::CorpusSplit& split = p.split;
  NOLOCO_ASSIGN_OR_RETURN(p.model, trainer::model_preset(m.preset));
  if (o.threads == 0) trainer::apply_default_threads(p.model);
  trainer::ReplicaConfig rc;
  rc.model = p.model;
  rc.inner.schedule.peak = m.lr;
  rc.inner.schedule.warmup = m.warmup;
  rc.inner.schedule.total = m.steps;
  rc.batch = m.batch;
  rc.seed = m.seed;
  rc.device = o.device;
  rc.data_seed = legacy_hash64(self_id.bytes()) | 1;  // our place in the data; in old checkpoints' configs
  NOLOCO_ASSIGN_OR_RETURN(p.replica, trainer::Replica::create(rc, &split.train, 0, 1));
  p.run_config = trainer::describe_config(*p.replica) + "node.manifest=" + p.manifest_json + "\n";
  NOLOCO_ASSIGN_OR_RETURN(Bytes ev_bytes, trainer::eval_windows(split.val, o.eval_windows, p.model.context + 1));
  p.eval_windows = o.eval_windows;
  p.eval_set = trainer::bytes_to_tokens(ev_bytes.data(), o.eval_windows, p.model.context + 1, p.replica->phi().device());
  auto loaded = p.store->load_latest_valid();
  if (!loaded.ok() && loaded.status().code() == StatusCode::kCorrupt) {
    // Every checkpoint is damaged. A swarm node has a better source than its disk: it starts
    // like a new node, from step 0, and the core state-syncs at join from the most advanced
    // peer that is an outer step ahead (NodeCore::on_live_view; docs/checkpoints.md, "Disk faults").
    NLOG_ERROR("NO USABLE CHECKPOINT: {}\nstarting at step 0 as a new node: it takes the swarm's weights by state "
               "sync at join from a peer that is ahead (a node alone trains from the run's initial weights). The "
               "damaged checkpoints stay until retention prunes them.",
               loaded.status().message());
    p.summary.start_inner = p.replica->inner_step();
    return Status::Ok();
  }
  NOLOCO_ASSIGN_OR_RETURN(std::optional<storage::LoadedCheckpoint> latest, std::move(loaded));
  if (latest) {
    for (const auto& why : latest->skipped) NLOG_WARN("passed over a damaged checkpoint: {}", why);
    NOLOCO_RETURN_IF_ERROR(restore_checkpoint(*p.replica, latest->checkpoint, p.run_config)
                               .context("resuming from checkpoint " + std::to_string(latest->id)));
    p.summary.resumed = true;
  }
  p.summary.start_inner = p.replica->inner_step();
  return Status::Ok();
}

// Payload settings and what we expect of every payload a peer sends us.
Status payload_settings(NodeParts& p) {
  const RunManifest& m = p.manifest;
  NOLOCO_ASSIGN_OR_RETURN(codec::Mode mode, codec_mode(m.codec));
  NOLOCO_ASSIGN_OR_RETURN(p.form, wire_form_from_name(m.wire_form));
  p.numel = static_cast<uint64_t>(p.replica->phi().numel());
  p.payload.codec.mode = mode;
  p.payload.codec.zstd = m.zstd;
  p.payload.form = p.form;
  p.payload.run_id = p.run_id;
  p.payload.sender = p.summary.peer_id;
  p.params = trainer::NolocoParams{m.alpha, m.beta, m.gamma};
  p.expect.run_id = p.run_id;
  p.expect.numel = p.numel;
  p.expect.form = p.form;
  // An fp32 message plus headroom for the codec header and zstd's worst-case expansion.
  p.expect.max_tensor_bytes = p.numel * 4 + p.numel / 64 + 4096;
  return Status::Ok();
}

Status open_network(const NodeOptions& o, NodeParts& p, const p2p::PeerId& self_id) {
  NetworkOptions no;
  no.identity = o.identity;
  no.host = o.host;
  NOLOCO_ASSIGN_OR_RETURN(no.listen, p2p::Multiaddr::parse(o.listen));
  if (!o.announce.empty()) {
    NOLOCO_ASSIGN_OR_RETURN(p2p::Multiaddr a, p2p::Multiaddr::parse(o.announce));
    no.announce = a;
  }
  NOLOCO_ASSIGN_OR_RETURN(no.bootstrap, bootstrap_addrs(o, *p.store, self_id));
  if (auto bans = p.store->list_active_bans(); bans.ok())
    for (const auto& b : *bans)
      if (auto id = p2p::PeerId::parse(b.peer_id); id.ok()) no.banned.push_back(*id);
  no.run_id = p.run_id;
  no.manifest_json = p.manifest_json;
  no.allreduce_encoding = p.payload.codec.mode;  // the manifest's codec (DiLoCo's ring; zstd is not used there)
  // DiLoCo's barrier waits for every live member as long as the all-reduce may take at all; a dead
  // one is dropped when its READY cannot be delivered.
  no.allreduce_gather_timeout = std::chrono::duration_cast<Duration>(std::chrono::duration<double>(exchange_budget_for(
      o, p.manifest.method, outer_step_wire_bytes(p.manifest.method, p.manifest.codec, p.manifest.wire_form, p.numel))));
  no.expect = p.expect;
  NOLOCO_ASSIGN_OR_RETURN(no.reachability, parse_reachability_mode(o.reachability));
  p.can_look = !no.bootstrap.empty();
  no.seed = xxh3_64(self_id.bytes()) ^ static_cast<uint64_t>(now_unix_ms());
  p.seed = no.seed ^ 0x6e6f6465636f7265ULL;  // the core's own stream
  NOLOCO_ASSIGN_OR_RETURN(p.net, NodeNetwork::start(std::move(no)));
  return Status::Ok();
}

}  // namespace

double NodeParts::eval() const { return replica->eval_loss(eval_set, std::min<int64_t>(eval_windows, 32)); }

Result<std::unique_ptr<NodeParts>> open_node(const NodeOptions& o, const NodeSinks& sinks) {
  if (o.threads > 0) torch::set_num_threads(o.threads);
  const p2p::PeerId self_id = o.identity->peer_id();
  auto p = std::make_unique<NodeParts>();
  storage::StoreOptions so;
  so.path = o.db;
  so.retention.keep_last = o.keep_last;
  NOLOCO_ASSIGN_OR_RETURN(p->store, storage::Store::open(so));
  NOLOCO_ASSIGN_OR_RETURN(ResolvedRun run, resolve_run(o, *p->store));
  p->manifest = std::move(run.manifest);
  p->run_id = std::move(run.run_id);
  p->manifest_json = std::move(run.json);
  if (p->manifest.private_network && !o.host.psk)
    return invalid_argument("run " + p->run_id + " is a private network: give --psk FILE");
  NOLOCO_RETURN_IF_ERROR(p->store->set_identity_ref(self_id.to_string()));
  p->summary.run_id = p->run_id;
  p->summary.peer_id = self_id.to_string();
  NOLOCO_RETURN_IF_ERROR(open_replica(o, *p, self_id));
  NOLOCO_RETURN_IF_ERROR(payload_settings(*p));
  // Our payload, kept for callers all phase, waits in an unlinked file next to the store rather
  // than in the heap (payload_spool.h; docs/memory.md, "One exchange").
  p->payload.spool_dir = o.db;
  NOLOCO_RETURN_IF_ERROR(open_network(o, *p, self_id));
  if (sinks.on_listening) sinks.on_listening(p->net->listen_addr().to_string());
  storage::CheckpointWriterOptions wo;
  // On the writer's thread. A durable checkpoint is announced, so that tools and tests wait for
  // it instead of guessing how long a write takes.
  wo.on_done = [on_event = sinks.on_event](const Result<storage::CheckpointInfo>& r) {
    if (r.ok() && on_event)
      on_event(nlohmann::json{{"event", "checkpoint"}, {"id", r->id}, {"outer_step", r->manifest.outer_step},
                              {"inner_step", r->manifest.step}}
                   .dump());
  };
  // A failed write (a full disk) is logged by the writer and announced; training goes on and the
  // store keeps its last good checkpoint (docs/checkpoints.md, "Disk faults").
  wo.on_failed = [on_event = sinks.on_event](const storage::CheckpointManifest& lost, const Status& why) {
    if (on_event)
      on_event(nlohmann::json{{"event", "checkpoint_failed"}, {"outer_step", lost.outer_step},
                              {"inner_step", lost.step}, {"why", why.to_string()}}
                   .dump());
  };
  p->writer = std::make_unique<storage::CheckpointWriter>(*p->store, wo);
  // The first checkpoint's snapshot buffer, faulted in while the node starts rather than on the
  // training thread (at gpt-125m 1.7 GB: 0.4-9 s of page faults on this VM).
  if (o.checkpoint_every > 0)
    NOLOCO_RETURN_IF_ERROR(prepare_snapshots(*p->replica, p->writer->snapshots(), true).context("snapshot buffer"));
  return p;
}

}  // namespace noloco::node
