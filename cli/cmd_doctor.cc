// `noloco doctor`: checks this machine and the run's setup and explains each finding with its fix
// (docs/doctor.md). This file gathers the facts (disk, file modes, environment, the torch device,
// the loaded BLAS, the manifest, and through p2p/probe_tool.h the peers, dial-backs, observed
// addresses and clocks); cli/doctor_checks.h and cli/doctor_network_checks.h judge them.
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
#include "cli/doctor_joined_run.h"
#include "cli/doctor_network_checks.h"
#include "cli/p2p_flags.h"
#include "p2p/local_addrs.h"
#include "p2p/probe_tool.h"
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
  std::string listen, data_dir, run;
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

ManifestFacts manifest_facts(const Flags& f, const JoinedRun& joined) {
  ManifestFacts m;
  m.given = !f.manifest.empty();
  m.path = f.manifest;
  m.joined_run_id = joined.facts.run_id;
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

Verdict secret_verdict(const std::string& role, const std::string& path, bool in_invite = false,
                       bool joined_public = false) {
  SecretFileFacts s;
  s.role = role;
  s.path = path;
  s.given = !path.empty();
  s.in_invite = in_invite;
  s.joined_public = joined_public;
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

PeerFacts peer_facts(const p2p::ProbedPeer& p) {
  PeerFacts pf;
  pf.addr = p.addr.to_string();
  pf.error = !p.error.empty() ? p.error : p.ping_error.empty() ? "" : "connected, but ping failed: " + p.ping_error;
  pf.rtt_ms = p.rtt_ms;
  pf.agent = p.agent;
  if (p.observed) pf.observed = p.observed->to_string();
  return pf;
}

DialbackFacts dialback_facts(const p2p::ProbedPeer& p) {
  using O = DialbackFacts::Outcome;
  DialbackFacts d;
  d.peer = p.addr.to_string();
  if (!p.error.empty()) d.outcome = O::kUnreachablePeer;
  else if (!p.offers_autonat) d.outcome = O::kNotOffered;
  else if (!p.dialback) {
    d.outcome = O::kFailed;
    d.detail = p.dialback_error;
  } else {
    const auto st = p.dialback->status;
    d.outcome = st == p2p::autonat::ResponseStatus::kOk         ? O::kReached
                : st == p2p::autonat::ResponseStatus::kDialError ? O::kDialError
                                                                 : O::kRefused;
    d.detail = d.outcome == O::kReached && p.dialback->addr ? p.dialback->addr->to_string()
               : st ? std::string(p2p::autonat::response_status_name(*st)) + (p.dialback->text.empty() ? "" : " " + p.dialback->text)
                    : "an answer without a status";
  }
  return d;
}

NatFacts nat_facts(const p2p::ProbeReport& r) {
  NatFacts n;
  n.listen_port = r.listened.tcp_port().value_or(0);
  n.local_ips = p2p::local_ipv4_addresses();
  if (auto ip = r.listened.host()) n.local_ips.push_back(*ip);
  for (const auto& p : r.peers) {
    if (!p.error.empty() || !p.observed || !p.observed->host() || !p.observed->tcp_port()) continue;
    n.seen.push_back({p.addr.to_string(), *p.observed->host(), *p.observed->tcp_port(), p.from_listen_port});
  }
  return n;
}

ClockFacts clock_facts(const p2p::ProbedPeer& p) {
  ClockFacts c;
  c.peer = p.addr.to_string();
  c.offered = p.error.empty() && p.offers_time;
  if (p.clock) {
    c.offset_ms = p.clock->offset_ms;
    c.error_ms = p.clock->error_ms;
  }
  c.error = p.clock_error;
  return c;
}

// peer lines, then reachability, nat and clock, from one probe of every peer.
std::vector<Verdict> network_verdicts(const Flags& f, const JoinedRun& joined) {
  std::vector<std::string> addrs = f.join;
  for (const auto& a : joined.peers) addrs.push_back(a);
  ListenFacts lf;
  lf.node_listen = !f.listen.empty() ? f.listen : joined.listen;
  if (addrs.empty())
    return {no_peers_given(), check_reachability(lf, {}), check_nat({}), check_clock({})};
  std::vector<Verdict> out;
  p2p::ProbeToolOptions opt;
  const auto timeout = std::chrono::duration_cast<Duration>(std::chrono::duration<double>(f.timeout_s));
  opt.host.dial_timeout = opt.host.handshake_timeout = opt.host.ping_timeout = timeout;
  // The dial-back servers try each address with their own 10 s dial timeout.
  opt.budget = 2 * timeout + std::chrono::seconds(30);
  opt.host.agent_version = "noloco-doctor";
  opt.host.psk = joined.psk;
  if (Status st = apply_psk_flag(f.psk, opt.host); !st.ok())
    return {{Level::kFail, "peer", "cannot use the PSK: " + st.to_string(), "check --psk"}};
  for (const auto& a : addrs) {
    auto parsed = p2p::Multiaddr::parse(a);
    if (parsed.ok()) opt.peers.push_back(*parsed);
    else out.push_back(check_peer({a, "not a multiaddr: " + parsed.status().message(), 0, "", ""}));
  }
  auto listen = p2p::Multiaddr::parse(lf.node_listen.empty() ? "/ip4/0.0.0.0/tcp/0" : lf.node_listen);
  if (!listen.ok()) return {{Level::kFail, "reachability", "--listen: " + listen.status().message(), "give a multiaddr"}};
  opt.listen = *listen;
  auto id = p2p::Identity::generate();  // never the node's: peers would route its streams to us
  auto report = id.ok() ? p2p::run_probe_tool(*id, opt) : Result<p2p::ProbeReport>(id.status());
  if (!report.ok())
    return {{Level::kFail, "reachability", "cannot listen to be dialled back: " + report.status().to_string(),
             "give --listen an address of this machine"}};
  lf.listened = report->listened.to_string();
  lf.temporary_port = report->temporary_port;
  std::vector<DialbackFacts> dialbacks;
  std::vector<ClockFacts> clocks;
  for (const auto& p : report->peers) {
    out.push_back(check_peer(peer_facts(p)));
    dialbacks.push_back(dialback_facts(p));
    if (p.error.empty()) clocks.push_back(clock_facts(p));
  }
  out.push_back(check_reachability(lf, dialbacks));
  out.push_back(check_nat(nat_facts(*report)));
  out.push_back(check_clock(clocks));
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
  sub->add_option("--join", f->join, "bootstrap peer multiaddr (with /p2p/) to dial, ping and ask for a dial-back and "
                                     "its clock; repeatable");
  sub->add_option("--device", f->device, "torch device to try: cpu or cuda[:N]")->capture_default_str();
  sub->add_option("--threads", f->threads, "torch threads for the matmul (0: torch's default)")->capture_default_str();
  sub->add_option("--keep-last", f->keep_last, "checkpoints kept (as noloco run --keep-last)")->capture_default_str();
  sub->add_option("--matmul-size", f->matmul_n, "n of the n×n fp32 matmul timed")
      ->capture_default_str()
      ->check(CLI::Range(16, 8192));
  sub->add_option("--timeout", f->timeout_s, "seconds allowed for each peer's dial and ping (the dial-backs and clock requests get twice that plus 30 s in all)")
      ->capture_default_str()
      ->check(CLI::Range(0.001, 600.0));
  sub->add_option("--listen", f->listen, "the node's listen multiaddr: doctor listens there (or on a temporary port "
                                         "when the node holds it) to be dialled back (default: a joined run's, else any port)");
  sub->add_option("--data-dir", f->data_dir, "where noloco join keeps runs (default: $XDG_DATA_HOME/noloco, ~/.local/share/noloco)");
  sub->add_option("--run", f->run, "check this joined run (when several are saved); used without flags when only one is");
  sub->add_flag("--json", f->json, "one JSON array of {level, check, what, fix} instead of lines");
  return {sub, [f] {
            std::vector<Verdict> all;
            // A joiner gives no flags: the run kept by noloco join supplies them.
            const bool no_run_flags = f->db.empty() && f->key.empty() && f->psk.empty() && f->manifest.empty() && f->join.empty();
            JoinedRun joined;
            if (no_run_flags || !f->run.empty() || !f->data_dir.empty()) {
              joined = find_joined_run(f->data_dir, f->run);
              all.push_back(check_joined_run(joined.facts));
              if (f->db.empty()) f->db = joined.db;
              if (f->key.empty()) f->key = joined.key;
              if (f->manifest.empty()) f->manifest = joined.manifest;
            }
            const bool in_run = !joined.facts.run_id.empty();
            const ManifestFacts m = manifest_facts(*f, joined);
            all.push_back(check_manifest(m));
            all.push_back(disk_verdict(*f, m));
            all.push_back(secret_verdict("key", f->key));
            if (f->psk.empty() && in_run) all.push_back(secret_verdict("psk", joined.psk ? joined.settings : "", true, !joined.psk));
            else all.push_back(secret_verdict("psk", f->psk));
            for (auto& v : machine_verdicts(*f)) all.push_back(std::move(v));
            for (auto& v : network_verdicts(*f, joined)) all.push_back(std::move(v));
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
