// Event lines of the demo's nodes -> NodeState, and the progress lines printed along the way.
#include "cli/demo_progress.h"

#include <algorithm>

#include <nlohmann/json.hpp>

namespace noloco::cli {
namespace {

using json = nlohmann::json;

std::string tail6(const std::string& s) { return s.substr(s.size() > 6 ? s.size() - 6 : 0); }

}  // namespace

Progress::Progress(int64_t outer_total, std::FILE* out)
    : outer_total_(outer_total), print_every_(std::max<int64_t>(1, outer_total / 10)), out_(out) {}

double Progress::seconds() const {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
}

std::string Progress::label(const std::string& peer) const {
  auto it = name_of_.find(peer);
  return it != name_of_.end() ? it->second : tail6(peer);
}

void Progress::on_line(NodeState& c, const std::string& line) {
  auto j = json::parse(line, nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    if (c.addr.empty()) c.addr = line;
    return;
  }
  try {
    on_event(c, j.value("event", ""), j);
  } catch (const json::exception& e) {
    std::fprintf(out_, "%-6s skipped an unreadable event: %s\n", c.name.c_str(), e.what());
  }
  std::fflush(out_);
}

void Progress::on_event(NodeState& c, const std::string& ev, json& j) {
  if (ev == "start") {
    on_start(c, j);
  } else if (ev == "outer") {
    on_outer(c, j);
  } else if (ev == "state_sync") {
    on_state_sync(c, j);
  } else if (ev == "refused" || ev == "state_sync_failed") {
    std::fprintf(out_, "%-6s %s %s: %s\n", c.name.c_str(), ev.c_str(), label(j.value("peer", "")).c_str(),
                 j.value("why", "").c_str());
  } else if (ev == "done") {
    c.last_val = j.value("val_loss", c.last_val);
    std::fprintf(out_, "%-6s done at step %lld\n", c.name.c_str(), static_cast<long long>(j.value("inner_step", 0)));
  }
}

void Progress::on_start(NodeState& c, const json& j) {
  c.peer = j.value("peer", "");
  name_of_[c.peer] = c.name;
  c.first_val = j.value("val_loss", 0.0);
  c.have_first = true;
  c.curve.emplace_back(static_cast<double>(j.value("inner_step", 0)), c.first_val);
  c.timeline.push_back({seconds(), static_cast<double>(j.value("inner_step", 0)), c.first_val, 0.0});
  std::fprintf(out_, "%-6s started  peer ...%s  val loss %.4f\n", c.name.c_str(), tail6(c.peer).c_str(), c.first_val);
}

void Progress::on_outer(NodeState& c, json& j) {
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
  c.blocked_s.push_back(j.value("exchange_s", 0.0));
  c.payload_bytes = j.value("payload_bytes", uint64_t{0});
  c.raw_payload = j.value("raw_bytes", uint64_t{0});
  // What the same payloads would have cost as raw fp32 (per payload sent). DiLoCo's ring says it
  // (raw_bytes_out; older nodes sent fp32 only: their bytes are their own raw size).
  const uint64_t payload = j.value("payload_bytes", uint64_t{0});
  if (payload > 0) c.raw_out += j.value("raw_bytes", uint64_t{0}) * (j.value("bytes_out", uint64_t{0}) / payload);
  if (j.value("method", std::string()) == "diloco")
    c.raw_out += j.value("raw_bytes_out", j.value("bytes_out", uint64_t{0}));
  if (j.contains("val_loss")) {
    c.last_val = j["val_loss"].get<double>();
    c.curve.emplace_back(static_cast<double>(c.inner), c.last_val);
    c.timeline.push_back({seconds(), static_cast<double>(c.inner), c.last_val, static_cast<double>(c.bytes_out)});
  }
  if (c.outer % print_every_ == 0) print_outer(c, j);
}

void Progress::print_outer(const NodeState& c, const json& j) {
  const std::string partner = j.value("partner", "");
  std::fprintf(out_,
               "%-6s outer %3lld/%lld  step %4lld  loss %.3f  val %.3f  %6.0f tok/s  peers %zu  "
               "partner %-6s %5.0f ms  group %zu\n",
               c.name.c_str(), static_cast<long long>(c.outer), static_cast<long long>(outer_total_),
               static_cast<long long>(c.inner), j.value("loss", 0.0), c.last_val, j.value("tokens_per_s", 0.0),
               j.value("live_peers", size_t{0}), partner.empty() ? "-" : label(partner).c_str(),
               j.value("exchange_s", 0.0) * 1000, j.at("group").size() + 1);
}

void Progress::on_state_sync(NodeState& c, const json& j) {
  std::fprintf(out_, "%-6s state sync from %s: outer step %lld, val loss %.4f -> %.4f\n", c.name.c_str(),
               label(j.value("peer", "")).c_str(), static_cast<long long>(j.value("outer_step", 0)),
               j.value("val_loss_before", 0.0), j.value("val_loss_after", 0.0));
  c.curve.emplace_back(static_cast<double>(j.value("inner_step", 0)), j.value("val_loss_after", 0.0));
}

}  // namespace noloco::cli
