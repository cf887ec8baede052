// Checkpoint write/load cost of the store against the floor: the same bytes written to one
// file and fsynced. Prints figures; not a test.
//
//   checkpoint_bench [--dir DIR] [--params N] [--tensors T] [--preset NAME] [--repeats R]
//                    [--piece-bytes B] [--skip-big] [--snapshot]
//
// tiny: 4 tensors of 0.1M fp32 params; big: T tensors of N fp32 params (default 5 x 100M =
// 2 GB, the phi/theta/delta/2 Adam moments of a 100M-parameter model); --preset NAME: 5
// tensors of that model preset's parameter count (trainer/core/model.h). --piece-bytes: the
// store's data-file write piece (default: StoreOptions' default). --snapshot: the store gets the
// blobs as one snapshot buffer (storage/blob_data.h, what the node hands over; written with
// O_DIRECT), copied before the clock starts and without checksums, so the store still hashes.
//
// Each round writes the same bytes once as a plain file (+ fsync of file and directory) and
// once as a store checkpoint, in alternating order, and prints both and their ratio; then
// reads the file back and loads the checkpoint (both usually from the page cache). The first
// round is not counted. "written" is this process's write_bytes from /proc/self/io over the
// store write: bytes it sent to the disk, so a second copy of the data (WAL + flush,
// compaction) shows as a ratio above 1. "extra mem" is the peak resident size above the size
// before the call (VmHWM after resetting it), beyond the checkpoint handed in or loaded.
#include <fcntl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "common/hash.h"
#include "storage/store.h"
#ifdef NOLOCO_BENCH_PRESETS
#include "trainer/core/model.h"
#endif

using namespace noloco;
using namespace noloco::storage;
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

namespace {

double secs(Clock::time_point a, Clock::time_point b) { return std::chrono::duration<double>(b - a).count(); }

// CPU seconds (user + system) of every thread of this process so far.
double cpu_seconds() {
  rusage u{};
  ::getrusage(RUSAGE_SELF, &u);
  auto tv = [](const timeval& t) { return t.tv_sec + t.tv_usec / 1e6; };
  return tv(u.ru_utime) + tv(u.ru_stime);
}

// Bytes this process has caused to be written to storage (counted when pages are dirtied).
uint64_t written_bytes() {
  FILE* f = std::fopen("/proc/self/io", "r");
  if (!f) return 0;
  char line[128];
  uint64_t v = 0;
  while (std::fgets(line, sizeof line, f))
    if (std::sscanf(line, "write_bytes: %lu", &v) == 1) break;
  std::fclose(f);
  return v;
}

Checkpoint make(uint64_t step, size_t tensors, size_t params) {
  Checkpoint c;
  c.manifest.run_id = "bench";
  c.manifest.step = step;
  const char* names[] = {"phi", "theta", "delta", "adam_m", "adam_v", "t5", "t6", "t7"};
  for (size_t t = 0; t < tensors; ++t) {
    NamedBlob b{names[t % 8] + std::to_string(t / 8), Bytes(params * 4)};
    // Non-constant bytes so nothing downstream can shortcut them.
    uint32_t x = static_cast<uint32_t>(step * 2654435761u + t);
    for (size_t i = 0; i < b.data.size(); i += 4) {
      x = x * 1664525u + 1013904223u;
      std::memcpy(b.data.data() + i, &x, 4);
    }
    c.blobs.push_back(std::move(b));
  }
  return c;
}

// The floor: one file, every blob appended, fsync, then fsync the directory.
double file_write(const fs::path& p, const Checkpoint& c) {
  auto t0 = Clock::now();
  int fd = ::open(p.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd < 0) std::perror("open"), std::exit(1);
  for (const auto& b : c.blobs) {
    size_t off = 0;
    while (off < b.data.size()) {
      ssize_t n = ::write(fd, b.data.data() + off, std::min<size_t>(b.data.size() - off, 64 << 20));
      if (n <= 0) std::perror("write"), std::exit(1);
      off += static_cast<size_t>(n);
    }
  }
  ::fsync(fd);
  ::close(fd);
  int dfd = ::open(p.parent_path().c_str(), O_RDONLY | O_DIRECTORY);
  ::fsync(dfd);
  ::close(dfd);
  return secs(t0, Clock::now());
}

double file_read(const fs::path& p, const Checkpoint& shape) {
  auto t0 = Clock::now();
  int fd = ::open(p.c_str(), O_RDONLY);
  std::vector<Bytes> out;
  for (const auto& b : shape.blobs) {
    Bytes d(b.data.size());
    size_t off = 0;
    while (off < d.size()) {
      ssize_t n = ::read(fd, d.data() + off, d.size() - off);
      if (n <= 0) std::perror("read"), std::exit(1);
      off += static_cast<size_t>(n);
    }
    out.push_back(std::move(d));
  }
  ::close(fd);
  return secs(t0, Clock::now());
}

void hash_speed() {
  Bytes data(64 << 20, 0x5a);
  auto t0 = Clock::now();
  volatile uint64_t h = xxh3_64(data);
  auto t1 = Clock::now();
  volatile uint64_t l = legacy_hash64(data);
  auto t2 = Clock::now();
  auto d = sha256(data);
  auto t3 = Clock::now();
  (void)h;
  (void)l;
  (void)d;
  const double gb = 64.0 * 1.048576 / 1000;
  std::printf("checksum speed over 64 MiB: xxh3_64 %.2f GB/s, legacy_hash64 %.2f GB/s, sha256 %.3f GB/s\n",
              gb / secs(t0, t1), gb / secs(t1, t2), gb / secs(t2, t3));
}

// Peak resident memory: the kernel's high-water mark, reset before each measured call.
struct MemWatch {
  MemWatch() {
    if (FILE* f = std::fopen("/proc/self/clear_refs", "w")) std::fputs("5", f), std::fclose(f);
    before = status_kb("VmRSS:");
  }
  // Bytes above the resident size at construction, at the highest point since.
  double extra_gb() const { return (status_kb("VmHWM:") - before) * 1024 / 1e9; }
  static int64_t status_kb(const char* key) {
    FILE* f = std::fopen("/proc/self/status", "r");
    if (!f) return 0;
    char line[256];
    long long v = 0;
    while (std::fgets(line, sizeof line, f))
      if (std::strncmp(line, key, std::strlen(key)) == 0) v = std::atoll(line + std::strlen(key));
    std::fclose(f);
    return v;
  }
  int64_t before;
};

struct Sample {
  double file_w = 0, store_w = 0, flush = 0, file_r = 0, load = 0;
  double store_mem = 0, load_mem = 0, written = 0;
  double file_cpu = 0, store_cpu = 0, file_r_cpu = 0, load_cpu = 0;  // CPU seconds, all threads
};

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v.size() % 2 ? v[v.size() / 2] : 0.5 * (v[v.size() / 2 - 1] + v[v.size() / 2]);
}

void fail(const char* what, const Status& s) {
  std::printf("%s: %s\n", what, s.to_string().c_str());
  std::exit(1);
}

// `c` with its blobs copied into one snapshot buffer, back to back.
Checkpoint as_snapshot(const Checkpoint& c) {
  uint64_t total = 0;
  for (const auto& b : c.blobs) total += b.data.size();
  auto buffer = SnapshotBuffer::allocate(total);
  if (!buffer.ok()) fail("snapshot", buffer.status());
  Checkpoint out;
  out.manifest = c.manifest;
  uint64_t at = 0;
  for (const auto& b : c.blobs) {
    std::memcpy((*buffer)->data() + at, b.data.data(), b.data.size());
    out.blobs.push_back({b.name, BlobData(*buffer, at, b.data.size())});
    at += b.data.size();
  }
  return out;
}

// One round: the same bytes as a plain file (new name; the one from two rounds ago deleted, as
// the store's keep_last = 2 prunes) and as a store checkpoint, in alternating order so that
// neither always runs on a disk still busy with the other's write-back.
Sample one_round(Store& store, const fs::path& root, int r, size_t tensors, size_t params, bool snapshot) {
  Sample s;
  Checkpoint c = make(100 + r, tensors, params);
  auto file = [&] {
    std::error_code ec;
    fs::remove(root / ("baseline-" + std::to_string(r - 2) + ".bin"), ec);
    const double c0 = cpu_seconds();
    s.file_w = file_write(root / ("baseline-" + std::to_string(r) + ".bin"), c);
    s.file_cpu = cpu_seconds() - c0;
  };
  auto ckpt = [&] {
    // The store takes it over (as from CheckpointWriter); `c` is for the file.
    Checkpoint copy = snapshot ? as_snapshot(c) : c;
    MemWatch mem;
    uint64_t w0 = written_bytes();
    const double c0 = cpu_seconds();
    auto t0 = Clock::now();
    auto info = store.write_checkpoint(std::move(copy));
    auto t1 = Clock::now();
    if (!info.ok()) fail("write", info.status());
    if (Status fl = store.flush(); !fl.ok()) fail("flush", fl);
    s.store_cpu = cpu_seconds() - c0;
    s.written = (written_bytes() - w0) / 1e9;
    s.store_w = secs(t0, t1);
    s.flush = secs(t1, Clock::now());
    s.store_mem = mem.extra_gb();
  };
  if (r % 2) ckpt(), file();
  else file(), ckpt();
  double c0 = cpu_seconds();
  s.file_r = file_read(root / ("baseline-" + std::to_string(r) + ".bin"), c);
  s.file_r_cpu = cpu_seconds() - c0;
  c = Checkpoint();
  MemWatch mem;
  c0 = cpu_seconds();
  auto t3 = Clock::now();
  auto loaded = store.load_latest();
  s.load = secs(t3, Clock::now());
  s.load_cpu = cpu_seconds() - c0;
  if (!loaded.ok()) fail("load", loaded.status());
  s.load_mem = mem.extra_gb() - tensors * params * 4 / 1e9;  // beyond the loaded blobs themselves
  return s;
}

void run_case(const char* label, const fs::path& root, size_t tensors, size_t params, int repeats,
              uint64_t chunk_bytes, bool snapshot) {
  const double gb = tensors * params * 4 / 1e9;
  std::printf("\n== %s: %zu tensors x %zu params = %.3f GB per checkpoint, %d repeats (+1 not counted)%s ==\n", label,
              tensors, params, gb, repeats, snapshot ? ", store gets a snapshot buffer" : "");
  fs::path dir = root / "store";
  fs::remove_all(dir);
  StoreOptions o;
  o.path = dir.string();
  if (chunk_bytes) o.write_piece_bytes = chunk_bytes;
  o.retention.keep_last = 2;
  auto store = Store::open(o);
  if (!store.ok()) fail("open", store.status());
  std::vector<Sample> all;
  for (int r = 0; r < repeats + 1; ++r) {  // +1: the first has a cold store and nothing to prune
    Sample s = one_round(**store, root, r, tensors, params, snapshot);
    std::printf("round %d: file+fsync %.3f s (cpu %.3f), store %.3f s (cpu %.3f) = %.2fx, +flush %.3f s, written "
                "%.2fx, extra mem %.3f GB | file read %.3f s (cpu %.3f), store load+verify %.3f s (cpu %.3f) = %.2fx, "
                "extra mem %.3f GB\n",
                r, s.file_w, s.file_cpu, s.store_w, s.store_cpu, s.store_w / s.file_w, s.flush, s.written / gb,
                s.store_mem, s.file_r, s.file_r_cpu, s.load, s.load_cpu, s.load / s.file_r, s.load_mem);
    std::fflush(stdout);
    if (r > 0) all.push_back(s);
  }
  std::vector<double> fw, sw, wr, fr, ld, lr, mem, lmem, fc, sc, frc, lc;
  for (const auto& s : all) {
    fc.push_back(s.file_cpu), sc.push_back(s.store_cpu), frc.push_back(s.file_r_cpu), lc.push_back(s.load_cpu);
    fw.push_back(s.file_w), sw.push_back(s.store_w), wr.push_back(s.store_w / s.file_w);
    fr.push_back(s.file_r), ld.push_back(s.load), lr.push_back(s.load / s.file_r);
    mem.push_back(s.store_mem), lmem.push_back(s.load_mem);
  }
  auto mn = [](const std::vector<double>& v) { return *std::min_element(v.begin(), v.end()); };
  auto mx = [](const std::vector<double>& v) { return *std::max_element(v.begin(), v.end()); };
  std::printf("file+fsync write   best %.3f s  median %.3f s (%.2f GB/s)\n", mn(fw), median(fw), gb / median(fw));
  std::printf("store write        best %.3f s  median %.3f s\n", mn(sw), median(sw));
  std::printf("  ratio per round: best %.2fx  median %.2fx  worst %.2fx;  ratio of bests %.2fx\n", mn(wr), median(wr),
              mx(wr), mn(sw) / mn(fw));
  std::printf("file read          best %.3f s  median %.3f s\n", mn(fr), median(fr));
  std::printf("store load+verify  best %.3f s  median %.3f s  (ratio per round: median %.2fx)\n", mn(ld), median(ld),
              median(lr));
  std::printf("cpu seconds (median): file write %.3f, store write %.3f (%.2fx); file read %.3f, store load %.3f\n",
              median(fc), median(sc), median(sc) / median(fc), median(frc), median(lc));
  std::printf("peak extra memory: write %.3f GB (worst), load %.3f GB beyond the loaded blobs (worst)\n", mx(mem),
              mx(lmem));
  store->reset();
  fs::remove_all(dir);
}

}  // namespace

int main(int argc, char** argv) {
  fs::path root = fs::temp_directory_path() / "noloco-checkpoint-bench";
  size_t params = 100'000'000, tensors = 5;
  int repeats = 2;
  uint64_t chunk_bytes = 0;
  bool big = true, snapshot = false;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&]() -> std::string { return i + 1 < argc ? argv[++i] : ""; };
    if (a == "--dir") root = next();
    else if (a == "--params") params = std::stoull(next());
    else if (a == "--tensors") tensors = std::stoull(next());
    else if (a == "--repeats") repeats = std::stoi(next());
    else if (a == "--piece-bytes") chunk_bytes = std::stoull(next());
    else if (a == "--skip-big") big = false;
    else if (a == "--snapshot") snapshot = true;
#ifdef NOLOCO_BENCH_PRESETS
    else if (a == "--preset") {
      auto m = trainer::model_preset(next());
      if (!m.ok()) return std::fprintf(stderr, "%s\n", m.status().to_string().c_str()), 2;
      params = static_cast<size_t>(trainer::parameter_count(*m));  // theta, phi, delta, adam m, v
      tensors = 5;
    }
#endif
    else return std::fprintf(stderr, "unknown flag %s\n", a.c_str()), 2;
  }
  fs::create_directories(root);
  hash_speed();
  run_case("tiny", root, 4, 100'000, std::max(repeats, 5), chunk_bytes, snapshot);
  if (big) run_case("big", root, tensors, params, repeats, chunk_bytes, snapshot);
  fs::remove_all(root);
}
