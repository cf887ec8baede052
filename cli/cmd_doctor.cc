// `noloco doctor`: checks this machine and the run's setup and explains each finding with its fix
// (docs/doctor.md). This file gathers the facts (disk, file modes, environment, the torch device,
// the loaded BLAS, the manifest, the bootstrap peers); cli/doctor_checks.h judges them.
#include <sys/stat.h>
#include <sys/statvfs.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>

#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "cli/doctor_checks.h"
#include "cli/p2p_flags.h"
#include "p2p/host_tools.h"
#include "storage/store.h"
#include "trainer/core/model.h"
#include "trainer/node/device_probe.h"
#include "trainer/node/run_manifest.h"

namespace noloco::cli {
namespace {

namespace fs = std::filesystem;
using namespace doctor;

struct Flags {
  std::string db, key, psk, manifest, data, device = "cpu";
  std::vector<std::string> join;
  uint32_t keep_last = 3;
  int threads = 0;
  int64_t matmul_n = 512;
  double timeout_s = 5;
  bool json = false;
};

std::string read_small_file(const std::string& path, size_t cap) {
  std::ifstream f(path, std::ios::binary);
  std::string out;
  char buf[4096];
  while (f && out.size() < cap) {
    f.read(buf, sizeof buf);
    out.append(buf, static_cast<size_t>(f.gcount()));
  }
  return out;
}

// The store's latest checkpoint size, when --db is a store with one.
std::optional<uint64_t> latest_checkpoint_bytes(const std::string& db) {
  std::error_code ec;
  if (db.empty() || !fs::exists(fs::path(db) / "CURRENT", ec)) return std::nullopt;
  storage::StoreOptions so;
  so.path = db;
  so.mode = storage::OpenMode::kReadOnly;
  auto store = storage::Store::open(so);
  if (!store.ok()) return std::nullopt;
  auto latest = (*store)->latest_checkpoint_info();
  if (!latest.ok() || !latest->has_value()) return std::nullopt;
  uint64_t bytes = 0;
  for (const auto& b : (*latest)->manifest.blobs) bytes += b.size;
  return bytes;
}

ManifestFacts manifest_facts(const Flags& f) {
  ManifestFacts m;
  m.given = !f.manifest.empty();
  m.path = f.manifest;
  if (!m.given) return m;
  auto loaded = node::load_manifest_file(f.manifest);
  if (!loaded.ok()) {
    m.error = loaded.status().to_string();
    return m;
  }
  m.run_id = node::run_id_of(*loaded);
  m.preset = loaded->preset;
  m.method = loaded->method;
  m.H = loaded->H;
  m.data = f.data.empty() ? loaded->data : f.data;
  std::error_code ec;
  m.data_exists = fs::exists(m.data, ec);  // a file or a directory of files (fortunes is one)
  if (auto cfg = trainer::model_preset(loaded->preset); cfg.ok()) m.parameters = trainer::parameter_count(*cfg);
  return m;
}

Verdict disk_verdict(const Flags& f, const ManifestFacts& m) {
  DiskFacts d;
  d.keep_last = f.keep_last;
  d.min_free_to_open = storage::StoreOptions{}.min_free_bytes_to_open;
  // The store's filesystem: the directory itself, or its nearest existing parent before it exists.
  std::error_code ec;
  fs::path p = f.db.empty() ? fs::current_path(ec) : fs::absolute(f.db, ec).lexically_normal();
  while (!fs::exists(p, ec) && p.has_parent_path() && p != p.parent_path()) p = p.parent_path();
  d.path = p.string();
  struct statvfs sv {};
  if (::statvfs(d.path.c_str(), &sv) != 0)
    return {Level::kFail, "disk", "cannot stat the filesystem of " + d.path, "check --db"};
  d.free_bytes = static_cast<uint64_t>(sv.f_bavail) * sv.f_frsize;
  if (auto b = latest_checkpoint_bytes(f.db)) {
    d.checkpoint_bytes = *b;
    d.size_source = "the store's latest";
  } else if (m.parameters > 0) {
    d.checkpoint_bytes = checkpoint_bytes_for(m.parameters);
    d.size_source = "preset " + m.preset + ", estimated";
  }
  return check_disk(d);
}

Verdict secret_verdict(const std::string& role, const std::string& path) {
  SecretFileFacts s;
  s.role = role;
  s.path = path;
  s.given = !path.empty();
  struct stat st {};
  if (s.given && ::stat(path.c_str(), &st) == 0) {
    s.exists = true;
    s.regular = S_ISREG(st.st_mode);
    s.mode = st.st_mode & 07777;
  }
  return check_secret_file(s);
}

std::vector<Verdict> machine_verdicts(const Flags& f) {
  std::vector<Verdict> out;
  DeviceFacts d;
  d.device = f.device;
  auto probe = node::probe_device(f.device, f.matmul_n, 5, f.threads);
  if (probe.ok()) {
    d.gflops = probe->gflops;
    d.n = probe->n;
    d.threads = probe->threads;
  } else {
    d.error = probe.status().to_string();
  }
  out.push_back(check_device(d));
  // After the matmul, so a BLAS loaded lazily is in the maps too.
  std::error_code ec;
  const auto alt = fs::read_symlink("/etc/alternatives/libblas.so.3-x86_64-linux-gnu", ec);
  out.push_back(check_blas(blas_libraries(read_small_file("/proc/self/maps", 4u << 20)), ec ? "" : alt.string()));
  const char* omp = std::getenv("OMP_WAIT_POLICY");
  out.push_back(check_openmp(omp ? std::optional<std::string>(omp) : std::nullopt));
  const char* blas_timeout = std::getenv("OPENBLAS_THREAD_TIMEOUT");
  out.push_back(check_openblas_timeout(blas_timeout ? std::optional<std::string>(blas_timeout) : std::nullopt));
  return out;
}

std::vector<Verdict> peer_verdicts(const Flags& f) {
  if (f.join.empty()) return {no_peers_given()};
  std::vector<Verdict> out;
  auto id = p2p::Identity::generate();
  for (const auto& addr : f.join) {
    PeerFacts pf;
    pf.addr = addr;
    auto parsed = p2p::Multiaddr::parse(addr);
    if (!id.ok() || !parsed.ok()) {
      pf.error = !id.ok() ? id.status().to_string() : "not a multiaddr: " + parsed.status().message();
      out.push_back(check_peer(pf));
      continue;
    }
    p2p::PingToolOptions opt;
    opt.target = *parsed;
    const auto timeout = std::chrono::duration_cast<Duration>(std::chrono::duration<double>(f.timeout_s));
    opt.host.dial_timeout = opt.host.handshake_timeout = opt.host.ping_timeout = timeout;
    if (Status st = apply_psk_flag(f.psk, opt.host); !st.ok()) {
      pf.error = "cannot use the PSK: " + st.to_string();
      out.push_back(check_peer(pf));
      continue;
    }
    opt.on_reply = [&pf](const p2p::PeerId&, int, Duration rtt) {
      pf.rtt_ms = std::chrono::duration<double, std::milli>(rtt).count();
    };
    opt.on_identify = [&pf](const p2p::PeerId&, const p2p::IdentifyInfo& info) {
      pf.agent = info.agent_version;
      if (info.observed_addr) pf.observed = info.observed_addr->to_string();
    };
    if (Status st = p2p::run_ping_tool(*id, opt); !st.ok()) pf.error = st.message();
    out.push_back(check_peer(pf));
  }
  return out;
}

}  // namespace

Command register_doctor(CLI::App& app) {
  auto* sub = app.add_subcommand("doctor", "check this machine and the run's setup, each finding with its fix "
                                           "(docs/doctor.md); exit 1 on any fail");
  auto f = std::make_shared<Flags>();
  sub->add_option("--db", f->db, "the node's store (its filesystem's free space; its latest checkpoint's size)");
  sub->add_option("--key", f->key, "identity key file (permissions)");
  sub->add_option("--psk", f->psk, "private-network swarm key file (permissions; also used to dial --join)");
  sub->add_option("--manifest", f->manifest, "run manifest to validate (and to size checkpoints by its preset)");
  sub->add_option("--data", f->data, "corpus path, when it differs from the manifest's");
  sub->add_option("--join", f->join, "bootstrap peer multiaddr (with /p2p/) to dial and ping; repeatable");
  sub->add_option("--device", f->device, "torch device to try: cpu or cuda[:N]")->capture_default_str();
  sub->add_option("--threads", f->threads, "torch threads for the matmul (0: torch's default)")->capture_default_str();
  sub->add_option("--keep-last", f->keep_last, "checkpoints kept (as noloco run --keep-last)")->capture_default_str();
  sub->add_option("--matmul-size", f->matmul_n, "n of the n×n fp32 matmul timed")
      ->capture_default_str()
      ->check(CLI::Range(16, 8192));
  sub->add_option("--timeout", f->timeout_s, "seconds allowed for each peer's dial and ping")
      ->capture_default_str()
      ->check(CLI::Range(0.001, 600.0));
  sub->add_flag("--json", f->json, "one JSON array of {level, check, what, fix} instead of lines");
  return {sub, [f] {
            std::vector<Verdict> all;
            const ManifestFacts m = manifest_facts(*f);
            all.push_back(check_manifest(m));
            all.push_back(disk_verdict(*f, m));
            all.push_back(secret_verdict("key", f->key));
            all.push_back(secret_verdict("psk", f->psk));
            for (auto& v : machine_verdicts(*f)) all.push_back(std::move(v));
            for (auto& v : peer_verdicts(*f)) all.push_back(std::move(v));
            for (auto& v : not_implemented_checks()) all.push_back(std::move(v));
            if (f->json) {
              nlohmann::ordered_json j = nlohmann::ordered_json::array();
              for (const auto& v : all)
                j.push_back({{"level", level_name(v.level)}, {"check", v.check}, {"what", v.what}, {"fix", v.fix}});
              std::printf("%s\n", j.dump().c_str());
            } else {
              for (const auto& v : all) std::printf("%s\n", verdict_line(v).c_str());
            }
            return exit_code(all);
          }};
}

}  // namespace noloco::cli
