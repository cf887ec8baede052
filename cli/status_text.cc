// live_status_text (status_text.h).
#include "cli/status_text.h"

#include <cstdio>

#include <nlohmann/json.hpp>

namespace noloco::cli {
namespace {

using json = nlohmann::json;

std::string short_id(const std::string& id) { return id.size() > 8 ? "…" + id.substr(id.size() - 6) : id; }

std::string line(const char* label, const std::string& value) {
  char buf[24];
  std::snprintf(buf, sizeof buf, "%-13s", label);
  return buf + value + "\n";
}

std::string fmt(const char* f, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, f, v);
  return buf;
}

std::string exchange_text(const json& e, int64_t now) {
  const auto& group = e.at("group");
  std::string s = "outer " + std::to_string(e.at("outer_step").get<int64_t>()) + ", ";
  if (group.empty()) {
    s += "solo";
  } else {
    s += "mixed with " + short_id(e.at("partner").get<std::string>());
    if (group.size() > 1) s += " (group of " + std::to_string(group.size() + 1) + ")";
  }
  s += fmt(", %.3f s", e.at("exchange_s").get<double>());
  const int64_t failures = e.at("failures").get<int64_t>();
  if (failures > 0) s += ", " + std::to_string(failures) + " failed tries";
  return s + ", " + age_text(now - e.at("unix_ms").get<int64_t>());
}

std::string num(const json& j, const char* key) { return std::to_string(j.at(key).get<int64_t>()); }

// reachability, relay reservations, and how the live peers are reached (docs/status.md).
std::string nat_text(const json& n) {
  std::string out;
  const std::string why = n.at("why").get<std::string>();
  out += line("reachability", n.at("reachability").get<std::string>() + (why.empty() ? "" : " (" + why + ")"));
  const auto& res = n.at("relay_reservations");
  if (res.empty()) out += line("relay", "no reservation");
  for (size_t i = 0; i < res.size(); ++i) out += line(i == 0 ? "relay" : "", "reserved: " + res[i].get<std::string>());
  const auto& p = n.at("paths");
  const auto& h = n.at("hole_punches");
  out += line("paths", num(p, "direct") + " direct, " + num(p, "relayed") + " relayed, " + num(p, "hole_punched") +
                           " hole-punched; hole punches " + num(h, "succeeded") + " succeeded, " + num(h, "failed") +
                           " failed of " + num(h, "attempts") + " tried");
  return out;
}

std::string body(const json& j) {
  const int64_t now = j.at("now_unix_ms").get<int64_t>();
  std::string out;
  out += line("node", short_id(j.at("peer").get<std::string>()) + "  " + j.at("state").get<std::string>() +
                          (j.at("resumed").get<bool>() ? " (resumed)" : "") +
                          (j.at("started_unix_ms").get<int64_t>() > 0
                               ? ", started " + age_text(now - j.at("started_unix_ms").get<int64_t>())
                               : ""));
  out += line("run", j.at("run_id").get<std::string>() +
                         (j.at("method").is_null() ? "" : " (" + j.at("method").get<std::string>() + ")"));
  out += line("phase", j.at("phase").get<std::string>().empty() ? "-" : j.at("phase").get<std::string>());
  std::string step = "outer " + std::to_string(j.at("outer_step").get<int64_t>()) + ", inner " +
                     std::to_string(j.at("inner_step").get<int64_t>()) + fmt(", loss %.4f", j.at("loss").get<double>());
  if (!j.at("val_loss").is_null()) step += fmt(", val loss %.4f", j.at("val_loss").get<double>());
  out += line("step", step);
  const auto& peers = j.at("peers");
  out += line("peers", std::to_string(peers.at("live").get<int64_t>()) + " live, " +
                           std::to_string(peers.at("connections").get<int64_t>()) + " connections");
  if (j.contains("nat")) out += nat_text(j.at("nat"));  // absent from an older node's snapshot
  const auto& c = j.at("counts");
  out += line("exchange", j.at("last_exchange").is_null() ? "none yet" : exchange_text(j.at("last_exchange"), now));
  out += line("", std::to_string(c.at("mixed").get<int64_t>()) + " mixed, " + std::to_string(c.at("solo").get<int64_t>()) +
                      " solo, " + std::to_string(c.at("refused").get<int64_t>()) + " payloads refused, " +
                      std::to_string(c.at("stale").get<int64_t>()) + " stale");
  std::string partners;
  for (const auto& e : j.at("recent_partners")) partners += (partners.empty() ? "" : " ") + short_id(e.at("partner").get<std::string>());
  out += line("partners", partners.empty() ? "none yet" : partners + "  (oldest first)");
  const auto& cp = j.at("last_checkpoint");
  out += line("checkpoint",
              cp.is_null() ? "none written by this process yet"
                           : "#" + std::to_string(cp.at("id").get<int64_t>()) + " at outer " +
                                 std::to_string(cp.at("outer_step").get<int64_t>()) + ", " +
                                 age_text(now - cp.at("unix_ms").get<int64_t>()));
  const auto& f = j.at("last_failure");
  if (f.is_null()) {
    out += line("last failure", "none");
  } else {
    const std::string peer = f.at("peer").get<std::string>();
    out += line("last failure", f.at("kind").get<std::string>() + (peer.empty() ? "" : " " + short_id(peer)) + ", " +
                                    age_text(now - f.at("unix_ms").get<int64_t>()) + ": " + f.at("why").get<std::string>());
  }
  return out;
}

}  // namespace

std::string age_text(int64_t ms) {
  if (ms < 1000) return "just now";
  const int64_t s = ms / 1000;
  if (s < 120) return std::to_string(s) + " s ago";
  if (s < 7200) return std::to_string(s / 60) + " min ago";
  return std::to_string(s / 3600) + " h ago";
}

Result<std::string> live_status_text(const json& snapshot) {
  try {
    return body(snapshot);
  } catch (const json::exception& e) {
    return corrupt(std::string("status snapshot: ") + e.what());
  }
}

}  // namespace noloco::cli
