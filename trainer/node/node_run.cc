// `noloco run`'s loop (node_run.h): the node core decides (node_core.h), the driver's adapters
// carry it out with the replica, the network and the store (node_driver.h).
#include "trainer/node/node_run.h"

#include <torch/torch.h>

#include "trainer/node/node_core.h"
#include "trainer/node/node_driver.h"
#include "trainer/node/node_setup.h"

namespace noloco::node {
namespace {

const char* phase_name(Next::Kind k) {
  switch (k) {
    case Next::Kind::kWaitPeers: return "wait_peers";
    case Next::Kind::kStateSync: return "state_sync";
    case Next::Kind::kAdoptState: return "adopt_state";
    case Next::Kind::kTrainPhase: return "train";
    case Next::Kind::kVerify: return "verify";
    case Next::Kind::kCall: return "call";
    case Next::Kind::kAllReduce: return "allreduce";
    case Next::Kind::kApplyOuter: return "apply_outer";
    case Next::Kind::kFinish: return "finish";
  }
  return "unknown";
}

}  // namespace

double exchange_budget_for(const NodeOptions& o, const std::string& method, uint64_t wire_bytes) {
  if (o.exchange_budget_s > 0) return o.exchange_budget_s;
  const double base = method == "diloco" ? 300.0 : 10.0;
  return base + static_cast<double>(wire_bytes) * 8.0 / kBudgetLinkBitsPerS;
}

uint64_t outer_step_wire_bytes(const std::string& method, const std::string& codec, const std::string& wire_form,
                               uint64_t numel) {
  // Bytes per value, with int8/int4's 4-byte scale per 128-value block rounded up.
  const double per_value = codec == "fp32" ? 4.0 : codec == "int8" ? 1.04 : codec == "int4" ? 0.54 : 2.0;
  const double tensors = method == "diloco" ? 2.0 : (wire_form == "theta" ? 1.0 : 2.0);
  return static_cast<uint64_t>(per_value * tensors * static_cast<double>(numel));
}

Status NodeOptions::validate() const {
  if (db.empty()) return invalid_argument("--db is required");
  if (!identity) return invalid_argument("no identity (--key)");
  if (!(slowdown >= 1.0)) return invalid_argument("--slowdown must be >= 1");
  if (auto r = parse_reachability_mode(reachability); !r.ok()) return r.status();
  if (checkpoint_every < 0) return invalid_argument("--checkpoint-every must be >= 0");
  if (keep_last == 0) return invalid_argument("--keep-last must be at least 1");
  if (!(exchange_budget_s >= 0)) return invalid_argument("--exchange-timeout must be positive (0: the method's default)");
  if (exchange_tries < 1) return invalid_argument("--exchange-tries must be at least 1");
  if (min_peers < 0) return invalid_argument("--min-peers must be >= 0");
  if (join_wait_s < 0 || linger_s < 0) return invalid_argument("--join-wait and --linger must be >= 0");
  if (resync_behind < 1 || max_staleness < 0) return invalid_argument("bad --resync-behind or --max-staleness");
  if (eval_windows < 1 || eval_every < 1) return invalid_argument("--eval-windows and --eval-every must be >= 1");
  if (threads < 0) return invalid_argument("--threads must be >= 0");
  return Status::Ok();
}

Result<NodeSummary> run_node(const NodeOptions& o, const NodeSinks& sinks, const std::atomic<bool>* stop) {
  NOLOCO_RETURN_IF_ERROR(o.validate());
  try {
    NOLOCO_ASSIGN_OR_RETURN(std::unique_ptr<NodeParts> parts, open_node(o, sinks));
    NodeDriver driver(*parts, o, sinks, stop);
    NodeCore core(driver.core_config());
    driver.emit_start();
    Step s = core.on_start(driver.now(), parts->replica->inner_step(), parts->replica->outer_step(), driver.live());
    while (true) {
      NOLOCO_RETURN_IF_ERROR(driver.apply_effects(s.effects));
      const Next next = std::move(s.next);
      driver.progress(phase_name(next.kind));
      switch (next.kind) {
        case Next::Kind::kWaitPeers:
          s = driver.wait_peers(core, next.until);
          break;
        case Next::Kind::kStateSync:
          s = driver.state_sync(core, next.peer);
          break;
        case Next::Kind::kAdoptState:
          s = driver.adopt_state_from(core);
          break;
        case Next::Kind::kTrainPhase: {
          NOLOCO_ASSIGN_OR_RETURN(s, driver.train_phase(core));
          break;
        }
        case Next::Kind::kVerify:
          s = driver.verify(core, next.slot, next.judge_only);
          break;
        case Next::Kind::kCall:
          s = driver.call(core, next.peer, next.until);
          break;
        case Next::Kind::kAllReduce:
          s = driver.allreduce(core, next.members, next.until);
          break;
        case Next::Kind::kApplyOuter: {
          NOLOCO_ASSIGN_OR_RETURN(s, driver.apply_outer(core, next));
          break;
        }
        case Next::Kind::kFinish:
          return driver.finish(core, next.interrupted);
      }
    }
  } catch (const c10::Error& e) {
    return internal_error(std::string("node: ") + e.what_without_backtrace());
  } catch (const std::exception& e) {
    return internal_error(std::string("node: ") + e.what());
  }
}

}  // namespace noloco::node
