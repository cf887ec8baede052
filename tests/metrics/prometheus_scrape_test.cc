// End to end: a real `noloco run --metrics 127.0.0.1:0` scraped every second by a real Prometheus
// server (Debian package `prometheus`, installed by tools/setup.sh), then queried through its HTTP
// API. Both listen on loopback only; Prometheus' data dir is inside a temp dir removed at the end.
// Waits poll with a generous limit that only guards against a hang; what is asserted is that the
// values Prometheus returns are values the node itself reported in its JSON events.
#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>

#include <cctype>
#include <cmath>
#include <fstream>
#include <regex>
#include <sstream>

#include "node_proc.h"
#include "node_test_util.h"

using namespace noloco::test;
using json = nlohmann::json;

namespace {

std::string find_on_path(const std::string& name) {
  const char* path = std::getenv("PATH");
  std::stringstream dirs(path ? path : "");
  for (std::string dir; std::getline(dirs, dir, ':');) {
    const std::string full = dir + "/" + name;
    if (!dir.empty() && access(full.c_str(), X_OK) == 0) return full;
  }
  return {};
}

uint16_t free_loopback_port() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  close(fd);
  return ntohs(a.sin_port);
}

// GET http://127.0.0.1:port/target as HTTP/1.0: the body, or "" when nothing answers.
std::string http_get(uint16_t port, const std::string& target) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  timeval guard{30, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &guard, sizeof guard);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  std::string out;
  if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0) {
    const std::string req = "GET " + target + " HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
    send(fd, req.data(), req.size(), MSG_NOSIGNAL);
    char buf[4096];
    for (ssize_t n; (n = recv(fd, buf, sizeof buf, 0)) > 0;) out.append(buf, static_cast<size_t>(n));
  }
  close(fd);
  const size_t body = out.find("\r\n\r\n");
  return body == std::string::npos ? std::string() : out.substr(body + 4);
}

// The node's "metrics at http://HOST:PORT/metrics" line from its log, waited for.
std::string metrics_address(const std::string& log_path, NodeProc& node) {
  const std::regex line("metrics at http://([0-9.]+:[0-9]+)/metrics");
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  while (std::chrono::steady_clock::now() < until && !node.exited()) {
    std::ifstream f(log_path);
    std::stringstream text;
    text << f.rdbuf();
    std::smatch m;
    const std::string s = text.str();
    if (std::regex_search(s, m, line)) return m[1];
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return {};
}

// A `prometheus` server process, stopped (SIGTERM, then SIGKILL) by the destructor.
struct PrometheusProc {
  pid_t pid = -1;
  PrometheusProc(const std::string& bin, const std::vector<std::string>& args, const std::string& log_path) {
    pid = fork();
    if (pid == 0) {
      const int fd = open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
      dup2(fd, 1);
      dup2(fd, 2);
      std::vector<std::string> copy = args;
      std::vector<char*> argv{const_cast<char*>(bin.c_str())};
      for (auto& a : copy) argv.push_back(a.data());
      argv.push_back(nullptr);
      execv(bin.c_str(), argv.data());
      _exit(127);
    }
  }
  ~PrometheusProc() {
    if (pid <= 0) return;
    ::kill(pid, SIGTERM);
    int st = 0;
    for (int i = 0; i < 300; ++i) {
      if (waitpid(pid, &st, WNOHANG) == pid) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    ::kill(pid, SIGKILL);
    waitpid(pid, &st, 0);
  }
};

std::string url_encode(const std::string& s) {
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '_' || c == '-' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      char buf[4];
      std::snprintf(buf, sizeof buf, "%%%02X", c);
      out += buf;
    }
  }
  return out;
}

json query_api(uint16_t port, const std::string& promql) {
  return json::parse(http_get(port, "/api/v1/query?query=" + url_encode(promql)), nullptr, false);
}

// One instant-vector query: the single series' value and labels, or nullopt while there is none.
struct Sample {
  double value = 0;
  json labels;
};
std::optional<Sample> query(uint16_t port, const std::string& promql) {
  const json r = query_api(port, promql);
  if (r.is_discarded() || r.value("status", "") != "success") return std::nullopt;
  const json& res = r["data"]["result"];
  if (!res.is_array() || res.size() != 1) return std::nullopt;
  return Sample{std::stod(res[0]["value"][1].get<std::string>()), res[0]["metric"]};
}

}  // namespace

TEST_CASE("metrics: Prometheus scrapes noloco run and a PromQL query returns the node's outer step",
          "[prometheus]") {
  const std::string prometheus = find_on_path("prometheus");
  if (prometheus.empty())
    FAIL("the `prometheus` binary is not on PATH: run tools/setup.sh (it installs the Debian package prometheus)");

  TempDir t;
  RunResult init = run_noloco({"init-run", "--out", t.sub("manifest.json"), "--steps", "100000", "--H", "5",
                               "--batch", "4"});
  REQUIRE(init.exit_code == 0);
  NodeProc node({"run", "--db", t.sub("db"), "--key", t.sub("key"), "--json", "--threads", "1", "--manifest",
                 t.sub("manifest.json"), "--eval-windows", "8", "--eval-every", "1000", "--metrics", "127.0.0.1:0"},
                t.sub("node.log"));
  const std::string target = metrics_address(t.sub("node.log"), node);
  REQUIRE(!target.empty());

  const uint16_t web_port = free_loopback_port();
  {
    std::ofstream cfg(t.sub("prometheus.yml"));
    cfg << "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
        << "scrape_configs:\n  - job_name: noloco\n    static_configs:\n      - targets: ['" << target << "']\n";
  }
  PrometheusProc prom(prometheus,
                      {"--config.file=" + t.sub("prometheus.yml"), "--storage.tsdb.path=" + t.sub("prometheus-data"),
                       "--web.listen-address=127.0.0.1:" + std::to_string(web_port), "--log.level=warn"},
                      t.sub("prometheus.log"));
  REQUIRE(prom.pid > 0);

  // Until Prometheus has a scrape from after the node's second outer step (a guard, not a timing).
  std::optional<Sample> outer, inner, loss, up;
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(400);
  while (std::chrono::steady_clock::now() < until && !node.exited()) {
    outer = query(web_port, "noloco_node_outer_step");
    if (outer && outer->value >= 2) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
  }
  INFO("prometheus log: " << t.sub("prometheus.log") << ", node log: " << t.sub("node.log"));
  REQUIRE(outer);
  REQUIRE(outer->value >= 2);
  inner = query(web_port, "noloco_node_inner_step");
  loss = query(web_port, "noloco_train_loss");
  up = query(web_port, "up");
  // Every expression of the Grafana dashboard is valid PromQL, and the node and training panels
  // have data (exchange and checkpoint series may not exist yet in a short solo run).
  std::ifstream dash_file(std::string(NOLOCO_SOURCE_DIR) + "/docs/grafana/noloco-node.json");
  const json dash = json::parse(dash_file, nullptr, false);
  REQUIRE(!dash.is_discarded());
  int exprs = 0;
  for (const auto& panel : dash["panels"]) {
    for (const auto& tgt : panel["targets"]) {
      std::string expr = tgt["expr"];
      expr = std::regex_replace(expr, std::regex("\\$__rate_interval"), "1m");
      expr = std::regex_replace(expr, std::regex("\\$instance"), ".*");
      const json r = query_api(web_port, expr);
      INFO(expr << " -> " << r.dump());
      CHECK(r.value("status", "") == "success");
      if (expr.find("noloco_train_") != std::string::npos || expr.find("noloco_node_") != std::string::npos)
        CHECK((r.contains("data") && !r["data"]["result"].empty()));
      ++exprs;
    }
  }
  CHECK(exprs >= 9);
  node.kill(SIGTERM);
  CHECK(node.wait_exit() == 0);

  CHECK(outer->labels["job"] == "noloco");
  CHECK(outer->labels["instance"] == target);
  REQUIRE(up);
  CHECK(up->value == 1);
  // Everything Prometheus holds was scraped before the node stopped: the outer step it reports is
  // one the node announced in an `outer` event, and no step count passes the node's final ones.
  const auto events = node.events();
  const json done = node.events_of("done").at(0);
  bool announced = false;
  for (const auto& e : events)
    if (e.value("event", "") == "outer" && e.value("outer_step", -1.0) == outer->value) announced = true;
  CHECK(announced);
  CHECK(outer->value <= done["outer_step"].get<double>());
  REQUIRE(inner);
  CHECK(inner->value >= outer->value * 5);  // H = 5 inner steps per outer step, scraped no earlier
  CHECK(inner->value <= done["inner_step"].get<double>());
  REQUIRE(loss);
  CHECK(std::isfinite(loss->value));
  CHECK(loss->value > 0);
}
