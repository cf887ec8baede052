// NodeStatusModel (status_model.h): which event moves which part of the snapshot.
#include "cli/status_model.h"

#include <nlohmann/json.hpp>

#include "trainer/node/node_run.h"

namespace noloco::cli {
namespace {

using json = nlohmann::json;
using ojson = nlohmann::ordered_json;

ojson exchange_json(const NodeStatusModel::Exchange& e) {
  return {{"outer_step", e.outer_step}, {"outcome", e.group.empty() ? "solo" : "mixed"},
          {"partner", e.partner},       {"group", e.group},
          {"exchange_s", e.exchange_s}, {"failures", e.failures},
          {"unix_ms", e.unix_ms}};
}

std::string tries(int64_t n) { return std::to_string(n) + (n == 1 ? " partner try" : " partner tries"); }

std::string solo_reason(const std::string& method, int64_t failures) {
  if (method == "diloco") return "the all-reduce did not complete within the exchange budget: solo outer step";
  return tries(failures) + " failed, refused or timed out: solo outer step (each reason is in the node's log)";
}

}  // namespace

void NodeStatusModel::fail(std::string kind, std::string peer, std::string why, int64_t now) {
  has_failure_ = true;
  last_failure_ = Failure{std::move(kind), std::move(peer), std::move(why), outer_, now};
}

void NodeStatusModel::on_outer(const json& j, int64_t now) {
  // Everything is read before anything is kept, so an event with a field of the wrong type
  // (which throws here) changes nothing.
  Exchange e;
  e.outer_step = j.at("outer_step").get<int64_t>();
  e.unix_ms = now;
  e.partner = j.value("partner", "");
  e.group = j.at("group").get<std::vector<std::string>>();
  e.exchange_s = j.value("exchange_s", 0.0);
  e.failures = j.value("failures", int64_t{0});
  const std::string method = j.value("method", method_);
  const int64_t inner = j.value("inner_step", inner_);
  const double loss = j.value("loss", loss_), tokens = j.value("tokens_per_s", tokens_per_s_);
  const size_t live = j.value("live_peers", live_peers_);
  const bool has_val = j.contains("val_loss");
  const double val = has_val ? j["val_loss"].get<double>() : val_loss_;

  method_ = method;
  outer_ = e.outer_step;
  inner_ = inner;
  loss_ = loss;
  tokens_per_s_ = tokens;
  live_peers_ = live;
  if (has_val) {
    val_loss_ = val;
    has_val_loss_ = true;
  }
  partner_failures_ += e.failures;
  if (e.group.empty()) {
    ++solo_;
    if (e.failures > 0) fail("exchange", "", solo_reason(method_, e.failures), now);
  } else {
    ++mixed_;
    recent_.push_back(e);
    if (recent_.size() > kRecentPartners) recent_.pop_front();
    if (e.failures > 0)
      fail("exchange", e.partner, tries(e.failures) + " failed before this partner answered", now);
  }
  has_exchange_ = true;
  last_exchange_ = std::move(e);
}

void NodeStatusModel::on_event(const std::string& line, int64_t now) {
  const json j = json::parse(line, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return;
  std::lock_guard lock(mu_);
  try {
    const std::string ev = j.value("event", "");
    if (ev == "start") {
      state_ = "running";
      started_ms_ = now;
      peer_ = j.value("peer", "");
      run_id_ = j.value("run_id", "");
      addr_ = j.value("addr", "");
      resumed_ = j.value("resumed", false);
      inner_ = j.value("inner_step", int64_t{0});
      outer_ = j.value("outer_step", int64_t{0});
      if (j.contains("val_loss")) {
        val_loss_ = j["val_loss"].get<double>();
        has_val_loss_ = true;
      }
    } else if (ev == "outer") {
      on_outer(j, now);
    } else if (ev == "refused") {
      ++refused_;
      fail("refused", j.value("peer", ""), "refused its payload: " + j.value("why", ""), now);
    } else if (ev == "banned") {
      ++banned_;
      fail("banned", j.value("peer", ""), "banned: " + j.value("why", ""), now);
    } else if (ev == "stale") {
      ++stale_;
    } else if (ev == "state_sync") {
      const int64_t outer = j.value("outer_step", outer_), inner = j.value("inner_step", inner_);
      const bool has_val = j.contains("val_loss_after");
      const double val = has_val ? j["val_loss_after"].get<double>() : val_loss_;
      ++syncs_;
      outer_ = outer;
      inner_ = inner;
      if (has_val) {
        val_loss_ = val;
        has_val_loss_ = true;
      }
    } else if (ev == "state_sync_failed") {
      ++sync_failures_;
      fail("state_sync", j.value("peer", ""), "state sync failed: " + j.value("why", ""), now);
    } else if (ev == "checkpoint") {
      ++checkpoints_;
      has_checkpoint_ = true;
      last_checkpoint_ = {j.value("id", int64_t{0}), j.value("outer_step", int64_t{0}),
                          j.value("inner_step", int64_t{0}), now};
    } else if (ev == "checkpoint_failed") {
      ++checkpoint_failures_;
      fail("checkpoint", "", "checkpoint of outer step " + std::to_string(j.value("outer_step", int64_t{0})) +
                                 " failed: " + j.value("why", ""), now);
    } else if (ev == "done") {
      state_ = j.value("interrupted", false) ? "stopped" : "finished";
      if (j.contains("val_loss")) {
        val_loss_ = j["val_loss"].get<double>();
        has_val_loss_ = true;
      }
      phase_ = "finish";
    }
  } catch (const json::exception&) {
    // A field of an unexpected type: the rest of that event is left out of the snapshot.
  }
}

void NodeStatusModel::on_progress(const node::NodeProgress& p, int64_t now) {
  std::lock_guard lock(mu_);
  if (state_ == "starting" || state_ == "running") phase_ = p.phase;
  progress_ms_ = now;
  inner_ = p.inner_step;
  outer_ = p.outer_step;
  loss_ = p.loss;
  lr_ = p.lr;
  live_peers_ = p.live_peers;
  connections_ = p.connections;
  nat_ = p.nat;
}

std::string NodeStatusModel::to_json(int64_t now) const {
  std::lock_guard lock(mu_);
  ojson j;
  j["state"] = state_;
  j["now_unix_ms"] = now;
  j["peer"] = peer_;
  j["run_id"] = run_id_;
  j["addr"] = addr_;
  j["method"] = method_.empty() ? ojson() : ojson(method_);
  j["resumed"] = resumed_;
  j["started_unix_ms"] = started_ms_;
  j["phase"] = phase_;
  j["inner_step"] = inner_;
  j["outer_step"] = outer_;
  j["loss"] = loss_;
  j["lr"] = lr_;
  j["val_loss"] = has_val_loss_ ? ojson(val_loss_) : ojson();
  j["tokens_per_s"] = tokens_per_s_;
  j["progress_unix_ms"] = progress_ms_;
  j["peers"] = {{"live", live_peers_}, {"connections", connections_}};
  j["nat"] = {{"reachability", nat_.reachability},
              {"basis", nat_.basis},
              {"why", nat_.why},
              {"relay_reservations", nat_.reservations},
              {"paths", {{"direct", nat_.direct}, {"relayed", nat_.relayed}, {"hole_punched", nat_.hole_punched}}},
              {"hole_punches",
               {{"attempts", nat_.punch_attempts}, {"succeeded", nat_.punch_succeeded}, {"failed", nat_.punch_failed}}}};
  j["last_exchange"] = has_exchange_ ? exchange_json(last_exchange_) : ojson();
  j["recent_partners"] = ojson::array();
  for (const auto& e : recent_) j["recent_partners"].push_back(exchange_json(e));
  j["last_checkpoint"] = has_checkpoint_ ? ojson{{"id", last_checkpoint_.id},
                                                 {"outer_step", last_checkpoint_.outer_step},
                                                 {"inner_step", last_checkpoint_.inner_step},
                                                 {"unix_ms", last_checkpoint_.unix_ms}}
                                         : ojson();
  j["last_failure"] = has_failure_ ? ojson{{"kind", last_failure_.kind},
                                           {"peer", last_failure_.peer},
                                           {"why", last_failure_.why},
                                           {"outer_step", last_failure_.outer_step},
                                           {"unix_ms", last_failure_.unix_ms}}
                                   : ojson();
  j["counts"] = {{"mixed", mixed_},
                 {"solo", solo_},
                 {"partner_failures", partner_failures_},
                 {"refused", refused_},
                 {"stale", stale_},
                 {"banned", banned_},
                 {"state_syncs", syncs_},
                 {"state_sync_failures", sync_failures_},
                 {"checkpoints", checkpoints_},
                 {"checkpoint_failures", checkpoint_failures_}};
  return j.dump();
}

}  // namespace noloco::cli
