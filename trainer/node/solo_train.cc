// `noloco train`'s loop: one replica, checkpoints into a Store, exact resume (solo_train.h).
#include "trainer/node/solo_train.h"

#include <torch/torch.h>

#include <chrono>
#include <memory>
#include <sstream>

#include "common/encoding.h"
#include "common/hash.h"
#include "common/log.h"
#include "storage/checkpoint_writer.h"
#include "storage/store.h"
#include "trainer/core/data.h"
#include "trainer/core/thread_policy.h"
#include "trainer/core/outer.h"
#include "trainer/core/replica.h"
#include "trainer/core/replica_state.h"
#include "trainer/node/checkpointing.h"

namespace noloco::node {
namespace {

int64_t now_unix_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string blob_sha256(const storage::Checkpoint& cp, const char* name) {
  const storage::NamedBlob* b = cp.find(name);
  return b ? hex_encode(sha256(b->data)) : std::string();
}

}  // namespace

Status SoloTrainOptions::validate() const {
  if (db.empty()) return invalid_argument("--db is required");
  if (steps <= 0) return invalid_argument("--steps must be positive");
  if (checkpoint_every < 0) return invalid_argument("--checkpoint-every must be >= 0");
  if (H < 0) return invalid_argument("--H must be >= 0");
  if (batch <= 0) return invalid_argument("--batch must be positive");
  if (warmup < 0) return invalid_argument("--warmup must be >= 0");
  if (!(lr > 0)) return invalid_argument("--lr must be positive");
  if (keep_last == 0) return invalid_argument("--keep-last must be at least 1");
  if (threads < 0) return invalid_argument("--threads must be >= 0");
  return Status::Ok();
}

std::string SoloTrainOptions::node_config_lines() const {
  std::ostringstream s;
  s.precision(17);
  s << "node.mode=solo\n"
    << "node.steps=" << steps << "\n"
    << "node.H=" << H << "\n"
    << "node.alpha=" << alpha << "\n"
    << "node.beta=" << beta << "\n"
    << "node.preset=" << preset << "\n"
    << "node.data=" << data << "\n";
  return s.str();
}

Result<SoloTrainResult> run_solo_training(const SoloTrainOptions& o, const SoloTrainSinks& sinks,
                                          const std::atomic<bool>* stop) {
  NOLOCO_RETURN_IF_ERROR(o.validate());
  try {
    if (o.threads > 0) torch::set_num_threads(o.threads);
    NOLOCO_ASSIGN_OR_RETURN(trainer::ModelConfig model, trainer::model_preset(o.preset));
    if (o.threads == 0) trainer::apply_default_threads(model);
    NOLOCO_ASSIGN_OR_RETURN(Bytes corpus, trainer::load_corpus(o.data));
    const trainer::CorpusSplit split = trainer::split_corpus(corpus);
    trainer::ReplicaConfig rc;
    rc.model = model;
    rc.inner.schedule.peak = o.lr;
    rc.inner.schedule.warmup = o.warmup;
    rc.inner.schedule.total = o.steps;
    rc.batch = o.batch;
    rc.seed = o.seed;
    rc.device = o.device;
    NOLOCO_ASSIGN_OR_RETURN(auto replica, trainer::Replica::create(rc, &split.train, 0, 1));
    const std::string run_config = trainer::describe_config(*replica) + o.node_config_lines();
    const std::string run_id = "solo-" + hex_encode(sha256(to_bytes(run_config))).substr(0, 16);

    storage::StoreOptions so;
    so.path = o.db;
    so.retention.keep_last = o.keep_last;
    NOLOCO_ASSIGN_OR_RETURN(auto store, storage::Store::open(so));

    SoloTrainResult result;
    result.run_id = run_id;
    NOLOCO_ASSIGN_OR_RETURN(std::optional<Bytes> stored_run, store->run_manifest());
    if (stored_run) {
      if (std::string d = config_difference(to_string(*stored_run), run_config); !d.empty())
        return invalid_argument("the store in " + o.db + " holds a run with a different config: " + d +
                                " (use the same flags, or another --db)");
    } else {
      NOLOCO_RETURN_IF_ERROR(store->set_run(run_id, to_bytes(run_config)));
    }
    auto loaded = store->load_latest_valid();
    // Every checkpoint damaged: refuse rather than train from step 0 on top of the store, which
    // would look like a resume to whoever restarted it (docs/checkpoints.md, "Disk faults").
    if (!loaded.ok() && loaded.status().code() == StatusCode::kCorrupt)
      return corrupt(loaded.status().message() +
                     "\nrefusing to start over from step 0 on top of it; to train from scratch, move " + o.db +
                     " away (keep it to inspect) or give another --db");
    NOLOCO_ASSIGN_OR_RETURN(std::optional<storage::LoadedCheckpoint> latest, std::move(loaded));
    if (latest) {
      for (const auto& why : latest->skipped) NLOG_WARN("passed over a damaged checkpoint: {}", why);
      NOLOCO_RETURN_IF_ERROR(restore_checkpoint(*replica, latest->checkpoint, run_config)
                                 .context("resuming from checkpoint " + std::to_string(latest->id)));
      // Solo outer steps happen exactly at multiples of H, so the counters must agree.
      const int64_t want_outer = o.H > 0 ? replica->inner_step() / o.H : 0;
      if (replica->outer_step() != want_outer)
        return corrupt("checkpoint " + std::to_string(latest->id) + ": outer step " +
                       std::to_string(replica->outer_step()) + " does not match inner step " +
                       std::to_string(replica->inner_step()) + " with H=" + std::to_string(o.H));
      result.resumed = true;
    }
    result.start_step = replica->inner_step();

    // A failed background checkpoint (a full disk) is logged by the writer; training goes on.
    storage::CheckpointWriter writer(*store);
    if (o.checkpoint_every > 0)  // the first checkpoint's buffer faulted in now, not mid-training
      NOLOCO_RETURN_IF_ERROR(prepare_snapshots(*replica, writer.snapshots(), true).context("snapshot buffer"));
    trainer::OuterView view{replica->theta(), replica->phi(), replica->delta()};
    trainer::OuterView* group[] = {&view};
    const trainer::NolocoParams outer{o.alpha, o.beta, o.beta};  // γ unused with a group of one

    const auto t0 = std::chrono::steady_clock::now();
    int64_t tokens = 0;
    double loss = 0.0;
    while (replica->inner_step() < o.steps) {
      if (stop && stop->load()) {
        result.interrupted = true;
        break;
      }
      loss = replica->train_step();
      tokens += o.batch * model.context;
      const int64_t step = replica->inner_step();
      if (o.H > 0 && step % o.H == 0) {
        torch::NoGradGuard ng;
        trainer::noloco_group_step(group, outer);
        replica->count_outer_step();
        const double secs =
            std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        storage::MetricsRecord mr;
        mr.outer_step = static_cast<uint64_t>(replica->outer_step());
        mr.unix_ms = now_unix_ms();
        mr.loss = loss;
        mr.tokens_per_s = secs > 0 ? static_cast<double>(tokens) / secs : 0.0;
        mr.fields["inner_step"] = static_cast<double>(step);
        mr.fields["lr"] = replica->last_lr();
        // Metrics are history, not state: a full disk must not stop training over them.
        if (Status st = store->put_metrics(mr); !st.ok()) NLOG_WARN("metrics not stored: {}", st.to_string());
      }
      if (o.log_every > 0 && step % o.log_every == 0 && sinks.line) {
        std::ostringstream s;
        s << "step " << step << " loss " << loss << " lr " << replica->last_lr();
        sinks.line(s.str());
      }
      if (o.checkpoint_every > 0 && step % o.checkpoint_every == 0 && step < o.steps) {
        NOLOCO_ASSIGN_OR_RETURN(storage::Checkpoint cp, make_checkpoint(*replica, run_id, run_config, {}, &writer.snapshots()));
        NOLOCO_RETURN_IF_ERROR(writer.submit(std::move(cp)));
      }
    }
    // Final checkpoint, synchronously, also after an interrupt (or a no-op restart: rewriting the
    // same state is harmless and keeps "latest" pointing at it).
    NOLOCO_ASSIGN_OR_RETURN(storage::Checkpoint last, make_checkpoint(*replica, run_id, run_config, {}, &writer.snapshots()));
    result.end_step = replica->inner_step();
    result.theta_sha256 = blob_sha256(last, "theta");
    result.phi_sha256 = blob_sha256(last, "phi");
    if (result.end_step != result.start_step || !latest) {
      NOLOCO_RETURN_IF_ERROR(writer.write_now(last).status());
    }
    NOLOCO_RETURN_IF_ERROR(writer.close());
    NOLOCO_RETURN_IF_ERROR(store->flush());
    return result;
  } catch (const c10::Error& e) {
    return internal_error(std::string("training: ") + e.what_without_backtrace());
  } catch (const std::exception& e) {
    return internal_error(std::string("training: ") + e.what());
  }
}

}  // namespace noloco::node
