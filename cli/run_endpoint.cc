// RunEndpoint (run_endpoint.h).
#include "cli/run_endpoint.h"

#include <unistd.h>

#include <chrono>
#include <cstdio>

#include <nlohmann/json.hpp>

#include "cli/run_metrics.h"
#include "cli/status_address.h"
#include "cli/status_model.h"
#include "common/metrics_http.h"
#include "p2p/metrics_server.h"

namespace noloco::cli {
namespace {

int64_t wall_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

Result<std::unique_ptr<RunEndpoint>> RunEndpoint::start(const std::string& address, const std::string& db) {
  NOLOCO_ASSIGN_OR_RETURN(metrics::ListenAddress parsed, metrics::parse_listen_address(address));
  std::unique_ptr<RunEndpoint> e(new RunEndpoint());
  e->db_ = db;
  NOLOCO_ASSIGN_OR_RETURN(auto m, RunMetrics::create());
  e->metrics_ = std::move(m);
  e->model_ = std::make_shared<NodeStatusModel>();
  std::vector<metrics::HttpRoute> routes{
      {"/metrics", metrics::kExpositionContentType, [m = e->metrics_] { return m->render(); }},
      {"/status", "application/json", [s = e->model_] { return s->to_json(wall_ms()) + "\n"; }}};
  NOLOCO_ASSIGN_OR_RETURN(e->server_, p2p::MetricsServer::start(address, std::move(routes)));
  if (!metrics::is_loopback_host(parsed.host))
    std::fprintf(stderr,
                 "noloco run: warning: --metrics %s is not a loopback address: anyone who can reach it sees this "
                 "run's metrics and status (peer ids, partners, losses)\n",
                 address.c_str());
  std::fprintf(stderr, "noloco run: metrics at http://%s/metrics, status at http://%s/status\n",
               e->server_->bound_address().c_str(), e->server_->bound_address().c_str());
  return e;
}

RunEndpoint::~RunEndpoint() { stop(); }

void RunEndpoint::on_event(const std::string& line) {
  metrics_->on_event(line);
  model_->on_event(line, wall_ms());
  if (address_written_) return;
  const auto j = nlohmann::json::parse(line, nullptr, false);
  if (j.is_discarded() || !j.is_object() || j.value("event", "") != "start") return;
  // The store exists now: tell `noloco status --db` where to look. Failing to is not fatal.
  const StatusAddress a{server_->bound_address(), static_cast<int64_t>(::getpid()), j.value("peer", "")};
  if (Status st = write_status_address(db_, a); !st.ok())
    std::fprintf(stderr, "noloco run: warning: cannot write %s (noloco status --db will not find this node): %s\n",
                 status_address_path(db_).c_str(), st.to_string().c_str());
  else
    address_written_ = true;
}

void RunEndpoint::on_progress(const node::NodeProgress& p) {
  metrics_->on_progress(p);
  model_->on_progress(p, wall_ms());
}

std::string RunEndpoint::bound_address() const { return server_->bound_address(); }

void RunEndpoint::stop() {
  if (server_) server_->stop();
  if (address_written_.exchange(false)) remove_status_address(db_);
}

}  // namespace noloco::cli
