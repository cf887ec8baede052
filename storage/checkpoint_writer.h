// Moves checkpoint writes off the training thread: the trainer hands over already-serialised
// bytes (a move, no copy) and carries on; one writer thread hashes and commits them in order.
// The queue is bounded so a slow disk turns into back-pressure rather than unbounded memory.
#pragma once

#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <optional>
#include <thread>

#include "storage/store.h"

namespace noloco::storage {

struct CheckpointWriterOptions {
  size_t max_queued = 1;  // checkpoints waiting behind the one being written
  // The writer thread (and the hashing threads it starts) run this much nicer than the thread
  // that created the writer (capped at 19), so that on busy cores training keeps its share and
  // the write takes what is left; on idle cores it changes nothing. 0: same priority.
  // write_now() runs on the caller's thread at the caller's priority.
  int nice = 10;
  // Pacing: a queued checkpoint is written at a rate that spreads it over `spread` times the
  // time between the last two submits (the checkpoint interval), so on shared cores and a
  // shared disk it does not take both in one burst (spread < 1: done before the next one is
  // due). Never slower than `min_bytes_per_s` (a long interval does not hold the snapshot's
  // memory for ages). With no interval known yet (the first checkpoint): `first_bytes_per_s`.
  // spread 0: unpaced. write_now() is never paced.
  double spread = 0.5;
  uint64_t min_bytes_per_s = 32ull << 20;
  uint64_t first_bytes_per_s = 200ull << 20;
  // Called on the writer thread after each write, with its result. Must not block for long.
  std::function<void(const Result<CheckpointInfo>&)> on_done;
  // Also on the writer thread, after on_done, when a write failed: the manifest that was to be
  // written (its steps) and why. The writer has logged a warning naming the last good one.
  std::function<void(const CheckpointManifest& lost, const Status& why)> on_failed;
};

// The write rate (bytes/s, 0: unpaced) for checkpoint `c` given the interval between the last two
// submits (0: not known yet); see CheckpointWriterOptions::spread. A snapshot (blobs in one
// snapshot buffer, blob_data.h) is never paced: it goes to disk with O_DIRECT, which costs
// training no CPU, and pacing would only keep its buffer from returning to the SnapshotPool
// before the next snapshot, which then faults in a fresh 1.7 GB one (gpt-125m) on the training
// thread.
uint64_t checkpoint_pace(const Checkpoint& c, const CheckpointWriterOptions& options, double interval_s);

class CheckpointWriter {
 public:
  // `store` must outlive the writer.
  CheckpointWriter(Store& store, CheckpointWriterOptions options = {});
  ~CheckpointWriter();  // close(): drains the queue, then joins
  CheckpointWriter(const CheckpointWriter&) = delete;
  CheckpointWriter& operator=(const CheckpointWriter&) = delete;

  // Queues a checkpoint, waiting while the queue is full. kUnavailable after close().
  Status submit(Checkpoint checkpoint);
  // Queues only if there is room now; otherwise returns kUnavailable and leaves `checkpoint`
  // untouched so the caller may keep it or drop it.
  Status try_submit(Checkpoint& checkpoint);
  // Waits until everything submitted so far is written; returns the first failure since the
  // previous flush(), if any.
  Status flush();
  // For shutdown: flush, then write this checkpoint synchronously on the calling thread.
  Result<CheckpointInfo> write_now(const Checkpoint& checkpoint);
  // Drains and stops the thread; later submits fail. Returns flush()'s result.
  Status close();

  std::optional<CheckpointInfo> last_committed() const;

  // Where the trainer takes its snapshot buffers (blob_data.h): the one this writer's last
  // checkpoint used comes back once it is written, so the next snapshot is only a copy.
  SnapshotPool& snapshots() { return snapshots_; }

 private:
  void run();
  void note_submit();  // with mu_ held
  uint64_t pace_for(const Checkpoint& c) const;  // with mu_ held
  void warn_failed(const CheckpointManifest& lost, const Status& why);

  Store& store_;
  CheckpointWriterOptions options_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Checkpoint> queue_;
  bool busy_ = false;  // the writer thread holds a checkpoint it is writing
  bool closing_ = false;
  Status first_error_;
  std::optional<CheckpointInfo> last_committed_;
  std::optional<std::chrono::steady_clock::time_point> last_submit_;
  double interval_s_ = 0;  // between the last two submits; 0 until there were two
  SnapshotPool snapshots_;
  std::thread thread_;  // last: started after every other member exists
};

}  // namespace noloco::storage
