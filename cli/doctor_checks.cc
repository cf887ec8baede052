// The rules of `noloco doctor` (doctor_checks.h). Thresholds are explained where they are set.
#include "cli/doctor_checks.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <set>

namespace noloco::cli::doctor {
namespace {

std::string human_bytes(uint64_t b) {
  char buf[32];
  if (b >= (1ull << 30)) std::snprintf(buf, sizeof buf, "%.1f GiB", b / double(1ull << 30));
  else if (b >= (1ull << 20)) std::snprintf(buf, sizeof buf, "%.1f MiB", b / double(1ull << 20));
  else std::snprintf(buf, sizeof buf, "%.1f KiB", b / 1024.0);
  return buf;
}

std::string octal(unsigned mode) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "%04o", mode & 07777);
  return buf;
}

bool contains(std::string_view s, std::string_view what) { return s.find(what) != std::string_view::npos; }

}  // namespace

const char* level_name(Level l) {
  switch (l) {
    case Level::kOk: return "ok";
    case Level::kWarn: return "warn";
    case Level::kFail: return "fail";
    case Level::kSkip: return "skip";
  }
  return "?";
}

std::string verdict_line(const Verdict& v) {
  char head[40];
  std::snprintf(head, sizeof head, "%-5s %-13s ", level_name(v.level), v.check.c_str());
  return head + v.what + (v.fix.empty() ? "" : "; fix: " + v.fix);
}

int exit_code(const std::vector<Verdict>& verdicts) {
  return std::any_of(verdicts.begin(), verdicts.end(), [](const Verdict& v) { return v.level == Level::kFail; }) ? 1
                                                                                                                 : 0;
}

Verdict check_joined_run(const JoinedRunFacts& f) {
  Verdict v{Level::kOk, "joined run", "", ""};
  if (!f.error.empty()) {
    v.level = Level::kFail;
    v.what = f.error;
    v.fix = "give the run with --run ID (noloco join lists the saved ones), or the flags you give noloco run";
    return v;
  }
  if (f.run_id.empty()) {
    v.level = Level::kSkip;
    if (f.runs.size() > 1) {
      std::string list;
      for (const auto& r : f.runs) list += " " + r;
      v.what = "several runs are saved under " + f.root + ":" + list;
      v.fix = "say which with --run ID";
    } else {
      v.what = "no run saved under " + f.root + " (noloco join keeps one there) and no flags about a run";
      v.fix = "give the flags you give noloco run (--db, --key, --psk, --manifest, --join), or --data-dir";
    }
    return v;
  }
  v.what = "run " + f.run_id + (f.is_private ? " (private)" : " (public)") + " in " + f.dir + ": its store, key and invite are checked below; peers to ask: " +
           std::to_string(f.bootstrap) + " from the invite, " + std::to_string(f.from_peer_book) + " from the peer book";
  return v;
}

uint64_t checkpoint_bytes_for(int64_t parameters) {
  // θ, φ, δ, Adam m, Adam v as fp32, plus 64 KiB for the config, counters and store framing.
  return 5ull * 4ull * static_cast<uint64_t>(std::max<int64_t>(parameters, 0)) + (64ull << 10);
}

Verdict check_disk(const DiskFacts& f) {
  Verdict v{Level::kOk, "disk", "", ""};
  const std::string free_text = human_bytes(f.free_bytes) + " free at " + f.path;
  if (!f.checkpoint_bytes) {
    const bool low = f.free_bytes < f.min_free_to_open;
    v.level = low ? Level::kFail : Level::kWarn;
    v.what = free_text + "; checkpoint size unknown (no store with a checkpoint, no manifest)";
    v.fix = low ? "free space: opening a store needs " + human_bytes(f.min_free_to_open)
                : "give --manifest (or --db of a store with a checkpoint) to size the check";
    return v;
  }
  const uint64_t need = (f.keep_last + 1ull) * *f.checkpoint_bytes + f.min_free_to_open;
  v.what = free_text + "; " + std::to_string(f.keep_last) + "+1 checkpoints of " + human_bytes(*f.checkpoint_bytes) +
           " (" + f.size_source + ") and the store's floor need " + human_bytes(need);
  if (f.free_bytes < need) {
    v.level = Level::kFail;
    v.fix = "free " + human_bytes(need - f.free_bytes) + ", lower --keep-last, or put --db on a larger disk";
  } else if (f.free_bytes < 2 * need) {
    // Less than twice the need: RocksDB compaction and the metrics records can take the rest.
    v.level = Level::kWarn;
    v.fix = "keep at least twice that free (compaction and metrics grow too), or lower --keep-last";
  }
  return v;
}

Verdict check_secret_file(const SecretFileFacts& f) {
  Verdict v{Level::kOk, f.role + " file", "", ""};
  if (!f.given && f.joined_public) {
    v.level = Level::kSkip;
    v.what = "a public run: its invite carries no PSK";
    return v;
  }
  if (!f.given) {
    v.level = Level::kSkip;
    v.what = f.role == "psk" ? "no --psk: not a private network" : "no --key given";
    v.fix = f.role == "psk" ? "" : "give the --key you pass to noloco run";
    return v;
  }
  if (!f.exists) {
    if (f.role == "key") {
      v.what = f.path + " does not exist yet: noloco run creates it with mode 0600";
      return v;
    }
    v.level = Level::kFail;
    v.what = f.path + " does not exist";
    v.fix = "copy the run's swarm key there (chmod 600)";
    return v;
  }
  if (!f.regular) {
    v.level = Level::kFail;
    v.what = f.path + " is not a regular file";
    v.fix = "point --" + f.role + " at the " + f.role + " file itself";
    return v;
  }
  if ((f.mode & 077) != 0) {
    v.level = Level::kFail;
    v.what = f.path + " can be read or written by group or others (mode " + octal(f.mode) + ")";
    v.fix = "chmod 600 " + f.path;
    return v;
  }
  v.what = (f.in_invite ? "the PSK is in the invite saved in " : "") + f.path + " has mode " + octal(f.mode) + " (owner only)";
  return v;
}

Verdict check_device(const DeviceFacts& f) {
  Verdict v{Level::kOk, "device", "", ""};
  if (!f.error.empty()) {
    v.level = Level::kFail;
    v.what = f.device + " cannot be used: " + f.error;
    v.fix = f.device == "cpu" ? "reinstall libtorch (tools/setup.sh)" : "use --device cpu, or install a CUDA build of libtorch";
    return v;
  }
  char buf[160];
  std::snprintf(buf, sizeof buf, "%s: %.1f GFLOP/s fp32 matmul (n=%lld, torch threads %d)", f.device.c_str(), f.gflops,
                static_cast<long long>(f.n), f.threads);
  v.what = buf;
  // Under 1 GFLOP/s even the tiny preset's steps crawl: a throttled or shared machine, or a
  // reference BLAS (see the blas line).
  if (f.gflops < 1.0) {
    v.level = Level::kWarn;
    v.fix = "check the blas line, other load on the machine (uptime) and --threads";
  }
  return v;
}

std::vector<std::string> blas_libraries(std::string_view maps) {
  std::set<std::string> seen;
  std::vector<std::string> out;
  size_t start = 0;
  while (start < maps.size()) {
    size_t nl = maps.find('\n', start);
    if (nl == std::string_view::npos) nl = maps.size();
    const std::string_view line = maps.substr(start, nl - start);
    start = nl + 1;
    const size_t slash = line.find('/');
    if (slash == std::string_view::npos) continue;
    const std::string path(line.substr(slash));
    const std::string name = path.substr(path.rfind('/') + 1);
    const bool blas = contains(name, "blas") || contains(name, "mkl_") || contains(name, "libblis") ||
                      contains(name, "lapack");
    if (blas && seen.insert(path).second) out.push_back(path);
  }
  return out;
}

Verdict check_blas(const std::vector<std::string>& libs, const std::string& alternative) {
  Verdict v{Level::kOk, "blas", "", ""};
  std::string list;
  bool openblas = false, mkl = false, blis = false, reference = false;
  for (const auto& l : libs) {
    list += (list.empty() ? "" : ", ") + l.substr(l.rfind('/') + 1);
    openblas |= contains(l, "openblas");
    mkl |= contains(l, "mkl");
    blis |= contains(l, "blis");
    // Debian's netlib reference BLAS lives in .../blas/libblas.so.3.
    reference |= contains(l, "/blas/libblas");
  }
  reference |= contains(alternative, "/blas/libblas");
  const std::string alt = alternative.empty() ? "" : "; libblas.so.3 -> " + alternative;
  if (libs.empty()) {
    v.level = Level::kWarn;
    v.what = "no BLAS library is loaded in this process" + alt;
    v.fix = "install OpenBLAS (apt-get install libopenblas0-pthread; tools/setup.sh does)";
  } else if (reference && !openblas && !mkl && !blis) {
    v.level = Level::kWarn;
    v.what = "the netlib reference BLAS is in use (" + list + ")" + alt + ": many times slower than OpenBLAS";
    v.fix = "apt-get install libopenblas0-pthread && update-alternatives --config libblas.so.3-x86_64-linux-gnu";
  } else if (reference) {
    v.level = Level::kWarn;
    v.what = "libblas.so.3 is the netlib reference BLAS" + alt + " while " + list + " are loaded";
    v.fix = "update-alternatives --config libblas.so.3-x86_64-linux-gnu: choose openblas";
  } else {
    v.what = std::string(openblas ? "OpenBLAS" : mkl ? "MKL" : blis ? "BLIS" : "a BLAS") + " (" + list + ")" + alt;
  }
  return v;
}

Verdict check_openmp(const std::optional<std::string>& policy) {
  Verdict v{Level::kOk, "openmp", "", ""};
  if (!policy) {
    v.what = "OMP_WAIT_POLICY unset: noloco run, train and simulate restart themselves with PASSIVE";
    return v;
  }
  std::string p = *policy;
  for (char& c : p) c = static_cast<char>(c >= 'a' && c <= 'z' ? c - 'a' + 'A' : c);
  if (p == "PASSIVE") {
    v.what = "OMP_WAIT_POLICY=PASSIVE: idle OpenMP workers sleep and leave the cores to OpenBLAS";
    return v;
  }
  v.level = Level::kWarn;
  v.what = "OMP_WAIT_POLICY=" + *policy + ": noloco keeps it, and spinning OpenMP workers starve OpenBLAS's threads "
           "(306 vs 112 ms per small-preset step on 2 cores, docs/benchmarks.md)";
  v.fix = "unset OMP_WAIT_POLICY (or export OMP_WAIT_POLICY=PASSIVE)";
  return v;
}

Verdict check_openblas_timeout(const std::optional<std::string>& timeout) {
  Verdict v{Level::kOk, "openblas", "", ""};
  if (!timeout) {
    v.what = "OPENBLAS_THREAD_TIMEOUT unset: noloco run, train and simulate restart themselves with 4";
    return v;
  }
  char* end = nullptr;
  const long t = std::strtol(timeout->c_str(), &end, 10);
  if (end != timeout->c_str() && *end == '\0' && t <= 4) {
    v.what = "OPENBLAS_THREAD_TIMEOUT=" + *timeout + ": idle OpenBLAS workers sleep at once";
    return v;
  }
  v.level = Level::kWarn;
  v.what = "OPENBLAS_THREAD_TIMEOUT=" + *timeout + ": noloco keeps it, and idle OpenBLAS workers spinning on sched_yield "
           "take the cores from torch's workers (small preset on 2 cores: 0.112 vs 0.016 s system time per step, "
           "docs/benchmarks.md)";
  v.fix = "unset OPENBLAS_THREAD_TIMEOUT (or export OPENBLAS_THREAD_TIMEOUT=4)";
  return v;
}

Verdict check_manifest(const ManifestFacts& f) {
  Verdict v{Level::kOk, "manifest", "", ""};
  if (!f.given) {
    v.level = Level::kSkip;
    v.what = f.joined_run_id.empty()
                 ? "no --manifest: a node started with --join fetches it from that peer and checks it against --run-id"
                 : "this machine joined run " + f.joined_run_id + ": the node fetches the manifest from a bootstrap "
                   "peer and refuses it unless it hashes to that run id (only init-run's machine keeps a manifest.json)";
    return v;
  }
  if (!f.error.empty()) {
    v.level = Level::kFail;
    v.what = f.error;
    v.fix = "fix the file or make a new one with noloco init-run (docs/protocols/run.md lists every field)";
    return v;
  }
  v.what = f.path + ": run " + f.run_id + ", " + f.method + ", preset " + f.preset + " (" +
           std::to_string(f.parameters) + " parameters), H " + std::to_string(f.H);
  if (!f.data_exists) {
    v.level = Level::kFail;
    v.what += "; corpus " + f.data + " not found";
    v.fix = "install it (fortunes: apt-get install fortunes-min) or give --data PATH (to noloco doctor and noloco run) to a copy with the same sha256";
  } else {
    v.what += "; corpus " + f.data + " present";
  }
  return v;
}

Verdict check_peer(const PeerFacts& f) {
  Verdict v{Level::kOk, "peer", "", ""};
  if (!f.error.empty()) {
    v.level = Level::kFail;
    v.what = f.addr + ": " + f.error;
    v.fix = "check the address (the peer's first output line), that it runs, firewalls, and the --psk";
    return v;
  }
  char buf[64];
  std::snprintf(buf, sizeof buf, ": reachable, ping %.2f ms", f.rtt_ms);
  v.what = f.addr + buf + (f.agent.empty() ? "" : ", agent " + f.agent) +
           (f.observed.empty() ? "" : ", sees this machine as " + f.observed);
  return v;
}

Verdict no_peers_given() {
  return {Level::kSkip, "peer", "no --join addresses to dial", "give the --join addresses you pass to noloco run"};
}

}  // namespace noloco::cli::doctor
