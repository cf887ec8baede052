// `noloco status`: what a node's store holds (run, identity, latest checkpoint, recent metrics,
// peer book), and what a running node is doing now (docs/status.md). Opens the store read-only (a
// RocksDB secondary), so it works while the node runs; the live view comes from the node's
// GET /status (`noloco run --metrics ADDR`), given with --node or found through the store's
// address file.
#include "cli/commands.h"

#include <cstdio>
#include <ctime>
#include <chrono>
#include <memory>
#include <optional>

#include <nlohmann/json.hpp>

#include "cli/status_address.h"
#include "cli/status_text.h"
#include "p2p/http_get.h"
#include "storage/store.h"

namespace noloco::cli {
namespace {

std::string utc_time(int64_t unix_ms) {
  const std::time_t t = static_cast<std::time_t>(unix_ms / 1000);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

Result<nlohmann::ordered_json> gather(storage::Store& store, size_t n_metrics) {
  nlohmann::ordered_json j;
  j["db"] = store.path();
  j["schema_version"] = store.schema_version();
  NOLOCO_ASSIGN_OR_RETURN(auto run_id, store.run_id());
  j["run_id"] = run_id ? nlohmann::ordered_json(*run_id) : nlohmann::ordered_json();
  NOLOCO_ASSIGN_OR_RETURN(auto ident, store.identity_ref());
  j["peer_id"] = ident ? nlohmann::ordered_json(*ident) : nlohmann::ordered_json();
  NOLOCO_ASSIGN_OR_RETURN(auto list, store.list_checkpoints());
  j["checkpoints"] = list.size();
  NOLOCO_ASSIGN_OR_RETURN(auto latest, store.latest_checkpoint_info());
  if (latest) {
    uint64_t bytes = 0;
    for (const auto& b : latest->manifest.blobs) bytes += b.size;
    j["latest_checkpoint"] = {{"id", latest->id},
                              {"step", latest->manifest.step},
                              {"outer_step", latest->manifest.outer_step},
                              {"created_unix_ms", latest->manifest.created_unix_ms},
                              {"created", utc_time(latest->manifest.created_unix_ms)},
                              {"bytes", bytes},
                              {"blobs", latest->manifest.blobs.size()}};
  } else {
    j["latest_checkpoint"] = nullptr;
  }
  NOLOCO_ASSIGN_OR_RETURN(auto metrics, store.recent_metrics(n_metrics));
  j["recent_metrics"] = nlohmann::ordered_json::array();
  for (const auto& m : metrics) {
    nlohmann::ordered_json r = {{"outer_step", m.outer_step}, {"unix_ms", m.unix_ms},
                                {"loss", m.loss},             {"tokens_per_s", m.tokens_per_s},
                                {"bytes_in", m.bytes_in},     {"bytes_out", m.bytes_out},
                                {"partner", m.partner},       {"exchange_ms", m.exchange_ms}};
    for (const auto& [k, v] : m.fields) r["fields"][k] = v;
    j["recent_metrics"].push_back(r);
  }
  NOLOCO_ASSIGN_OR_RETURN(auto peers, store.peer_summary(5));
  j["peers"] = {{"known", peers.peers}, {"active_bans", peers.active_bans}};
  j["peers"]["best"] = nlohmann::ordered_json::array();
  for (const auto& p : peers.best)
    j["peers"]["best"].push_back({{"peer_id", p.peer_id},
                                  {"score", p.score},
                                  {"successes", p.successes},
                                  {"failures", p.failures},
                                  {"last_seen_unix", p.last_seen_unix}});
  return j;
}

void print_text(const nlohmann::ordered_json& j) {
  auto s = [](const nlohmann::ordered_json& v) { return v.is_null() ? std::string("-") : v.get<std::string>(); };
  std::printf("store        %s (schema %u)\n", j["db"].get<std::string>().c_str(), j["schema_version"].get<unsigned>());
  std::printf("run          %s\n", s(j["run_id"]).c_str());
  std::printf("peer id      %s\n", s(j["peer_id"]).c_str());
  const auto& c = j["latest_checkpoint"];
  if (c.is_null()) {
    std::printf("checkpoint   none\n");
  } else {
    std::printf("checkpoint   #%llu step %llu (outer %llu), %s, %llu bytes in %zu blobs; %zu kept\n",
                c["id"].get<unsigned long long>(), c["step"].get<unsigned long long>(),
                c["outer_step"].get<unsigned long long>(), c["created"].get<std::string>().c_str(),
                c["bytes"].get<unsigned long long>(), c["blobs"].get<size_t>(), j["checkpoints"].get<size_t>());
  }
  std::printf("metrics      %zu recent\n", j["recent_metrics"].size());
  for (const auto& m : j["recent_metrics"])
    std::printf("  outer %llu  loss %.4f  %.0f tok/s  in %llu B  out %llu B  partner %s\n",
                m["outer_step"].get<unsigned long long>(), m["loss"].get<double>(),
                m["tokens_per_s"].get<double>(), m["bytes_in"].get<unsigned long long>(),
                m["bytes_out"].get<unsigned long long>(),
                m["partner"].get<std::string>().empty() ? "-" : m["partner"].get<std::string>().c_str());
  std::printf("peers        %zu known, %zu banned\n", j["peers"]["known"].get<size_t>(),
              j["peers"]["active_bans"].get<size_t>());
  for (const auto& p : j["peers"]["best"])
    std::printf("  %s  score %.2f  ok %llu  failed %llu\n", p["peer_id"].get<std::string>().c_str(),
                p["score"].get<double>(), p["successes"].get<unsigned long long>(),
                p["failures"].get<unsigned long long>());
}

// GET http://ADDR/status: the snapshot, or why there is none.
Result<nlohmann::json> fetch_live(const std::string& address, double timeout_s) {
  const auto timeout = std::chrono::milliseconds(static_cast<int64_t>(timeout_s * 1000));
  NOLOCO_ASSIGN_OR_RETURN(auto r, p2p::http_get(address, "/status", timeout));
  if (r.status != 200)
    return not_found("http://" + address + "/status answered " + std::to_string(r.status) +
                     " (a noloco run older than the /status endpoint?)");
  auto j = nlohmann::json::parse(r.body, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return corrupt("http://" + address + "/status: not a JSON object");
  return j;
}

void print_live(const nlohmann::json& snapshot, const std::string& address) {
  auto text = live_status_text(snapshot);
  std::printf("live         http://%s/status\n%s", address.c_str(),
              text.ok() ? text->c_str() : (text.status().to_string() + "\n").c_str());
}

struct Flags {
  std::string db, node;
  bool json = false;
  size_t metrics = 5;
  double timeout_s = 5;
};

// --node ADDR alone: the live view only; exit 1 when nothing answers.
int run_node_only(const Flags& f) {
  auto live = fetch_live(f.node, f.timeout_s);
  if (!live.ok()) {
    std::fprintf(stderr, "noloco status: %s\n", live.status().to_string().c_str());
    return 1;
  }
  if (f.json) std::printf("%s\n", live->dump().c_str());
  else print_live(*live, f.node);
  return 0;
}

// --db DIR (and maybe --node): the store, plus the live view of --node or of the address file the
// running node left in DIR. An unreachable node is reported, not an error: the store is still shown.
int run_with_store(const Flags& f) {
  storage::StoreOptions so;
  so.path = f.db;
  so.mode = storage::OpenMode::kReadOnly;
  auto store = storage::Store::open(so);
  if (!store.ok()) {
    std::fprintf(stderr, "noloco status: %s\n", store.status().to_string().c_str());
    return 1;
  }
  auto j = gather(**store, f.metrics);
  if (!j.ok()) {
    std::fprintf(stderr, "noloco status: %s\n", j.status().to_string().c_str());
    return 1;
  }
  std::string address = f.node;
  if (address.empty()) {
    if (auto a = read_status_address(f.db); a.ok()) address = a->http;
    else if (a.status().code() != StatusCode::kNotFound) (*j)["live_error"] = a.status().to_string();
  }
  std::optional<nlohmann::json> live;
  if (!address.empty()) {
    auto l = fetch_live(address, f.timeout_s);
    if (l.ok()) live = std::move(*l);
    else (*j)["live_error"] = "no node answers at " + address + " (not running?): " + l.status().to_string();
  }
  if (f.json) {
    if (live) (*j)["live"] = *live;
    std::printf("%s\n", j->dump().c_str());
    return 0;
  }
  if (live) print_live(*live, address);
  else if (j->contains("live_error")) std::printf("live         %s\n", (*j)["live_error"].get<std::string>().c_str());
  print_text(*j);
  return 0;
}

}  // namespace

Command register_status(CLI::App& app) {
  auto* sub = app.add_subcommand(
      "status", "show what a node's store holds and what the running node is doing now (docs/status.md)");
  auto f = std::make_shared<Flags>();
  sub->add_option("--db", f->db, "store directory (also finds a running node through its address file)");
  sub->add_option("--node", f->node, "HOST:PORT of a running node's --metrics endpoint: its live status");
  sub->add_flag("--json", f->json, "one JSON object instead of text");
  sub->add_option("--metrics", f->metrics, "recent metrics records to show")->capture_default_str();
  sub->add_option("--timeout", f->timeout_s, "seconds to wait for the running node's answer")
      ->capture_default_str()
      ->check(CLI::Range(0.001, 600.0));
  auto run = [f]() -> int {
    if (f->db.empty() && f->node.empty()) {
      std::fprintf(stderr, "noloco status: give --db DIR (a store) or --node HOST:PORT (a running node), or both\n");
      return 2;
    }
    return f->db.empty() ? run_node_only(*f) : run_with_store(*f);
  };
  return Command{sub, run};
}

}  // namespace noloco::cli
