// A checkpoint's tensor bytes as one plain file next to RocksDB (docs/storage.md, "Checkpoint
// data files"): written in pieces, each hashed just before it is written. A snapshot (one
// aligned buffer laid out like the file, blob_data.h) goes to the disk with O_DIRECT: no copy
// into the page cache, nothing to write back or drop. Other blobs go through write(2), written
// back as they go and dropped from the page cache behind. Then fsynced with its directory. The commit that makes it part of the store is
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

#include "common/hash.h"
#include "common/log.h"
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

namespace {

// O_DIRECT wants the memory address, the file offset and the length aligned to the device's
// logical block; 4 KiB covers every disk we know, and the kernel says EINVAL when it does not.
constexpr uint64_t kDirectBlock = 4096;
// Each O_DIRECT write waits for the disk, so pieces are larger than for buffered writes.
constexpr uint64_t kDirectPiece = 8 << 20;

// The one snapshot buffer every blob is a slice of, back to back from its start in file
// order: then the file is that buffer's first `total` bytes. nullptr otherwise.
const SnapshotBuffer* contiguous_source(const std::vector<NamedBlob>& blobs) {
  const SnapshotBuffer* buffer = nullptr;
  uint64_t at = 0;
  for (const NamedBlob& b : blobs) {
    if (b.data.buffer() == nullptr || (buffer != nullptr && b.data.buffer() != buffer) || b.data.offset() != at)
      return nullptr;
    buffer = b.data.buffer();
    at += b.data.size();
  }
  return buffer;
}

// One data file being written: the descriptor, the caller's options and the running stats.
struct FileWrite {
  Store::Impl& impl;
  uint64_t id, step, max_bytes_per_s;
  const std::string& what;
  Clock::time_point t0;
  DataFileStats& stats;
  int fd = -1;
  bool fd_direct = false;  // the descriptor has O_DIRECT now
  uint64_t synced_to = 0, dropped_to = 0;

  // Takes O_DIRECT off the descriptor: the rest goes through the page cache.
  void drop_direct() {
    ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) & ~O_DIRECT);
    fd_direct = false;
  }

  // Writes `piece` at `offset`. A filesystem that refuses O_DIRECT (EINVAL; DiskFaults can
  // pretend to be one) gets the piece, and the rest, through the page cache instead.
  Status put(ByteView piece, uint64_t offset) {
    if (impl.options.disk_faults && !impl.options.disk_faults->take(piece.size()))
      return io_error(what + ": simulated disk full (DiskFaults) (disk full)");
    while (!piece.empty()) {
      const bool refused = fd_direct && impl.options.disk_faults && impl.options.disk_faults->refuses_direct_io();
      const ssize_t n = refused ? (errno = EINVAL, -1) : ::pwrite(fd, piece.data(), piece.size(), static_cast<off_t>(offset));
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && errno == EINVAL && fd_direct) {
        NLOG_INFO("storage: {}: O_DIRECT refused, writing through the page cache", what);
        drop_direct();
        stats.direct = false;
        continue;
      }
      if (n < 0) return errno_error(what, errno);
      piece = piece.subspan(static_cast<size_t>(n));
      offset += static_cast<uint64_t>(n);
    }
    impl.phase(CheckpointPhase::kPieceWritten, id, step);
    if (!fd_direct && offset - synced_to >= kWritebackWindow) {  // O_DIRECT leaves no dirty pages
      write_back_behind(fd, synced_to, offset, &dropped_to);
      synced_to = offset;
    }
    stats.paced_s += pace(t0, offset, max_bytes_per_s);
    return Status::Ok();
  }
};

// Blob by blob, each piece hashed just before write(2) copies it into the page cache.
Status write_buffered(FileWrite& w, const std::vector<NamedBlob>& blobs, uint64_t piece_bytes) {
  uint64_t offset = 0;
  for (const NamedBlob& blob : blobs) {
    BlobHasher hash;
    const bool hashed = blob.data.checksum().has_value();  // by the snapshot, while copying
    for (uint64_t at = 0; at < blob.data.size(); at += piece_bytes) {
      ByteView piece = blob.data.view().subspan(at, std::min<uint64_t>(piece_bytes, blob.data.size() - at));
      if (!hashed) hash.update(piece);  // before the write: the piece is still in cache for write(2)'s copy
      NOLOCO_RETURN_IF_ERROR(w.put(piece, offset));
      offset += piece.size();
    }
    w.stats.checksums.push_back(hashed ? *blob.data.checksum() : hash.digest());
  }
  w.stats.bytes = offset;
  return Status::Ok();
}

// Hashes the part of [from, to) of the file that each blob holds, finishing blobs on the way.
// A blob the snapshot already hashed is not read again.
void hash_range(const std::vector<NamedBlob>& blobs, const uint8_t* file, uint64_t from, uint64_t to,
                size_t* blob, uint64_t* blob_start, std::unique_ptr<BlobHasher>* hash, DataFileStats& stats) {
  while (*blob < blobs.size()) {
    const BlobData& data = blobs[*blob].data;
    const uint64_t end = *blob_start + data.size();
    const uint64_t upto = std::min(end, to);
    if (upto > from && !data.checksum()) (*hash)->update(ByteView(file + from, upto - from));
    from = std::max(from, upto);
    if (upto < end) return;  // the blob goes on past `to`
    stats.checksums.push_back(data.checksum() ? *data.checksum() : (*hash)->digest());
    *blob_start = end;
    ++*blob;
    *hash = std::make_unique<BlobHasher>();
  }
}

// The file as one aligned snapshot buffer: O_DIRECT, so the kernel neither copies it into the
// page cache nor has dirty pages to write back and drop. Where the filesystem refuses O_DIRECT
// (EINVAL) the descriptor drops the flag and the rest goes through the page cache; so does the
// tail under one block.
Status write_contiguous(FileWrite& w, const std::vector<NamedBlob>& blobs, const SnapshotBuffer& buffer,
                        uint64_t piece_bytes) {
  uint64_t total = 0;
  for (const NamedBlob& b : blobs) total += b.data.size();
  if (w.fd_direct) piece_bytes = std::max(kDirectPiece, piece_bytes / kDirectBlock * kDirectBlock);
  size_t blob = 0;
  uint64_t blob_start = 0;
  auto hash = std::make_unique<BlobHasher>();
  for (uint64_t at = 0, n = 0; at < total; at += n) {
    n = std::min(piece_bytes, total - at);
    if (w.fd_direct) {
      if (n >= kDirectBlock) n -= n % kDirectBlock;  // whole blocks; the offset stays aligned
      else w.drop_direct();                          // the tail under one block: page cache
    }
    hash_range(blobs, buffer.data(), at, at + n, &blob, &blob_start, &hash, w.stats);
    NOLOCO_RETURN_IF_ERROR(w.put(ByteView(buffer.data() + at, n), at));
  }
  hash_range(blobs, buffer.data(), total, total, &blob, &blob_start, &hash, w.stats);  // trailing empty blobs
  w.stats.bytes = total;
  return Status::Ok();
}

}  // namespace

Result<DataFileStats> write_data_file(Store::Impl& impl, uint64_t id, uint64_t step,
                                      const std::vector<NamedBlob>& blobs, uint64_t max_bytes_per_s) {
  const std::string& store = impl.options.path;
  const std::string path = data_file_path(store, id);
  const std::string what = "writing checkpoint " + std::to_string(id) + " data file " + path;
  NOLOCO_RETURN_IF_ERROR(ensure_data_dir(store).context(what));
  impl.phase(CheckpointPhase::kWritingFile, id, step);
  DataFileStats stats;
  FileWrite w{impl, id, step, max_bytes_per_s, what, Clock::now(), stats};
  Status written = [&]() -> Status {
    const SnapshotBuffer* source = impl.options.direct_io ? contiguous_source(blobs) : nullptr;
    constexpr int kFlags = O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC;
    Fd f{source ? ::open(path.c_str(), kFlags | O_DIRECT, 0644) : -1};
    stats.direct = w.fd_direct = f.fd >= 0;
    if (f.fd < 0) f.fd = ::open(path.c_str(), kFlags, 0644);  // no O_DIRECT here (EINVAL) or not asked for
    if (f.fd < 0) return errno_error(what, errno);
    w.fd = f.fd;
    const uint64_t piece_bytes = std::max<uint64_t>(1, impl.options.write_piece_bytes);
    NOLOCO_RETURN_IF_ERROR(source ? write_contiguous(w, blobs, *source, piece_bytes)
                                  : write_buffered(w, blobs, piece_bytes));
    const auto t1 = Clock::now();
    stats.write_s = std::chrono::duration<double>(t1 - w.t0).count();
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
