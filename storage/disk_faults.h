// Tests and chaos runs only: a simulated disk that fills up. Given to a store through
// StoreOptions::disk_faults, it sits under every file RocksDB writes for that store (WAL, SST,
// MANIFEST, the checkpoint staging file) and makes writes fail with "no space left" once the
// budget is spent, as a full disk would (docs/storage.md, "Disk faults"). RocksDB stays
// behind storage/: this header pulls in none of it.
#pragma once

#include <atomic>
#include <cstdint>

namespace noloco::storage {

class DiskFaults {
 public:
  static constexpr int64_t kUnlimited = -1;

  // Bytes the store may still write; every write past them fails with NoSpace. kUnlimited
  // (the start) lifts the limit: space is back.
  void set_space_left(int64_t bytes) { left_.store(bytes); }
  int64_t space_left() const { return left_.load(); }
  // A filesystem that refuses O_DIRECT writes with EINVAL (as tmpfs did before Linux 6.6):
  // checkpoint data files written with O_DIRECT see that error on their next write.
  void set_refuse_direct_io(bool refuse) { refuse_direct_.store(refuse); }
  bool refuses_direct_io() const { return refuse_direct_.load(); }
  // How many writes were refused for lack of space so far.
  int64_t no_space_errors() const { return refused_.load(); }

  // The file layer's side: may `bytes` more be written? Counts them when yes.
  bool take(uint64_t bytes) {
    int64_t left = left_.load();
    for (;;) {
      if (left < 0) return true;
      if (static_cast<uint64_t>(left) < bytes) {
        left_.store(0);  // a partial write fills the disk, as ENOSPC does
        refused_.fetch_add(1);
        return false;
      }
      if (left_.compare_exchange_weak(left, left - static_cast<int64_t>(bytes))) return true;
    }
  }

 private:
  std::atomic<int64_t> left_{kUnlimited};
  std::atomic<int64_t> refused_{0};
  std::atomic<bool> refuse_direct_{false};
};

}  // namespace noloco::storage
