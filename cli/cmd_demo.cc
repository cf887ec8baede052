// `noloco demo [--peers N] [--steps S]`: the embedded default. Starts N separate `noloco run`
// processes on loopback (node 0 from a fresh manifest, the others joining it by run id), shows
// their progress, and ends with a summary: validation loss before/after per node, exchanges,
// partners, bytes on the wire (compressed vs raw fp32), and a PNG of the loss curves.
// Everything lands in --dir (default ./noloco-demo): manifest, node stores and logs, summary.
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <csignal>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "cli/p2p_flags.h"
#include "cli/png_chart.h"
#include "common/durable_file.h"
#include "common/encoding.h"
#include "common/hash.h"
#include "trainer/core/data.h"
#include "trainer/node/run_manifest.h"

namespace noloco::cli {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

std::atomic<bool> g_demo_stop{false};
extern "C" void on_demo_signal(int) { g_demo_stop.store(true); }

struct Child {
  std::string name;
  pid_t pid = -1;
  int out_fd = -1;
  std::string buf;  // partial stdout line
  std::string addr, peer;
  bool exited = false;
  int status = 0;
  // From its events.
  double first_val = 0, last_val = 0;
  bool have_first = false;
  int64_t exchanges = 0, solo = 0, outer = 0, inner = 0, steps_total = 0;
  uint64_t bytes_out = 0, raw_out = 0;
  std::map<std::string, int> partners;  // peer id -> times mixed
  std::vector<std::pair<double, double>> curve;  // (inner step, val loss)
  std::vector<double> tokens_per_s, exchange_s, group_sizes;  // per outer step
  uint64_t payload_bytes = 0, raw_payload = 0;   // our payload's size, and as raw fp32 (last outer step)
  std::vector<std::string> notes;
};

// `cpu` >= 0 pins the child to that CPU (for measurements that must not share cores).
Result<std::unique_ptr<Child>> spawn(const std::string& exe, const std::vector<std::string>& args,
                                     const fs::path& log_path, std::string name, int cpu) {
  int pipefd[2];
  if (::pipe(pipefd) != 0) return io_error("pipe failed");
  const int log_fd = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (log_fd < 0) return io_error("cannot create " + log_path.string());
  std::vector<char*> argv;
  argv.push_back(const_cast<char*>(exe.c_str()));
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  const pid_t pid = ::fork();
  if (pid < 0) return io_error("fork failed");
  if (pid == 0) {
    ::dup2(pipefd[1], 1);
    ::dup2(log_fd, 2);
    ::close(pipefd[0]);
    ::close(pipefd[1]);
    ::close(log_fd);
    ::setenv("OMP_WAIT_POLICY", "PASSIVE", 0);  // spinning OpenMP threads starve the other nodes
    if (cpu >= 0) {
      cpu_set_t set;
      CPU_ZERO(&set);
      CPU_SET(cpu, &set);
      if (::sched_setaffinity(0, sizeof set, &set) != 0) std::perror("sched_setaffinity");
    }
    ::execv(exe.c_str(), argv.data());
    std::perror("execv");
    ::_exit(127);
  }
  ::close(pipefd[1]);
  ::close(log_fd);
  auto c = std::make_unique<Child>();
  c->name = std::move(name);
  c->pid = pid;
  c->out_fd = pipefd[0];
  return c;
}

// Reads whatever a child has written; returns complete lines.
std::vector<std::string> read_lines(Child& c) {
  std::vector<std::string> lines;
  char buf[65536];
  const ssize_t n = ::read(c.out_fd, buf, sizeof buf);
  if (n <= 0) {
    ::close(c.out_fd);
    c.out_fd = -1;
    if (!c.buf.empty()) lines.push_back(std::exchange(c.buf, {}));
    return lines;
  }
  c.buf.append(buf, static_cast<size_t>(n));
  size_t pos;
  while ((pos = c.buf.find('\n')) != std::string::npos) {
    lines.push_back(c.buf.substr(0, pos));
    c.buf.erase(0, pos + 1);
  }
  return lines;
}

double mean(const std::vector<double>& v) {
  if (v.empty()) return 0.0;
  double s = 0;
  for (double x : v) s += x;
  return s / static_cast<double>(v.size());
}

double median(std::vector<double> v) {
  if (v.empty()) return 0.0;
  std::nth_element(v.begin(), v.begin() + static_cast<long>(v.size() / 2), v.end());
  return v[v.size() / 2];
}

std::string mb(double bytes) {
  char b[32];
  std::snprintf(b, sizeof b, "%.2f MB", bytes / 1e6);
  return b;
}

}  // namespace

Command register_demo(CLI::App& app) {
  auto* sub = app.add_subcommand("demo", "run a local swarm of training nodes on loopback and summarise it");
  struct Flags {
    int peers = 4;
    int64_t steps = 600;
    int64_t H = 10;
    std::string dir = "noloco-demo";
    std::string data = "/usr/share/games/fortunes";
    std::string preset = "tiny";
    std::string codec = "bf16";
    int64_t batch = 8;
    double lr = 5e-3;
    int64_t warmup = 30;
    double slowdown_last = 1.0;
    bool pin = false;
  };
  auto f = std::make_shared<Flags>();
  sub->add_option("--peers", f->peers, "number of node processes")->capture_default_str();
  sub->add_option("--steps", f->steps, "inner steps per node")->capture_default_str();
  sub->add_option("--H", f->H, "inner steps per outer step")->capture_default_str();
  sub->add_option("--dir", f->dir, "working directory (its previous demo files are replaced)")->capture_default_str();
  sub->add_option("--data", f->data, "corpus")->capture_default_str();
  sub->add_option("--preset", f->preset, "model preset")->capture_default_str();
  sub->add_option("--codec", f->codec, "wire codec: fp32 | bf16 | int8 | int4")->capture_default_str();
  sub->add_option("--batch", f->batch, "sequences per inner step per node")->capture_default_str();
  sub->add_option("--lr", f->lr, "peak learning rate")->capture_default_str();
  sub->add_option("--warmup", f->warmup, "warm-up steps")->capture_default_str();
  sub->add_option("--slowdown-last", f->slowdown_last, "make the last node this many times slower")
      ->capture_default_str();
  sub->add_flag("--pin", f->pin,
                "pin node i to CPU i mod the CPU count, so nodes do not share cores (for measurements; "
                "needs as many CPUs as nodes to mean anything)");

  return {sub, [f] {
            if (f->peers < 2 || f->peers > 16) return fail(invalid_argument("--peers must be in 2..16"));
            std::signal(SIGINT, on_demo_signal);
            std::signal(SIGTERM, on_demo_signal);
            std::signal(SIGPIPE, SIG_IGN);
            const fs::path dir = fs::absolute(f->dir);
            std::error_code ec;
            for (int i = 0; i < 16; ++i) fs::remove_all(dir / ("node" + std::to_string(i)), ec);
            fs::create_directories(dir, ec);
            if (ec) return fail(io_error("cannot create " + dir.string() + ": " + ec.message()));

            node::RunManifest m;
            m.name = "noloco-demo";
            m.preset = f->preset;
            m.steps = f->steps;
            m.H = f->H;
            m.lr = f->lr;
            m.warmup = f->warmup;
            m.batch = f->batch;
            m.codec = f->codec;
            m.data = f->data;
            auto corpus = trainer::load_corpus(m.data);
            if (!corpus.ok()) return fail(corpus.status().context("--data"));
            m.data_sha256 = hex_encode(sha256(*corpus));
            if (Status st = m.validate(); !st.ok()) return fail(st);
            const fs::path manifest = dir / "manifest.json";
            if (Status st = node::write_manifest_file(manifest.string(), m); !st.ok()) return fail(st);
            const std::string run_id = node::run_id_of(m);
            const std::string exe = fs::read_symlink("/proc/self/exe").string();
            std::printf("noloco demo: %d nodes on loopback, run %s (%s model, %lld inner steps, H=%lld, codec %s%s)\n",
                        f->peers, run_id.c_str(), m.preset.c_str(), static_cast<long long>(m.steps),
                        static_cast<long long>(m.H), m.codec.c_str(), m.zstd ? "+zstd" : "");
            std::printf("files: %s\n", dir.c_str());
            std::fflush(stdout);

            std::vector<std::unique_ptr<Child>> kids;
            auto base_args = [&](int i) {
              const fs::path nd = dir / ("node" + std::to_string(i));
              fs::create_directories(nd);
              std::vector<std::string> a = {"run", "--db", (nd / "db").string(), "--key", (nd / "key").string(),
                                            "--json", "--threads", "1", "--linger", "5", "--join-wait", "20",
                                            "--min-peers", std::to_string(f->peers - 1),
                                            // The tiny model's outer phase is a fraction of a second, so
                                            // processes sharing a few cores drift several outer steps apart:
                                            // allow that before passing a partner over or re-syncing.
                                            "--max-staleness", "10", "--resync-behind", "20"};
              if (i == f->peers - 1 && f->slowdown_last > 1.0) {
                a.push_back("--slowdown");
                a.push_back(std::to_string(f->slowdown_last));
              }
              return a;
            };
            auto start = [&](int i, std::vector<std::string> extra) -> Status {
              auto args = base_args(i);
              args.insert(args.end(), extra.begin(), extra.end());
              const fs::path nd = dir / ("node" + std::to_string(i));
              NOLOCO_ASSIGN_OR_RETURN(auto c, spawn(exe, args, nd / "log.txt", "node" + std::to_string(i),
                                                 f->pin ? static_cast<int>(i % std::max(1L, ::sysconf(_SC_NPROCESSORS_ONLN))) : -1));
              kids.push_back(std::move(c));
              return Status::Ok();
            };
            auto kill_all = [&] {
              for (auto& k : kids)
                if (!k->exited) ::kill(k->pid, SIGTERM);
            };
            if (Status st = start(0, {"--manifest", manifest.string()}); !st.ok()) return fail(st);
            // Node 0's first stdout line is its address; the others join through it.
            while (kids[0]->addr.empty()) {
              if (kids[0]->out_fd < 0 || g_demo_stop) {
                kill_all();
                return fail(Status(StatusCode::kUnavailable, "node0 did not start; see " + (dir / "node0" / "log.txt").string()));
              }
              pollfd p{kids[0]->out_fd, POLLIN, 0};
              ::poll(&p, 1, 200);
              if (p.revents) {
                auto lines = read_lines(*kids[0]);
                if (!lines.empty()) kids[0]->addr = lines[0];
              }
            }
            for (int i = 1; i < f->peers; ++i)
              if (Status st = start(i, {"--run-id", run_id, "--join", kids[0]->addr}); !st.ok()) {
                kill_all();
                return fail(st);
              }

            std::map<std::string, std::string> name_of;  // peer id -> node name
            auto label = [&](const std::string& peer) {
              auto it = name_of.find(peer);
              return it != name_of.end() ? it->second : peer.substr(peer.size() > 6 ? peer.size() - 6 : 0);
            };
            const int64_t outer_total = m.steps / m.H;
            const int64_t print_every = std::max<int64_t>(1, outer_total / 10);
            auto handle = [&](Child& c, const std::string& line) {
              auto j = json::parse(line, nullptr, false);
              if (j.is_discarded() || !j.is_object()) {
                if (c.addr.empty()) c.addr = line;
                return;
              }
              const std::string ev = j.value("event", "");
              if (ev == "start") {
                c.peer = j.value("peer", "");
                name_of[c.peer] = c.name;
                c.first_val = j.value("val_loss", 0.0);
                c.have_first = true;
                c.curve.emplace_back(static_cast<double>(j.value("inner_step", 0)), c.first_val);
                std::printf("%-6s started  peer ...%s  val loss %.4f\n", c.name.c_str(),
                            c.peer.substr(c.peer.size() - 6).c_str(), c.first_val);
              } else if (ev == "outer") {
                c.outer = j.value("outer_step", int64_t{0});
                c.inner = j.value("inner_step", int64_t{0});
                const auto& group = j["group"];
                if (group.empty()) ++c.solo;
                else ++c.exchanges;
                for (const auto& g : group) c.partners[g.get<std::string>()]++;
                c.group_sizes.push_back(static_cast<double>(group.size() + 1));
                c.bytes_out += j.value("bytes_out", uint64_t{0});
                c.tokens_per_s.push_back(j.value("tokens_per_s", 0.0));
                if (!j.value("partner", std::string()).empty()) c.exchange_s.push_back(j.value("exchange_s", 0.0));
                c.payload_bytes = j.value("payload_bytes", uint64_t{0});
                c.raw_payload = j.value("raw_bytes", uint64_t{0});
                // What the same payloads would have cost as raw fp32 (per payload sent).
                const uint64_t payload = j.value("payload_bytes", uint64_t{0});
                if (payload > 0) c.raw_out += j.value("raw_bytes", uint64_t{0}) * (j.value("bytes_out", uint64_t{0}) / payload);
                if (j.contains("val_loss")) {
                  c.last_val = j["val_loss"].get<double>();
                  c.curve.emplace_back(static_cast<double>(c.inner), c.last_val);
                }
                if (c.outer % print_every == 0) {
                  const std::string partner = j.value("partner", "");
                  std::printf("%-6s outer %3lld/%lld  step %4lld  loss %.3f  val %.3f  %6.0f tok/s  peers %zu  "
                              "partner %-6s %5.0f ms  group %zu\n",
                              c.name.c_str(), static_cast<long long>(c.outer), static_cast<long long>(outer_total),
                              static_cast<long long>(c.inner), j.value("loss", 0.0), c.last_val,
                              j.value("tokens_per_s", 0.0), j.value("live_peers", size_t{0}),
                              partner.empty() ? "-" : label(partner).c_str(), j.value("exchange_s", 0.0) * 1000,
                              group.size() + 1);
                }
              } else if (ev == "state_sync") {
                std::printf("%-6s state sync from %s: outer step %lld, val loss %.4f -> %.4f\n", c.name.c_str(),
                            label(j.value("peer", "")).c_str(), static_cast<long long>(j.value("outer_step", 0)),
                            j.value("val_loss_before", 0.0), j.value("val_loss_after", 0.0));
                c.notes.push_back("state sync from " + label(j.value("peer", "")));
                c.curve.emplace_back(static_cast<double>(j.value("inner_step", 0)), j.value("val_loss_after", 0.0));
              } else if (ev == "refused" || ev == "state_sync_failed") {
                std::printf("%-6s %s %s: %s\n", c.name.c_str(), ev.c_str(), label(j.value("peer", "")).c_str(),
                            j.value("why", "").c_str());
              } else if (ev == "done") {
                c.last_val = j.value("val_loss", c.last_val);
                std::printf("%-6s done at step %lld\n", c.name.c_str(), static_cast<long long>(j.value("inner_step", 0)));
              }
              std::fflush(stdout);
            };

            // Pump every child's stdout until all have exited.
            bool forwarded_stop = false;
            while (true) {
              if (g_demo_stop && !forwarded_stop) {
                std::printf("stopping the nodes (they checkpoint first)...\n");
                kill_all();
                forwarded_stop = true;
              }
              std::vector<pollfd> fds;
              std::vector<Child*> who;
              for (auto& k : kids)
                if (k->out_fd >= 0) {
                  fds.push_back({k->out_fd, POLLIN, 0});
                  who.push_back(k.get());
                }
              if (fds.empty()) break;
              ::poll(fds.data(), fds.size(), 200);
              for (size_t i = 0; i < fds.size(); ++i)
                if (fds[i].revents)
                  for (const auto& line : read_lines(*who[i])) handle(*who[i], line);
            }
            bool all_ok = true;
            for (auto& k : kids) {
              ::waitpid(k->pid, &k->status, 0);
              k->exited = true;
              if (!WIFEXITED(k->status) || WEXITSTATUS(k->status) != 0) {
                all_ok = false;
                std::printf("%s exited abnormally (status %d); see %s\n", k->name.c_str(), k->status,
                            (dir / k->name / "log.txt").c_str());
              }
            }

            // Summary.
            std::printf("\n%-6s %-22s %9s %5s  %-34s %s\n", "node", "val loss before -> after", "exchanges", "solo",
                        "partners (times mixed)", "wire out: compressed / raw fp32");
            json summary = {{"run_id", run_id}, {"nodes", json::array()}};
            uint64_t total_out = 0, total_raw = 0;
            std::vector<ChartSeries> series;
            bool all_fell = true;
            for (auto& k : kids) {
              std::string partners;
              for (const auto& [p, n] : k->partners) partners += label(p) + " x" + std::to_string(n) + " ";
              char loss[64];
              std::snprintf(loss, sizeof loss, "%.4f -> %.4f", k->first_val, k->last_val);
              std::printf("%-6s %-22s %9lld %5lld  %-34s %s / %s\n", k->name.c_str(), loss,
                          static_cast<long long>(k->exchanges), static_cast<long long>(k->solo), partners.c_str(),
                          mb(static_cast<double>(k->bytes_out)).c_str(), mb(static_cast<double>(k->raw_out)).c_str());
              total_out += k->bytes_out;
              total_raw += k->raw_out;
              if (!(k->last_val < k->first_val)) all_fell = false;
              json partners_json = json::object();
              for (const auto& [p, n] : k->partners) partners_json[label(p)] = n;
              summary["nodes"].push_back({{"name", k->name}, {"peer", k->peer}, {"val_loss_before", k->first_val},
                                          {"val_loss_after", k->last_val}, {"exchanges", k->exchanges},
                                          {"solo_steps", k->solo}, {"partners", partners_json},
                                          {"bytes_out", k->bytes_out}, {"raw_fp32_bytes", k->raw_out},
                                          {"tokens_per_s_mean", mean(k->tokens_per_s)},
                                          {"mean_group", mean(k->group_sizes)},
                                          {"exchange_s_median", median(k->exchange_s)},
                                          {"payload_bytes", k->payload_bytes}, {"raw_payload_bytes", k->raw_payload},
                                          {"curve", k->curve}});
              series.push_back({k->name, k->curve});
            }
            std::printf("wire total: %s sent, %s as raw fp32 (%.1fx smaller)\n", mb(static_cast<double>(total_out)).c_str(),
                        mb(static_cast<double>(total_raw)).c_str(),
                        total_out > 0 ? static_cast<double>(total_raw) / static_cast<double>(total_out) : 0.0);
            const double entropy = trainer::bits_to_nats(trainer::unigram_entropy_bits(*corpus));
            std::printf("unigram entropy of the corpus: %.4f nats (a model that ignores context)\n", entropy);
            summary["unigram_entropy_nats"] = entropy;
            if (Status st = write_file_durably(dir / "summary.json", as_bytes(summary.dump(2) + "\n"), {}); !st.ok()) std::printf("could not write the summary: %s\n", st.to_string().c_str());
            ChartOptions co;
            co.title = "validation loss of " + std::to_string(f->peers) + " NoLoCo nodes";
            co.x_label = "inner step";
            co.y_label = "validation loss (nats)";
            const fs::path png = dir / "loss_curves.png";
            if (Status st = write_line_chart_png(png.string(), series, co); !st.ok())
              std::printf("could not write the chart: %s\n", st.to_string().c_str());
            else
              std::printf("loss curves: %s\nsummary: %s\n", png.c_str(), (dir / "summary.json").c_str());
            if (!all_ok) return 1;
            if (!all_fell && !g_demo_stop) {
              std::printf("a node's validation loss did not fall\n");
              return 1;
            }
            return 0;
          }};
}

}  // namespace noloco::cli
