// What a running node is doing now, for `GET /status` of `noloco run --metrics ADDR` and
// `noloco status --node ADDR` (docs/status.md). Sans-IO: the node's JSON events (docs/events.md)
// and progress samples go in, each stamped with the wall-clock time the caller read; a JSON
// snapshot comes out. Nothing here reads a clock, a socket or a file, so tests feed it by hand.
// The feeds come from the training thread and the checkpoint writer's thread, the snapshot is
// taken on the HTTP server's thread: every call takes the model's lock.
#pragma once

#include <cstdint>
#include <deque>
#include <mutex>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "trainer/node/nat_view.h"

namespace noloco::node {
struct NodeProgress;
}

namespace noloco::cli {

class NodeStatusModel {
 public:
  static constexpr size_t kRecentPartners = 8;  // partners of the last mixed outer steps kept

  void on_event(const std::string& json_line, int64_t now_unix_ms);  // unknown kinds are ignored
  void on_progress(const node::NodeProgress& p, int64_t now_unix_ms);
  // The snapshot (fields: docs/status.md), with `now_unix_ms` so a reader can tell ages.
  std::string to_json(int64_t now_unix_ms) const;

  struct Exchange {
    int64_t outer_step = 0, unix_ms = 0, failures = 0;
    std::string partner;
    std::vector<std::string> group;
    double exchange_s = 0;
  };
  struct Failure {
    std::string kind, peer, why;
    int64_t outer_step = 0, unix_ms = 0;
  };
  struct Checkpoint {
    int64_t id = 0, outer_step = 0, inner_step = 0, unix_ms = 0;
  };

 private:
  void on_outer(const nlohmann::json& j, int64_t now);  // mu_ held
  void fail(std::string kind, std::string peer, std::string why, int64_t now);  // mu_ held

  mutable std::mutex mu_;
  std::string state_ = "starting";  // starting, running, finished, stopped
  std::string peer_, run_id_, addr_, method_, phase_;
  bool resumed_ = false;
  int64_t started_ms_ = 0, progress_ms_ = 0;
  int64_t inner_ = 0, outer_ = 0;
  double loss_ = 0, lr_ = 0, val_loss_ = 0, tokens_per_s_ = 0;
  bool has_val_loss_ = false;
  size_t live_peers_ = 0, connections_ = 0;
  node::NatView nat_;
  int64_t mixed_ = 0, solo_ = 0, partner_failures_ = 0, refused_ = 0, stale_ = 0, banned_ = 0;
  int64_t syncs_ = 0, sync_failures_ = 0, checkpoints_ = 0, checkpoint_failures_ = 0;
  bool has_exchange_ = false, has_checkpoint_ = false, has_failure_ = false;
  Exchange last_exchange_;
  std::deque<Exchange> recent_;  // newest last, at most kRecentPartners
  Checkpoint last_checkpoint_;
  Failure last_failure_;
};

}  // namespace noloco::cli
