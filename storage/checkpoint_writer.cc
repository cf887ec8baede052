#include "storage/checkpoint_writer.h"

#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "common/log.h"

namespace noloco::storage {

namespace {

// The calling thread's nice value (Linux: PRIO_PROCESS with a thread id is that thread).
int thread_nice() {
  errno = 0;
  const int n = ::getpriority(PRIO_PROCESS, static_cast<id_t>(::gettid()));
  return errno == 0 ? n : 0;
}

// Lowers the calling thread's priority to `nice` (threads it creates later inherit it).
void lower_priority(int nice) {
  if (::setpriority(PRIO_PROCESS, static_cast<id_t>(::gettid()), nice) != 0)
    NLOG_WARN("storage: could not lower the checkpoint writer's priority: {}", std::strerror(errno));
}

}  // namespace

CheckpointWriter::CheckpointWriter(Store& store, CheckpointWriterOptions options)
    : store_(store),
      options_(std::move(options)),
      // The creator's nice value is read here, on the creating thread.
      thread_([this, nice = std::min(19, thread_nice() + std::max(0, options_.nice))] {
        if (nice > thread_nice()) lower_priority(nice);
        run();
      }) {}

CheckpointWriter::~CheckpointWriter() {
  Status s = close();
  if (!s.ok()) NLOG_ERROR("storage: checkpoint writer closed with an error: {}", s.to_string());
}

Status CheckpointWriter::submit(Checkpoint checkpoint) {
  std::unique_lock lock(mu_);
  cv_.wait(lock, [&] { return closing_ || queue_.size() < options_.max_queued; });
  if (closing_) return {StatusCode::kUnavailable, "checkpoint writer is closed"};
  note_submit();
  queue_.push_back(std::move(checkpoint));
  cv_.notify_all();
  return Status::Ok();
}

void CheckpointWriter::note_submit() {
  const auto now = std::chrono::steady_clock::now();
  if (last_submit_) interval_s_ = std::chrono::duration<double>(now - *last_submit_).count();
  last_submit_ = now;
}

uint64_t checkpoint_pace(const Checkpoint& c, const CheckpointWriterOptions& options, double interval_s) {
  if (options.spread <= 0) return 0;
  if (!c.blobs.empty() && c.blobs.front().data.buffer() != nullptr) return 0;  // a snapshot: O_DIRECT
  uint64_t bytes = 0;
  for (const auto& b : c.blobs) bytes += b.data.size();
  const double budget_s = options.spread * interval_s;
  if (budget_s <= 0) return options.first_bytes_per_s;
  return std::max<uint64_t>(options.min_bytes_per_s, static_cast<uint64_t>(static_cast<double>(bytes) / budget_s));
}

uint64_t CheckpointWriter::pace_for(const Checkpoint& c) const { return checkpoint_pace(c, options_, interval_s_); }

Status CheckpointWriter::try_submit(Checkpoint& checkpoint) {
  std::lock_guard lock(mu_);
  if (closing_) return {StatusCode::kUnavailable, "checkpoint writer is closed"};
  if (queue_.size() >= options_.max_queued) return {StatusCode::kUnavailable, "checkpoint queue is full"};
  note_submit();
  queue_.push_back(std::move(checkpoint));
  cv_.notify_all();
  return Status::Ok();
}

Status CheckpointWriter::flush() {
  std::unique_lock lock(mu_);
  cv_.wait(lock, [&] { return queue_.empty() && !busy_; });
  Status s = std::move(first_error_);
  first_error_ = Status::Ok();
  return s;
}

Result<CheckpointInfo> CheckpointWriter::write_now(const Checkpoint& checkpoint) {
  Status pending = flush();
  if (!pending.ok()) NLOG_WARN("storage: an earlier queued checkpoint failed: {}", pending.to_string());
  auto r = store_.write_checkpoint(checkpoint);
  if (r.ok()) {
    std::lock_guard lock(mu_);
    last_committed_ = *r;
  } else {
    warn_failed(checkpoint.manifest, r.status());
  }
  return r;
}

// One clear line for the operator: what was lost, why, and what a restart would resume from.
void CheckpointWriter::warn_failed(const CheckpointManifest& lost, const Status& why) {
  std::string last = "none written by this process";
  if (auto good = last_committed())
    last = "id " + std::to_string(good->id) + " at step " + std::to_string(good->manifest.step);
  NLOG_ERROR("storage: checkpoint at step {} (outer step {}) FAILED, training goes on without it: {}; the last good "
             "checkpoint stays as it was ({}){}",
             lost.step, lost.outer_step, why.to_string(), last,
             why.message().find("disk full") != std::string::npos ? "; free space in the store's filesystem" : "");
}

Status CheckpointWriter::close() {
  {
    std::lock_guard lock(mu_);
    if (closing_ && !thread_.joinable()) return Status::Ok();
  }
  Status s = flush();
  {
    std::lock_guard lock(mu_);
    closing_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  return s;
}

std::optional<CheckpointInfo> CheckpointWriter::last_committed() const {
  std::lock_guard lock(mu_);
  return last_committed_;
}

void CheckpointWriter::run() {
  std::unique_lock lock(mu_);
  for (;;) {
    cv_.wait(lock, [&] { return closing_ || !queue_.empty(); });
    if (queue_.empty()) return;  // closing and drained
    Checkpoint c = std::move(queue_.front());
    queue_.pop_front();
    const CheckpointWriteOptions write_options{pace_for(c)};
    busy_ = true;
    cv_.notify_all();  // room for a waiting submit
    lock.unlock();
    CheckpointManifest submitted = c.manifest;
    submitted.blobs.clear();
    auto r = store_.write_checkpoint(std::move(c), write_options);  // the store frees the bytes when done
    if (!r.ok()) warn_failed(submitted, r.status());
    if (options_.on_done) options_.on_done(r);
    if (!r.ok() && options_.on_failed) options_.on_failed(submitted, r.status());
    lock.lock();
    if (r.ok()) last_committed_ = *r;
    else if (first_error_.ok()) first_error_ = r.status();
    busy_ = false;
    cv_.notify_all();
  }
}

}  // namespace noloco::storage
