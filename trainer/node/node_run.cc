// `noloco run`'s node: manifest, store, replica, network, and the training loop (node_run.h).
#include "trainer/node/node_run.h"

#include <torch/torch.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <memory>
#include <optional>
#include <thread>

#include "common/encoding.h"
#include "common/hash.h"
#include "common/log.h"
#include "p2p/multiaddr.h"
#include "storage/checkpoint_writer.h"
#include "storage/store.h"
#include "trainer/core/data.h"
#include "trainer/core/gpt.h"
#include "trainer/core/replica.h"
#include "trainer/core/replica_state.h"
#include "trainer/node/checkpointing.h"
#include "trainer/node/node_network.h"
#include "trainer/node/node_payload.h"
#include "trainer/node/run_manifest.h"

namespace noloco::node {
namespace {

using json = nlohmann::json;
using Clk = std::chrono::steady_clock;
constexpr int64_t kBanSeconds = 24 * 3600;  // a peer that sent 5 unusable payloads, kept out a day

int64_t now_unix_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

Duration seconds(double s) { return std::chrono::duration_cast<Duration>(std::chrono::duration<double>(s)); }

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

}  // namespace

Status NodeOptions::validate() const {
  if (db.empty()) return invalid_argument("--db is required");
  if (!identity) return invalid_argument("no identity (--key)");
  if (!(slowdown >= 1.0)) return invalid_argument("--slowdown must be >= 1");
  if (checkpoint_every < 0) return invalid_argument("--checkpoint-every must be >= 0");
  if (keep_last == 0) return invalid_argument("--keep-last must be at least 1");
  if (!(exchange_budget_s > 0)) return invalid_argument("--exchange-timeout must be positive");
  if (exchange_tries < 1) return invalid_argument("--exchange-tries must be at least 1");
  if (min_peers < 0) return invalid_argument("--min-peers must be >= 0");
  if (join_wait_s < 0 || linger_s < 0) return invalid_argument("--join-wait and --linger must be >= 0");
  if (resync_behind < 1 || max_staleness < 0) return invalid_argument("bad --resync-behind or --max-staleness");
  if (eval_windows < 1 || eval_every < 1) return invalid_argument("--eval-windows and --eval-every must be >= 1");
  if (threads < 0) return invalid_argument("--threads must be >= 0");
  return Status::Ok();
}

Result<NodeSummary> run_node(const NodeOptions& o, const NodeSinks& sinks, const std::atomic<bool>* stop) {
  NOLOCO_RETURN_IF_ERROR(o.validate());
  auto emit = [&](json j) {
    if (sinks.on_event) sinks.on_event(j.dump());
  };
  auto stopped = [&] { return stop && stop->load(); };
  try {
    if (o.threads > 0) torch::set_num_threads(o.threads);
    const p2p::PeerId self_id = o.identity->peer_id();

    storage::StoreOptions so;
    so.path = o.db;
    so.retention.keep_last = o.keep_last;
    NOLOCO_ASSIGN_OR_RETURN(auto store, storage::Store::open(so));
    NOLOCO_ASSIGN_OR_RETURN(ResolvedRun run, resolve_run(o, *store));
    const RunManifest& m = run.manifest;
    if (m.private_network && !o.host.psk)
      return invalid_argument("run " + run.run_id + " is a private network: give --psk FILE");
    NOLOCO_RETURN_IF_ERROR(store->set_identity_ref(self_id.to_string()));

    // Data and replica.
    const std::string data_path = o.data.empty() ? m.data : o.data;
    NOLOCO_ASSIGN_OR_RETURN(Bytes corpus, trainer::load_corpus(data_path));
    if (!m.data_sha256.empty()) {
      const std::string got = hex_encode(sha256(corpus));
      if (got != m.data_sha256)
        return invalid_argument("the corpus at " + data_path + " has sha256 " + got + ", the run expects " +
                                m.data_sha256 + " (wrong --data?)");
    }
    const trainer::CorpusSplit split = trainer::split_corpus(corpus);
    NOLOCO_ASSIGN_OR_RETURN(trainer::ModelConfig model, trainer::model_preset(m.preset));
    trainer::ReplicaConfig rc;
    rc.model = model;
    rc.inner.schedule.peak = m.lr;
    rc.inner.schedule.warmup = m.warmup;
    rc.inner.schedule.total = m.steps;
    rc.batch = m.batch;
    rc.seed = m.seed;
    rc.device = o.device;
    rc.data_seed = legacy_hash64(self_id.bytes()) | 1;  // our place in the data; in old checkpoints' configs
    NOLOCO_ASSIGN_OR_RETURN(auto replica, trainer::Replica::create(rc, &split.train, 0, 1));
    const std::string run_config = trainer::describe_config(*replica) + "node.manifest=" + run.json + "\n";
    NOLOCO_ASSIGN_OR_RETURN(Bytes ev_bytes, trainer::eval_windows(split.val, o.eval_windows, model.context + 1));
    const torch::Tensor eval_set =
        trainer::bytes_to_tokens(ev_bytes.data(), o.eval_windows, model.context + 1, replica->phi().device());
    auto eval = [&] { return replica->eval_loss(eval_set, std::min<int64_t>(o.eval_windows, 32)); };

    NodeSummary summary;
    summary.run_id = run.run_id;
    summary.peer_id = self_id.to_string();
    NOLOCO_ASSIGN_OR_RETURN(std::optional<storage::LoadedCheckpoint> latest, store->load_latest_valid());
    if (latest) {
      for (const auto& why : latest->skipped) NLOG_WARN("passed over a damaged checkpoint: {}", why);
      NOLOCO_RETURN_IF_ERROR(restore_checkpoint(*replica, latest->checkpoint, run_config)
                                 .context("resuming from checkpoint " + std::to_string(latest->id)));
      summary.resumed = true;
    }
    summary.start_inner = replica->inner_step();

    // Network.
    NOLOCO_ASSIGN_OR_RETURN(codec::Mode mode, codec_mode(m.codec));
    NOLOCO_ASSIGN_OR_RETURN(WireForm form, wire_form_from_name(m.wire_form));
    const uint64_t numel = static_cast<uint64_t>(replica->phi().numel());
    NetworkOptions no;
    no.identity = o.identity;
    no.host = o.host;
    NOLOCO_ASSIGN_OR_RETURN(no.listen, p2p::Multiaddr::parse(o.listen));
    if (!o.announce.empty()) {
      NOLOCO_ASSIGN_OR_RETURN(p2p::Multiaddr a, p2p::Multiaddr::parse(o.announce));
      no.announce = a;
    }
    NOLOCO_ASSIGN_OR_RETURN(no.bootstrap, bootstrap_addrs(o, *store, self_id));
    if (auto bans = store->list_active_bans(); bans.ok())
      for (const auto& b : *bans)
        if (auto id = p2p::PeerId::parse(b.peer_id); id.ok()) no.banned.push_back(*id);
    no.run_id = run.run_id;
    no.manifest_json = run.json;
    ExchangeExpectations expect;
    expect.run_id = run.run_id;
    expect.numel = numel;
    expect.form = form;
    // An fp32 message plus headroom for the codec header and zstd's worst-case expansion.
    expect.max_tensor_bytes = numel * 4 + numel / 64 + 4096;
    no.expect = expect;
    // Somewhere to look for the swarm: --join or the peer book.
    const bool can_look = !no.bootstrap.empty();
    no.seed = xxh3_64(self_id.bytes()) ^ static_cast<uint64_t>(now_unix_ms());
    NOLOCO_ASSIGN_OR_RETURN(auto net, NodeNetwork::start(std::move(no)));
    const std::string addr = net->listen_addr().to_string();
    if (sinks.on_listening) sinks.on_listening(addr);

    storage::CheckpointWriterOptions wo;
    wo.on_done = [](const Result<storage::CheckpointInfo>& r) {
      if (!r.ok()) NLOG_ERROR("checkpoint write failed: {}", r.status().to_string());
    };
    storage::CheckpointWriter writer(*store, wo);

    summary.first_val_loss = eval();
    emit({{"event", "start"}, {"peer", summary.peer_id}, {"addr", addr}, {"run_id", run.run_id},
          {"bound", net->bound_addr().to_string()}, {"resumed", summary.resumed}, {"inner_step", replica->inner_step()}, {"outer_step", replica->outer_step()},
          {"val_loss", summary.first_val_loss}, {"params", numel}});

    const PayloadSettings ps{[&] {
                               codec::EncodeOptions e;
                               e.mode = mode;
                               e.zstd = m.zstd;
                               return e;
                             }(),
                             form, run.run_id, summary.peer_id};
    const trainer::NolocoParams params{m.alpha, m.beta, m.gamma};
    const VerifyLimits limits;

    auto publish_state = [&] {
      auto blob = build_state_blob(*replica);
      if (!blob.ok()) return;
      auto snap = std::make_shared<StateSnapshot>();
      const auto digest = sha256(*blob);
      snap->sha256.assign(digest.begin(), digest.end());
      snap->blob = std::move(*blob);
      snap->outer_step = static_cast<uint64_t>(replica->outer_step());
      snap->inner_step = static_cast<uint64_t>(replica->inner_step());
      net->publish_state(std::move(snap));
    };
    auto publish_payload = [&]() -> Result<std::shared_ptr<const Bytes>> {
      NOLOCO_ASSIGN_OR_RETURN(Payload p, build_payload(*replica, ps));
      auto bytes = std::make_shared<const Bytes>(encode_payload(p));
      net->publish_exchange_payload(bytes);
      return bytes;
    };

    // Refused payloads and peers seen: into the store (this thread may do RocksDB I/O).
    auto drain_events = [&] {
      for (auto& e : net->take_events()) {
        const std::string peer = e.peer.to_string();
        if (e.kind == NetworkEvent::Kind::kBadPayload) {
          (void)store->record_outcome(peer, false, -5.0);
          emit({{"event", "refused"}, {"peer", peer}, {"why", e.detail}});
        } else if (e.kind == NetworkEvent::Kind::kBanned) {
          (void)store->ban(peer, e.detail, kBanSeconds);
          emit({{"event", "banned"}, {"peer", peer}, {"why", e.detail}});
        } else if (e.kind == NetworkEvent::Kind::kPeerSeen) {
          (void)store->record_seen(peer, e.addrs);
        }
      }
    };

    // State sync from the most advanced live peer, when it is `min_ahead` outer steps ahead.
    auto maybe_sync = [&](int64_t min_ahead) -> Status {
      auto live = net->live_peers();
      if (live.empty()) return Status::Ok();
      auto best = *std::max_element(live.begin(), live.end(),
                                    [](auto& a, auto& b) { return a.outer_step < b.outer_step; });
      const int64_t ahead = static_cast<int64_t>(best.outer_step) - replica->outer_step();
      if (ahead < min_ahead) return Status::Ok();
      const double before = eval();
      const auto t0 = Clk::now();
      auto got = net->fetch_state(best, numel * 4 + 4096, std::chrono::seconds(30));
      if (!got.ok()) {
        NLOG_WARN("state sync failed: {}", got.status().to_string());
        emit({{"event", "state_sync_failed"}, {"peer", best.peer.to_string()}, {"why", got.status().to_string()}});
        return Status::Ok();
      }
      if (got->inner_step > static_cast<uint64_t>(m.steps) ||
          got->outer_step <= static_cast<uint64_t>(replica->outer_step())) {
        return Status::Ok();
      }
      if (Status st = adopt_state(*replica, got->blob, got->outer_step, got->inner_step); !st.ok()) {
        NLOG_WARN("state from {} refused: {}", best.peer.to_string(), st.to_string());
        net->strike(best.peer, st.to_string());
        return Status::Ok();
      }
      const double after = eval();
      emit({{"event", "state_sync"}, {"peer", got->peer.to_string()}, {"outer_step", got->outer_step},
            {"inner_step", got->inner_step}, {"bytes", got->blob.size()},
            {"seconds", std::chrono::duration<double>(Clk::now() - t0).count()}, {"val_loss_before", before},
            {"val_loss_after", after}});
      return Status::Ok();
    };

    // A fresh node that was told where the swarm is waits for it, and starts from the swarm's
    // weights if the swarm is already past its first outer step.
    const size_t want_peers = o.min_peers > 0 ? static_cast<size_t>(o.min_peers) : (can_look ? 1 : 0);
    if (want_peers > 0) {
      const auto until = Clk::now() + seconds(o.join_wait_s);
      while (Clk::now() < until && !stopped() && net->live_peers().size() < want_peers)
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
      NOLOCO_RETURN_IF_ERROR(maybe_sync(replica->inner_step() == 0 ? 1 : o.resync_behind));
    }
    publish_state();
    if (replica->outer_step() > 0 || replica->inner_step() > 0) (void)publish_payload();

    const int64_t tokens_per_step = m.batch * model.context;
    auto phase_start = Clk::now();
    int64_t phase_tokens = 0;
    double last_loss = 0, tokens_per_s = 0, last_val = summary.first_val_loss;
    int64_t outer_here = 0;
    while (replica->inner_step() < m.steps) {
      if (stopped() || (o.stop_after_outer > 0 && outer_here >= o.stop_after_outer)) {
        summary.interrupted = true;
        break;
      }
      const auto t0 = Clk::now();
      last_loss = replica->train_step();
      phase_tokens += tokens_per_step;
      if (o.slowdown > 1.0) std::this_thread::sleep_for((Clk::now() - t0) * (o.slowdown - 1.0));
      if (replica->inner_step() % m.H != 0) continue;

      // ---- outer step
      const double phase_s = std::chrono::duration<double>(Clk::now() - phase_start).count();
      tokens_per_s = phase_s > 0 ? static_cast<double>(phase_tokens) / phase_s : 0.0;
      NOLOCO_ASSIGN_OR_RETURN(auto mine, publish_payload());
      const TrafficTotals before = net->traffic();
      std::vector<PeerContribution> group;
      std::vector<std::string> partners;
      std::vector<int64_t> staleness;
      auto consider = [&](ReceivedPayload& rp, const char* how) {
        const int64_t lag = replica->outer_step() - static_cast<int64_t>(rp.payload.header.outer_step);
        if (lag > o.max_staleness) {
          emit({{"event", "stale"}, {"peer", rp.peer.to_string()}, {"lag", lag}, {"via", how}});
          return;
        }
        auto c = verify_payload(rp.payload, *replica, [&] {
          ExchangeExpectations e = expect;
          e.sender = rp.peer.to_string();
          return e;
        }(), limits);
        if (!c.ok()) {
          NLOG_WARN("refused payload from {}: {}", rp.peer.to_string(), c.status().to_string());
          net->strike(rp.peer, c.status().to_string());
          (void)store->record_outcome(rp.peer.to_string(), false, -5.0);
          emit({{"event", "refused"}, {"peer", rp.peer.to_string()}, {"why", c.status().to_string()}});
          return;
        }
        group.push_back(std::move(*c));
        partners.push_back(rp.peer.to_string());
        staleness.push_back(lag);
        (void)store->record_outcome(rp.peer.to_string(), true, 1.0);
      };
      // Peers that called us since our last outer step already paired with us (they mixed our
      // snapshot, we mix their payload). If one of them is usable, that is this step's pairing,
      // as in the paper's groups of two; otherwise we call a random partner ourselves.
      for (auto& rp : net->take_inbox()) consider(rp, "caller");
      ExchangeOutcome ex;
      std::string partner_id;
      if (group.empty() || o.always_exchange) {
        ex = net->exchange(mine, seconds(o.exchange_budget_s), o.exchange_tries,
                           static_cast<uint64_t>(replica->outer_step()), o.max_staleness);
        if (ex.partner) {
          partner_id = ex.partner->peer.to_string();
          if (std::find(partners.begin(), partners.end(), partner_id) == partners.end())
            consider(*ex.partner, "partner");
        }
        for (const auto& f : ex.failures) NLOG_INFO("exchange try failed: {}", f);
      } else {
        partner_id = partners.front();
      }
      apply_outer_step(*replica, group, params, form);
      ++outer_here;
      ++summary.outer_steps;
      if (group.empty()) ++summary.solo_steps;
      else ++summary.exchanges;
      net->set_progress(static_cast<uint64_t>(replica->outer_step()), tokens_per_s);
      publish_state();
      drain_events();
      const TrafficTotals after = net->traffic();

      json ev = {{"event", "outer"}, {"outer_step", replica->outer_step()}, {"inner_step", replica->inner_step()},
                 {"loss", last_loss}, {"tokens_per_s", tokens_per_s}, {"partner", partner_id},
                 {"group", partners}, {"staleness", staleness}, {"exchange_s", ex.seconds},
                 {"failures", ex.failures.size()}, {"bytes_out", after.exchange_out - before.exchange_out},
                 {"bytes_in", after.exchange_in - before.exchange_in}, {"payload_bytes", mine->size()},
                 {"raw_bytes", numel * 4 * (form == WireForm::kDeltaPhi ? 2 : 1)},
                 {"live_peers", net->live_peers().size()}, {"lr", replica->last_lr()}};
      if (replica->outer_step() % o.eval_every == 0 || replica->inner_step() >= m.steps) {
        last_val = eval();
        ev["val_loss"] = last_val;
      }
      emit(ev);

      storage::MetricsRecord mr;
      mr.outer_step = static_cast<uint64_t>(replica->outer_step());
      mr.unix_ms = now_unix_ms();
      mr.loss = last_loss;
      mr.tokens_per_s = tokens_per_s;
      mr.bytes_in = after.exchange_in - before.exchange_in;
      mr.bytes_out = after.exchange_out - before.exchange_out;
      mr.partner = partner_id;
      mr.exchange_ms = ex.seconds * 1000.0;
      mr.fields["inner_step"] = static_cast<double>(replica->inner_step());
      mr.fields["group"] = static_cast<double>(group.size() + 1);
      if (!staleness.empty())
        mr.fields["staleness_max"] = static_cast<double>(*std::max_element(staleness.begin(), staleness.end()));
      mr.fields["val_loss"] = last_val;
      if (Status st = store->put_metrics(mr); !st.ok()) NLOG_WARN("metrics: {}", st.to_string());

      if (o.checkpoint_every > 0 && replica->outer_step() % o.checkpoint_every == 0 && replica->inner_step() < m.steps) {
        NOLOCO_ASSIGN_OR_RETURN(storage::Checkpoint cp, make_checkpoint(*replica, run.run_id, run_config));
        NOLOCO_RETURN_IF_ERROR(writer.submit(std::move(cp)));
      }
      NOLOCO_RETURN_IF_ERROR(maybe_sync(o.resync_behind));
      phase_start = Clk::now();
      phase_tokens = 0;
    }

    // Final (or shutdown) checkpoint, synchronously, before anything else.
    NOLOCO_ASSIGN_OR_RETURN(storage::Checkpoint last, make_checkpoint(*replica, run.run_id, run_config));
    NOLOCO_RETURN_IF_ERROR(writer.write_now(last).status());
    NOLOCO_RETURN_IF_ERROR(writer.close());
    drain_events();
    summary.end_inner = replica->inner_step();
    summary.last_val_loss = eval();
    const TrafficTotals t = net->traffic();
    emit({{"event", "done"}, {"interrupted", summary.interrupted}, {"inner_step", replica->inner_step()},
          {"outer_step", replica->outer_step()}, {"val_loss", summary.last_val_loss},
          {"first_val_loss", summary.first_val_loss}, {"exchanges", summary.exchanges},
          {"solo_steps", summary.solo_steps}, {"exchange_bytes_out", t.exchange_out},
          {"exchange_bytes_in", t.exchange_in}, {"state_bytes_in", t.state_in}, {"state_bytes_out", t.state_out},
          {"served", t.exchanges_served}});
    // Keep answering late partners with our final weights for a while.
    const auto linger_until = Clk::now() + seconds(summary.interrupted ? 0.0 : o.linger_s);
    while (Clk::now() < linger_until && !stopped()) std::this_thread::sleep_for(std::chrono::milliseconds(50));
    net->stop();
    NOLOCO_RETURN_IF_ERROR(store->flush());
    return summary;
  } catch (const c10::Error& e) {
    return internal_error(std::string("node: ") + e.what_without_backtrace());
  } catch (const std::exception& e) {
    return internal_error(std::string("node: ") + e.what());
  }
}

}  // namespace noloco::node
