// RunMetrics (run_metrics.h): which event field or progress value feeds which metric. The table
// of docs/metrics.md lists the same names, types and units.
#include "cli/run_metrics.h"

#include <nlohmann/json.hpp>

#include "trainer/node/node_run.h"

namespace noloco::cli {
namespace {

using json = nlohmann::json;
using metrics::Type;

constexpr const char* kPhases[] = {"wait_peers", "state_sync", "adopt_state", "train",  "verify",
                                   "call",       "allreduce",  "apply_outer", "finish"};

std::string snake(const std::string& camel) {
  std::string out;
  for (char c : camel) {
    if (c >= 'A' && c <= 'Z') {
      if (!out.empty()) out += '_';
      out += static_cast<char>(c - 'A' + 'a');
    } else {
      out += c;
    }
  }
  return out;
}

void set(metrics::Family* f, double v, const std::vector<std::string>& labels = {}) {
  if (auto* s = f->with(labels)) s->set(v);
}
void add(metrics::Family* f, double v, const std::vector<std::string>& labels = {}) {
  if (auto* s = f->with(labels)) s->add(v);
}

}  // namespace

std::string refusal_class(const std::string& why) {
  const std::string code = why.substr(0, why.find(':'));
  for (int c = static_cast<int>(StatusCode::kInvalidArgument); c <= static_cast<int>(StatusCode::kInternal); ++c)
    if (code == status_code_name(static_cast<StatusCode>(c))) return snake(code);
  return "other";
}

Result<std::unique_ptr<RunMetrics>> RunMetrics::create() {
  std::unique_ptr<RunMetrics> m(new RunMetrics());
  NOLOCO_RETURN_IF_ERROR(m->register_all());
  return m;
}

Status RunMetrics::register_all() {
  Status first;
  auto reg = [&](metrics::Family*& slot, Type t, const char* name, const char* help,
                 std::vector<std::string> labels = {}) {
    auto f = registry_.add(t, name, help, std::move(labels));
    if (!f.ok() && first.ok()) first = f.status();
    if (f.ok()) slot = *f;
  };
  const Type G = Type::kGauge, C = Type::kCounter;
  // node
  reg(info_, G, "noloco_node_info", "Always 1; the node's peer id and run id as labels.", {"peer", "run_id"});
  reg(inner_step_, G, "noloco_node_inner_step", "Inner (local optimizer) steps taken.");
  reg(outer_step_, G, "noloco_node_outer_step", "Outer steps taken.");
  reg(phase_, G, "noloco_node_phase", "1 for what the node is doing now, 0 for the other phases.", {"phase"});
  reg(live_peers_, G, "noloco_node_live_peers", "Peers in the live membership view.");
  reg(banned_, C, "noloco_node_peers_banned_total", "Peers banned for repeated bad payloads.");
  reg(state_syncs_, C, "noloco_node_state_syncs_total", "State downloads from a peer, by outcome (ok, failed).",
      {"outcome"});
  reg(params_, G, "noloco_model_parameters", "Number of model parameters.");
  // training
  reg(loss_, G, "noloco_train_loss", "Training loss of the last inner step, in nats per byte.");
  reg(val_loss_, G, "noloco_train_val_loss", "Last validation loss, in nats per byte.");
  reg(tokens_, G, "noloco_train_tokens_per_second", "Tokens per second over the last inner phase.");
  reg(lr_, G, "noloco_train_learning_rate", "Inner learning rate of the last inner step.");
  // exchange
  reg(exchanges_, C, "noloco_exchanges_total",
      "Outer steps by outcome: mixed (with at least one peer) or solo.", {"outcome"});
  reg(failures_, C, "noloco_exchange_failures_total", "Partner tries that failed, were refused or timed out.");
  reg(ex_last_s_, G, "noloco_exchange_last_seconds", "Seconds the last outer step was blocked exchanging.");
  reg(ex_s_, C, "noloco_exchange_seconds_total", "Seconds blocked exchanging (or in the all-reduce), summed.");
  reg(group_, G, "noloco_exchange_group_size", "Nodes mixed in the last outer step, this one included.");
  reg(payload_, G, "noloco_exchange_payload_bytes", "Size of this node's last encoded exchange payload.");
  reg(ex_bytes_, C, "noloco_exchange_bytes_total",
      "Bytes of the outer steps' own exchanges (NoLoCo payloads, DiLoCo ring), by direction.", {"direction"});
  reg(refused_, C, "noloco_exchange_refused_total", "Payloads refused, by the class of the reason.", {"reason"});
  reg(stale_, C, "noloco_exchange_stale_total", "Payloads dropped as too old, by how they came.", {"via"});
  // p2p
  reg(conns_, G, "noloco_p2p_connections", "Open p2p connections (upgrading and upgraded).");
  reg(proto_bytes_, C, "noloco_p2p_protocol_bytes_total",
      "Bytes of the exchange and state protocols above Noise and yamux, by protocol and direction.",
      {"protocol", "direction"});
  // store
  reg(cp_written_, C, "noloco_store_checkpoints_written_total", "Background checkpoints committed.");
  reg(cp_failed_, C, "noloco_store_checkpoint_failures_total", "Background checkpoints that could not be written.");
  reg(cp_last_, G, "noloco_store_last_checkpoint_outer_step", "Outer step held by the last committed checkpoint.");
  if (!first.ok()) return first;
  // Series that exist before their first event, so that rate() and dashboards see zeros.
  for (const char* o : {"mixed", "solo"}) add(exchanges_, 0, {o});
  for (const char* d : {"sent", "received"}) add(ex_bytes_, 0, {d});
  for (const char* p : kPhases) set(phase_, 0, {p});
  for (metrics::Family* f : {banned_, failures_, ex_s_, cp_written_, cp_failed_}) add(f, 0);
  return Status::Ok();
}

void RunMetrics::on_progress(const node::NodeProgress& p) {
  set(inner_step_, static_cast<double>(p.inner_step));
  set(outer_step_, static_cast<double>(p.outer_step));
  set(loss_, p.loss);
  set(lr_, p.lr);
  set(live_peers_, static_cast<double>(p.live_peers));
  set(conns_, static_cast<double>(p.connections));
  set(proto_bytes_, static_cast<double>(p.exchange_out), {"exchange", "sent"});
  set(proto_bytes_, static_cast<double>(p.exchange_in), {"exchange", "received"});
  set(proto_bytes_, static_cast<double>(p.state_out), {"state", "sent"});
  set(proto_bytes_, static_cast<double>(p.state_in), {"state", "received"});
  if (phase_now_ != p.phase) {
    if (!phase_now_.empty()) set(phase_, 0, {phase_now_});
    phase_now_ = p.phase;
    set(phase_, 1, {phase_now_});
  }
}

void RunMetrics::on_outer(const json& j) {
  // All or nothing: an event with a field of the wrong type moves no metric.
  if (!j.contains("group") || !j["group"].is_array()) return;
  for (const char* k : {"failures", "exchange_s", "bytes_out", "bytes_in", "payload_bytes", "tokens_per_s", "val_loss"})
    if (j.contains(k) && !j[k].is_number()) return;
  add(exchanges_, 1, {j.value("group", json::array()).empty() ? "solo" : "mixed"});
  add(failures_, j.value("failures", 0.0));
  set(ex_last_s_, j.value("exchange_s", 0.0));
  add(ex_s_, j.value("exchange_s", 0.0));
  set(group_, static_cast<double>(j.value("group", json::array()).size() + 1));
  set(payload_, j.value("payload_bytes", 0.0));
  add(ex_bytes_, j.value("bytes_out", 0.0), {"sent"});
  add(ex_bytes_, j.value("bytes_in", 0.0), {"received"});
  set(tokens_, j.value("tokens_per_s", 0.0));
  if (j.contains("val_loss")) set(val_loss_, j.value("val_loss", 0.0));
}

void RunMetrics::on_event(const std::string& line) {
  const json j = json::parse(line, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return;
  try {
    const std::string ev = j.value("event", "");
    if (ev == "start") {
      set(info_, 1, {j.value("peer", ""), j.value("run_id", "")});
      set(params_, j.value("params", 0.0));
      set(val_loss_, j.value("val_loss", 0.0));
    } else if (ev == "outer") {
      on_outer(j);
    } else if (ev == "refused") {
      add(refused_, 1, {refusal_class(j.value("why", ""))});
    } else if (ev == "stale") {
      add(stale_, 1, {j.value("via", "") == "partner" ? "partner" : "caller"});
    } else if (ev == "banned") {
      add(banned_, 1);
    } else if (ev == "state_sync") {
      add(state_syncs_, 1, {"ok"});
      set(val_loss_, j.value("val_loss_after", 0.0));
    } else if (ev == "state_sync_failed") {
      add(state_syncs_, 1, {"failed"});
    } else if (ev == "checkpoint") {
      add(cp_written_, 1);
      set(cp_last_, j.value("outer_step", 0.0));
    } else if (ev == "checkpoint_failed") {
      add(cp_failed_, 1);
    } else if (ev == "done") {
      set(val_loss_, j.value("val_loss", 0.0));
    }
  } catch (const json::exception&) {
    // A field of an unexpected type: that event is left out of the metrics.
  }
}

}  // namespace noloco::cli
