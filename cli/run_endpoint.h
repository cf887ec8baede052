// The HTTP endpoint of `noloco run --metrics ADDR`: GET /metrics (Prometheus, docs/metrics.md)
// and GET /status (what the node is doing now, docs/status.md), both fed from the node's events
// and progress samples, plus the address file that lets `noloco status --db DIR` find it.
#pragma once

#include <atomic>
#include <memory>
#include <string>

#include "common/status.h"

namespace noloco::p2p {
class MetricsServer;
}
namespace noloco::node {
struct NodeProgress;
}

namespace noloco::cli {

class RunMetrics;
class NodeStatusModel;

class RunEndpoint {
 public:
  // Listens on `address` (HOST:PORT); warns on stderr when it is not a loopback address (the
  // endpoint tells anyone who can reach it about the run). `db`: where the address file goes
  // once the node has started (its store exists then).
  static Result<std::unique_ptr<RunEndpoint>> start(const std::string& address, const std::string& db);
  ~RunEndpoint();

  // Thread-safe, like the sinks that call them.
  void on_event(const std::string& json_line);
  void on_progress(const node::NodeProgress& p);
  std::string bound_address() const;
  // Closes the endpoint and removes the address file. Idempotent.
  void stop();

 private:
  RunEndpoint() = default;

  std::string db_;
  std::shared_ptr<RunMetrics> metrics_;
  std::shared_ptr<NodeStatusModel> model_;
  std::unique_ptr<p2p::MetricsServer> server_;
  std::atomic<bool> address_written_{false};  // set on the `start` event, read in stop()
};

}  // namespace noloco::cli
