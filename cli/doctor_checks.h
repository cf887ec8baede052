// `noloco doctor` (docs/doctor.md): each check turns facts gathered elsewhere (cmd_doctor.cc
// reads the disk, files, environment, device and network) into one verdict line: ok, warn, fail
// or skip, what was found, and the fix. Pure functions, so every rule is tested by feeding facts.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace noloco::cli::doctor {

enum class Level { kOk, kWarn, kFail, kSkip };

struct Verdict {
  Level level = Level::kOk;
  std::string check;  // short name: disk, key, psk, device, blas, openmp, manifest, peer, ...
  std::string what;   // one line: what was found
  std::string fix;    // one line: what to do (empty for ok)
};

const char* level_name(Level l);  // "ok", "warn", "fail", "skip"
// "fail  key        /k is readable by others (mode 0644); fix: chmod 600 /k"
std::string verdict_line(const Verdict& v);
// 1 when any verdict is a fail, else 0.
int exit_code(const std::vector<Verdict>& verdicts);

// A run kept by `noloco join` in the per-user data directory (docs/invite.md). Doctor uses it
// when no --db, --key, --psk, --manifest or --join is given (or --run names it): its store, key,
// invite (bootstrap peers and a private run's PSK) and peer book.
struct JoinedRunFacts {
  std::string root;              // the data directory looked in
  std::vector<std::string> runs; // run ids saved there
  std::string run_id, dir, error;  // the run used, its directory, or why it could not be read
  bool is_private = false;
  size_t bootstrap = 0, from_peer_book = 0;  // peers to probe from the invite and the peer book
};
Verdict check_joined_run(const JoinedRunFacts& f);

// Free space for checkpoints. A checkpoint is written before the oldest of `keep_last` is dropped,
// and a read-write open needs `min_free_to_open` (storage's floor): keep_last + 1 checkpoints
// plus that floor must fit. `checkpoint_bytes` unknown (no store, no manifest): only the floor.
struct DiskFacts {
  std::string path;          // where the store is or will be
  uint64_t free_bytes = 0;   // available to this user on its filesystem
  std::optional<uint64_t> checkpoint_bytes;
  std::string size_source;   // how checkpoint_bytes was found: "latest checkpoint", "preset tiny", ...
  uint32_t keep_last = 3;
  uint64_t min_free_to_open = 16ull << 20;
};
Verdict check_disk(const DiskFacts& f);
// 5 fp32 vectors of P (θ, φ, δ, Adam m and v: docs/checkpoints.md) plus a small allowance for the
// config, counters and store overhead.
uint64_t checkpoint_bytes_for(int64_t parameters);

// A secret file's permissions: `role` "key" (created 0600 by noloco run when missing) or "psk"
// (must exist). `given` false: the flag was not used.
struct SecretFileFacts {
  std::string role, path;
  bool given = false, exists = false, regular = false;
  unsigned mode = 0;  // permission bits
  // A joined run (noloco join): the PSK is inside the invite saved in `path` (join.json), and a
  // public run's invite has none.
  bool in_invite = false, joined_public = false;
};
Verdict check_secret_file(const SecretFileFacts& f);

// The torch device: `error` set when it cannot be used, else the measured matmul rate.
struct DeviceFacts {
  std::string device;
  std::string error;
  double gflops = 0;
  int64_t n = 0;
  int threads = 0;
};
Verdict check_device(const DeviceFacts& f);

// Which BLAS this process has loaded: the shared-library paths of /proc/self/maps (blas_libraries
// picks them out) and, where Debian's alternatives choose libblas.so.3, its target.
std::vector<std::string> blas_libraries(std::string_view proc_maps);
Verdict check_blas(const std::vector<std::string>& libraries, const std::string& alternative_target);

// OMP_WAIT_POLICY as the user's environment has it (nullopt: unset).
Verdict check_openmp(const std::optional<std::string>& wait_policy);
// OPENBLAS_THREAD_TIMEOUT: unset (noloco sets 4 itself) or up to 4 is right; higher warns.
Verdict check_openblas_timeout(const std::optional<std::string>& timeout);

// The run manifest: `error` when it does not load; else its facts.
struct ManifestFacts {
  bool given = false;
  std::string path, error;
  std::string run_id, preset, method, data;
  int64_t parameters = 0, H = 0;
  bool data_exists = false;
  std::string joined_run_id;  // not given, but in a joined run: the invite's run id
};
Verdict check_manifest(const ManifestFacts& f);

// One bootstrap peer dialled and pinged: `error` empty on success.
struct PeerFacts {
  std::string addr, error;
  double rtt_ms = 0;
  std::string agent;     // identify's agent version
  std::string observed;  // identify's observed address: how the peer sees this machine
};
Verdict check_peer(const PeerFacts& f);
Verdict no_peers_given();

}  // namespace noloco::cli::doctor
