// Checkpoint write/load cost of the store against the floor: the same bytes written to one
// file and fsynced. Prints figures; not a test.
//
//   checkpoint_bench [--dir DIR] [--params N] [--tensors T] [--repeats R] [--chunk-bytes B] [--skip-big]
//
// tiny: 4 tensors of 0.1M fp32 params; big: T tensors of N fp32 params (default 5 x 100M =
// 2 GB, the phi/theta/delta/2 Adam moments of a 100M-parameter model). --chunk-bytes: the
// store's chunk size (default: StoreOptions' default). "written" is this process's
// write_bytes from /proc/self/io over the call: bytes it sent to the disk, so a second copy
// of the data (WAL + flush, compaction) shows as a ratio above 1.
#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "common/hash.h"
#include "storage/store.h"

using namespace noloco;
using namespace noloco::storage;
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

namespace {

double secs(Clock::time_point a, Clock::time_point b) { return std::chrono::duration<double>(b - a).count(); }

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

uint64_t dir_bytes(const fs::path& p) {
  uint64_t n = 0;
  for (const auto& e : fs::recursive_directory_iterator(p))
    if (e.is_regular_file()) n += e.file_size();
  return n;
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

void run_case(const char* label, const fs::path& root, size_t tensors, size_t params, int repeats,
              uint64_t chunk_bytes) {
  const double gb = tensors * params * 4 / 1e9;
  std::printf("\n== %s: %zu tensors x %zu params = %.3f GB per checkpoint, %d repeats ==\n", label, tensors, params, gb,
              repeats);
  fs::path file = root / "baseline.bin";
  double fw = 1e30, fr = 1e30, fwritten = 0;
  for (int r = 0; r < repeats; ++r) {
    Checkpoint c = make(r, tensors, params);
    uint64_t w0 = written_bytes();
    fw = std::min(fw, file_write(file, c));
    fwritten = (written_bytes() - w0) / 1e9;
    fr = std::min(fr, file_read(file, c));
  }
  fs::remove(file);
  std::printf("file+fsync           write %8.3f s (%6.2f GB/s)  read %8.3f s  written %.3f GB\n", fw, gb / fw, fr,
              fwritten);

  fs::path dir = root / "store";
  fs::remove_all(dir);
  StoreOptions o;
  o.path = dir.string();
  if (chunk_bytes) o.chunk_bytes = chunk_bytes;
  o.retention.keep_last = 2;
  auto store = Store::open(o);
  if (!store.ok()) std::printf("open: %s\n", store.status().to_string().c_str()), std::exit(1);
  double commit = 1e30, total = 1e30, load = 1e30, written = 0;
  for (int r = 0; r < repeats + 1; ++r) {  // +1: the steady state includes pruning the oldest
    Checkpoint c = make(100 + r, tensors, params);
    uint64_t w0 = written_bytes();
    auto t0 = Clock::now();
    // As CheckpointWriter does: the store takes the bytes over.
    auto info = (*store)->write_checkpoint(std::move(c));
    auto t1 = Clock::now();
    if (!info.ok()) std::printf("write: %s\n", info.status().to_string().c_str()), std::exit(1);
    Status fl = (*store)->flush();
    auto t2 = Clock::now();
    if (!fl.ok()) std::printf("flush: %s\n", fl.to_string().c_str()), std::exit(1);
    uint64_t w1 = written_bytes();
    auto t3 = Clock::now();
    auto loaded = (*store)->load_latest();
    auto t4 = Clock::now();
    if (!loaded.ok()) std::printf("load: %s\n", loaded.status().to_string().c_str()), std::exit(1);
    if (r == 0) continue;  // first write has no pruning and a cold store
    commit = std::min(commit, secs(t0, t1));
    total = std::min(total, secs(t0, t2));
    load = std::min(load, secs(t3, t4));
    written = std::max(written, (w1 - w0) / 1e9);
  }
  std::printf("store  commit %8.3f s  commit+flush %8.3f s  load+verify %8.3f s  disk %.3f GB  written %.3f GB\n",
              commit, total, load, dir_bytes(dir) / 1e9, written);
  std::printf("  ratio to file+fsync: commit %.2fx  commit+flush %.2fx  load %.2fx  written %.2fx\n", commit / fw,
              total / fw, load / fr, written / gb);
  store->reset();
  fs::remove_all(dir);
}

}  // namespace

int main(int argc, char** argv) {
  fs::path root = fs::temp_directory_path() / "noloco-checkpoint-bench";
  size_t params = 100'000'000, tensors = 5;
  int repeats = 2;
  uint64_t chunk_bytes = 0;
  bool big = true;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&]() -> std::string { return i + 1 < argc ? argv[++i] : ""; };
    if (a == "--dir") root = next();
    else if (a == "--params") params = std::stoull(next());
    else if (a == "--tensors") tensors = std::stoull(next());
    else if (a == "--repeats") repeats = std::stoi(next());
    else if (a == "--chunk-bytes") chunk_bytes = std::stoull(next());
    else if (a == "--skip-big") big = false;
    else return std::fprintf(stderr, "unknown flag %s\n", a.c_str()), 2;
  }
  fs::create_directories(root);
  hash_speed();
  run_case("tiny", root, 4, 100'000, std::max(repeats, 5), chunk_bytes);
  if (big) run_case("big", root, tensors, params, repeats, chunk_bytes);
  fs::remove_all(root);
}
