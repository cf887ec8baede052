// The metrics of `noloco run --metrics ADDR` (docs/metrics.md): a registry fed from the node's
// JSON events (docs/events.md) and from its progress samples (node::NodeProgress). Both feeds may
// come from different threads; updates are atomic.
#pragma once

#include <memory>
#include <string>

#include <nlohmann/json_fwd.hpp>

#include "common/metrics.h"
#include "common/status.h"

namespace noloco::node {
struct NodeProgress;
}

namespace noloco::cli {

class RunMetrics {
 public:
  static Result<std::unique_ptr<RunMetrics>> create();

  void on_event(const std::string& json_line);  // one `--json` event; unknown kinds are ignored
  void on_progress(const node::NodeProgress& p);
  std::string render() const { return registry_.render(); }

 private:
  RunMetrics() = default;
  Status register_all();
  void on_outer(const nlohmann::json& event);

  metrics::Registry registry_;
  // Families (owned by registry_), named after their metric without the noloco_ prefix.
  metrics::Family *info_ = nullptr, *inner_step_ = nullptr, *outer_step_ = nullptr, *phase_ = nullptr,
                  *live_peers_ = nullptr, *banned_ = nullptr, *state_syncs_ = nullptr, *params_ = nullptr;
  metrics::Family *loss_ = nullptr, *val_loss_ = nullptr, *tokens_ = nullptr, *lr_ = nullptr;
  metrics::Family *exchanges_ = nullptr, *failures_ = nullptr, *ex_last_s_ = nullptr, *ex_s_ = nullptr,
                  *group_ = nullptr, *payload_ = nullptr, *refused_ = nullptr, *stale_ = nullptr,
                  *ex_bytes_ = nullptr;
  metrics::Family *conns_ = nullptr, *proto_bytes_ = nullptr;
  metrics::Family *cp_written_ = nullptr, *cp_failed_ = nullptr, *cp_last_ = nullptr;
  std::string phase_now_;  // guarded by being written on the training thread only
};

// "Corrupt: bad checksum" -> "corrupt": the Status code of a refusal as a bounded label value
// (anything else: "other").
std::string refusal_class(const std::string& why);

}  // namespace noloco::cli
