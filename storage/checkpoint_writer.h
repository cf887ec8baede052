// Moves checkpoint writes off the training thread: the trainer hands over already-serialised
// bytes (a move, no copy) and carries on; one writer thread hashes and commits them in order.
// The queue is bounded so a slow disk turns into back-pressure rather than unbounded memory.
#pragma once

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
  // Called on the writer thread after each write, with its result. Must not block for long.
  std::function<void(const Result<CheckpointInfo>&)> on_done;
  // Also on the writer thread, after on_done, when a write failed: the manifest that was to be
  // written (its steps) and why. The writer has logged a warning naming the last good one.
  std::function<void(const CheckpointManifest& lost, const Status& why)> on_failed;
};

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

 private:
  void run();
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
  std::thread thread_;  // last: started after every other member exists
};

}  // namespace noloco::storage
