// Getting a store going again after a failed write (store_impl.h, Impl::Use): a full disk
// stops RocksDB, and the next write reopens the database, which also removes what the failed
// checkpoint left (recover_checkpoints). docs/storage.md, "Disk faults".
#include <algorithm>
#include <vector>

#include "common/log.h"
#include "storage/store_impl.h"

namespace noloco::storage {

namespace {
// The stores this thread holds a Use of (with repeats when nested): a nested Use neither waits
// for a reopen nor counts again, so a method that calls another cannot deadlock against one.
thread_local std::vector<const Store::Impl*> t_held;

bool held_here(const Store::Impl* impl) { return std::find(t_held.begin(), t_held.end(), impl) != t_held.end(); }
}  // namespace

Store::Impl::Use::Use(Impl& impl) : impl_(&impl) {
  if (!held_here(impl_)) {
    std::unique_lock lock(impl_->use_mu);
    impl_->use_cv.wait(lock, [&] { return !impl_->reopening; });
    ++impl_->users;
  }
  t_held.push_back(impl_);
}

Store::Impl::Use::~Use() {
  if (!impl_) return;
  t_held.erase(std::find(t_held.rbegin(), t_held.rend(), impl_).base() - 1);
  if (held_here(impl_)) return;
  std::lock_guard lock(impl_->use_mu);
  --impl_->users;
  impl_->use_cv.notify_all();
}

Result<Store::Impl::Use> Store::Impl::use() {
  Use u(*this);
  if (!db) return closed_because;
  return Result<Use>(std::move(u));
}

Result<Store::Impl::Use> Store::Impl::use_for_write(const char* what) {
  NOLOCO_RETURN_IF_ERROR(require_writable(what));
  if (write_error.load() && !held_here(this)) NOLOCO_RETURN_IF_ERROR(reopen_after_error().context(what));
  return use();
}

Status Store::Impl::reopen_after_error() {
  {
    std::unique_lock lock(use_mu);
    use_cv.wait(lock, [&] { return !reopening; });
    if (!write_error.load()) return Status::Ok();  // another thread reopened meanwhile
    // Too little space to reopen safely: stay as we are, stopped for writes, open for reads.
    if (Status space = check_space_to_open(options); !space.ok()) return space.context("reopening after a failed write");
    reopening = true;
    use_cv.wait(lock, [&] { return users == 0; });
  }
  NLOG_WARN("storage: reopening {} after a failed write", options.path);
  close_db();
  fallback_read_only = false;
  Status s = open_rocks(*this, true);
  if (s.ok()) {
    // Chunks of a checkpoint that never committed go now, not at the next start: on a full
    // disk that is the space the next checkpoint needs.
    s = recover_checkpoints(*this);
    if (!s.ok()) close_db();
  }
  if (s.ok()) {
    write_error.store(false);
    closed_because = Status::Ok();
    NLOG_INFO("storage: {} reopened; writes go on", options.path);
  } else {
    closed_because = Status(s.code(), "store at " + options.path +
                                          " could not be reopened after a failed write: " + s.message() +
                                          " (the next write tries again)");
    NLOG_WARN("storage: {}", closed_because.message());
    // Keep reads going: a read-only instance writes nothing (its info LOG goes to a temp dir).
    if (options.secondary_dir.empty()) {
      options.secondary_dir = make_secondary_dir();
      owns_secondary_dir = true;
    }
    fallback_read_only = true;
    if (Status ro = open_rocks(*this, true); !ro.ok()) {
      fallback_read_only = false;
      NLOG_WARN("storage: {} cannot even be read now: {}", options.path, ro.to_string());
    }
  }
  {
    std::lock_guard lock(use_mu);
    reopening = false;
  }
  use_cv.notify_all();
  return s.ok() ? Status::Ok() : closed_because;
}

}  // namespace noloco::storage
