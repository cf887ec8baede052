// A checkpoint's tensor bytes as one plain file next to RocksDB (docs/storage.md, "Checkpoint
// data files"): written in pieces, each hashed while it is still in the CPU cache and then
// handed to write(2); written back to disk as it goes and dropped from the page cache behind
// it; fsynced with its directory. The commit that makes it part of the store is
// store_checkpoints.cc's job; removing files nothing refers to is checkpoint_space.cc's.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <new>
#include <thread>

#include <xxhash.h>

#include "common/hash.h"
#include "storage/store_impl.h"

namespace noloco::storage {

namespace fs = std::filesystem;

namespace {

using Clock = std::chrono::steady_clock;

// Written back this far behind the write position, then dropped from the page cache: the file
// never holds more than ~2 windows of dirty or cached pages, and the disk is busy from the
// first window on instead of only at the final fsync.
constexpr uint64_t kWritebackWindow = 32 << 20;

Status errno_error(const std::string& what, int err) {
  std::string m = what + ": " + std::strerror(err);
  if (err == ENOSPC || err == EDQUOT) m += " (disk full)";
  return io_error(std::move(m));
}

// xxh3_64 fed piece by piece (XXH3's streaming API): digest() equals common/hash.h's
// xxh3_64(data, seed) of the concatenation, which load verifies with.
class Xxh3Stream {
 public:
  explicit Xxh3Stream(uint64_t seed) : state_(XXH3_createState()) {
    if (!state_) throw std::bad_alloc();
    XXH3_64bits_reset_withSeed(state_, seed);
  }
  ~Xxh3Stream() { XXH3_freeState(state_); }
  Xxh3Stream(const Xxh3Stream&) = delete;
  Xxh3Stream& operator=(const Xxh3Stream&) = delete;
  void update(ByteView data) { XXH3_64bits_update(state_, data.data(), data.size()); }
  uint64_t digest() const { return XXH3_64bits_digest(state_); }

 private:
  XXH3_state_t* state_;
};

// Closes the descriptor on every path.
struct Fd {
  int fd = -1;
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
};

Status fsync_dir(const std::string& dir) {
  Fd d{::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC)};
  if (d.fd < 0) return errno_error("opening " + dir, errno);
  if (::fsync(d.fd) != 0) return errno_error("syncing directory " + dir, errno);
  return Status::Ok();
}

// The data directory exists and its entry in the store directory is durable.
Status ensure_data_dir(const std::string& store_path) {
  const std::string dir = data_dir(store_path);
  std::error_code ec;
  if (fs::is_directory(dir, ec)) return Status::Ok();
  fs::create_directories(dir, ec);
  if (ec) return io_error("creating " + dir + ": " + ec.message());
  return fsync_dir(store_path);
}

Status write_all(int fd, ByteView data, const std::string& what) {
  while (!data.empty()) {
    const ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno_error(what, errno);
    }
    data = data.subspan(static_cast<size_t>(n));
  }
  return Status::Ok();
}

// Starts writeback of [from, to) and, for the window before it, waits for its writeback and
// drops its pages. Advisory: a filesystem without these calls (tmpfs) loses nothing.
void write_back_behind(int fd, uint64_t from, uint64_t to, uint64_t* dropped_to) {
  ::sync_file_range(fd, static_cast<off_t>(from), static_cast<off_t>(to - from), SYNC_FILE_RANGE_WRITE);
  if (from > *dropped_to) {
    const off_t off = static_cast<off_t>(*dropped_to), len = static_cast<off_t>(from - *dropped_to);
    ::sync_file_range(fd, off, len, SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WRITE | SYNC_FILE_RANGE_WAIT_AFTER);
    ::posix_fadvise(fd, off, len, POSIX_FADV_DONTNEED);
    *dropped_to = from;
  }
}

// Sleeps while the write is ahead of `max_bytes_per_s` (0: no limit). Returns seconds slept.
double pace(Clock::time_point start, uint64_t written, uint64_t max_bytes_per_s) {
  if (max_bytes_per_s == 0) return 0;
  const auto due = start + std::chrono::duration_cast<Clock::duration>(
                               std::chrono::duration<double>(static_cast<double>(written) / max_bytes_per_s));
  const auto now = Clock::now();
  if (now >= due) return 0;
  std::this_thread::sleep_until(due);
  return std::chrono::duration<double>(due - now).count();
}

}  // namespace

std::string data_dir(const std::string& store_path) { return (fs::path(store_path) / "checkpoint_data").string(); }

std::string data_file_path(const std::string& store_path, uint64_t id) {
  return (fs::path(data_dir(store_path)) / ("ckpt-" + std::to_string(id) + ".data")).string();
}

std::optional<uint64_t> parse_data_file_name(std::string_view name) {
  constexpr std::string_view kPrefix = "ckpt-", kSuffix = ".data";
  if (name.size() <= kPrefix.size() + kSuffix.size() || !name.starts_with(kPrefix) || !name.ends_with(kSuffix))
    return std::nullopt;
  const std::string_view digits = name.substr(kPrefix.size(), name.size() - kPrefix.size() - kSuffix.size());
  if (digits.size() > 19 || (digits.size() > 1 && digits[0] == '0')) return std::nullopt;
  uint64_t id = 0;
  for (char c : digits) {
    if (c < '0' || c > '9') return std::nullopt;
    id = id * 10 + static_cast<uint64_t>(c - '0');
  }
  return id;
}

Result<DataFileStats> write_data_file(Store::Impl& impl, uint64_t id, uint64_t step,
                                      const std::vector<NamedBlob>& blobs, uint64_t max_bytes_per_s) {
  const std::string& store = impl.options.path;
  const std::string path = data_file_path(store, id);
  const std::string what = "writing checkpoint " + std::to_string(id) + " data file " + path;
  NOLOCO_RETURN_IF_ERROR(ensure_data_dir(store).context(what));
  impl.phase(CheckpointPhase::kWritingFile, id, step);
  const auto t0 = Clock::now();
  DataFileStats stats;
  Status written = [&]() -> Status {
    Fd f{::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644)};
    if (f.fd < 0) return errno_error(what, errno);
    const uint64_t piece_bytes = std::max<uint64_t>(1, impl.options.write_piece_bytes);
    uint64_t offset = 0, synced_to = 0, dropped_to = 0;
    for (const NamedBlob& blob : blobs) {
      Xxh3Stream hash(kBlobSeed);
      for (uint64_t at = 0; at < blob.data.size(); at += piece_bytes) {
        ByteView piece = ByteView(blob.data).subspan(at, std::min<uint64_t>(piece_bytes, blob.data.size() - at));
        hash.update(piece);  // before the write: the piece is still in cache for write(2)'s copy
        if (impl.options.disk_faults && !impl.options.disk_faults->take(piece.size()))
          return io_error(what + ": simulated disk full (DiskFaults) (disk full)");
        NOLOCO_RETURN_IF_ERROR(write_all(f.fd, piece, what));
        offset += piece.size();
        impl.phase(CheckpointPhase::kPieceWritten, id, step);
        if (offset - synced_to >= kWritebackWindow) {
          write_back_behind(f.fd, synced_to, offset, &dropped_to);
          synced_to = offset;
        }
        stats.paced_s += pace(t0, offset, max_bytes_per_s);
      }
      stats.checksums.push_back(hash.digest());
    }
    stats.bytes = offset;
    const auto t1 = Clock::now();
    stats.write_s = std::chrono::duration<double>(t1 - t0).count();
    if (::fsync(f.fd) != 0) return errno_error(what + " (fsync)", errno);
    ::posix_fadvise(f.fd, 0, 0, POSIX_FADV_DONTNEED);  // a checkpoint is read back only at a restart
    if (::close(f.fd) != 0) {
      f.fd = -1;
      return errno_error(what + " (close)", errno);
    }
    f.fd = -1;
    NOLOCO_RETURN_IF_ERROR(fsync_dir(data_dir(store)).context(what));
    stats.sync_s = std::chrono::duration<double>(Clock::now() - t1).count();
    return Status::Ok();
  }();
  if (!written.ok()) {
    ::unlink(path.c_str());  // nothing refers to it; the next open would remove it anyway
    return written;
  }
  return stats;
}

Status read_data_file(const std::string& store_path, uint64_t id, const CheckpointManifest& m,
                      const std::string& where, std::vector<NamedBlob>& out) {
  const std::string path = data_file_path(store_path, id);
  uint64_t expect = 0;
  for (const BlobInfo& b : m.blobs) expect += b.size;
  Fd f{::open(path.c_str(), O_RDONLY | O_CLOEXEC)};
  if (f.fd < 0) {
    if (errno == ENOENT) return corrupt(where + ": data file " + path + " is missing");
    return errno_error(where + ": opening " + path, errno);
  }
  struct stat st {};
  if (::fstat(f.fd, &st) != 0) return errno_error(where + ": " + path, errno);
  if (static_cast<uint64_t>(st.st_size) != expect)
    return corrupt(where + ": data file " + path + " is " + std::to_string(st.st_size) + " bytes, expected " +
                   std::to_string(expect) + (static_cast<uint64_t>(st.st_size) < expect ? " (truncated)" : ""));
  ::posix_fadvise(f.fd, 0, 0, POSIX_FADV_SEQUENTIAL);
  uint64_t offset = 0;
  for (const BlobInfo& info : m.blobs) {
    NamedBlob blob{info.name, {}};
    try {
      blob.data.resize(info.size);
    } catch (const std::bad_alloc&) {
      return too_large(where + ": blob '" + info.name + "' of " + std::to_string(info.size) +
                       " bytes does not fit in memory");
    }
    for (uint64_t got = 0; got < info.size;) {
      const ssize_t n = ::pread(f.fd, blob.data.data() + got, info.size - got, static_cast<off_t>(offset + got));
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return errno_error(where + ": reading blob '" + info.name + "' from " + path, errno);
      if (n == 0) return corrupt(where + ": data file " + path + " ended inside blob '" + info.name + "'");
      got += static_cast<uint64_t>(n);
    }
    offset += info.size;
    const uint64_t h = xxh3_64(blob.data, kBlobSeed);
    if (h != info.checksum)
      return corrupt(where + ": blob '" + info.name + "' checksum mismatch (stored " + std::to_string(info.checksum) +
                     ", computed " + std::to_string(h) + ")");
    out.push_back(std::move(blob));
  }
  return Status::Ok();
}

}  // namespace noloco::storage
