// The demo's closing table, summary.json and loss-curve chart.
#include "cli/demo_summary.h"

#include <algorithm>

#include <nlohmann/json.hpp>

#include "cli/png_chart.h"
#include "common/durable_file.h"

namespace noloco::cli {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

double mean(const std::vector<double>& v) {
  if (v.empty()) return 0.0;
  double s = 0;
  for (double x : v) s += x;
  return s / static_cast<double>(v.size());
}

double median(std::vector<double> v) {
  if (v.empty()) return 0.0;
  std::nth_element(v.begin(), v.begin() + static_cast<long>(v.size() / 2), v.end());
  return v[v.size() / 2];
}

std::string mb(double bytes) {
  char b[32];
  std::snprintf(b, sizeof b, "%.2f MB", bytes / 1e6);
  return b;
}

// "NoLoCo" / "DiLoCo", as the papers write them.
std::string method_label(const std::string& method) { return method == "diloco" ? "DiLoCo" : "NoLoCo"; }

void print_table(const std::vector<NodeState>& nodes, const Progress& progress, std::FILE* out) {
  std::fprintf(out, "\n%-6s %-22s %9s %5s  %-34s %s\n", "node", "val loss before -> after", "exchanges", "solo",
               "partners (times mixed)", "wire out: compressed / raw fp32");
  uint64_t total_out = 0, total_raw = 0;
  for (const auto& k : nodes) {
    std::string partners;
    for (const auto& [p, n] : k.partners) partners += progress.label(p) + " x" + std::to_string(n) + " ";
    char loss[64];
    std::snprintf(loss, sizeof loss, "%.4f -> %.4f", k.first_val, k.last_val);
    std::fprintf(out, "%-6s %-22s %9lld %5lld  %-34s %s / %s\n", k.name.c_str(), loss,
                 static_cast<long long>(k.exchanges), static_cast<long long>(k.solo), partners.c_str(),
                 mb(static_cast<double>(k.bytes_out)).c_str(), mb(static_cast<double>(k.raw_out)).c_str());
    total_out += k.bytes_out;
    total_raw += k.raw_out;
  }
  std::fprintf(out, "wire total: %s sent, %s as raw fp32 (%.1fx smaller)\n", mb(static_cast<double>(total_out)).c_str(),
               mb(static_cast<double>(total_raw)).c_str(),
               total_out > 0 ? static_cast<double>(total_raw) / static_cast<double>(total_out) : 0.0);
}

json node_json(const NodeState& k, const Progress& progress) {
  json partners = json::object();
  for (const auto& [p, n] : k.partners) partners[progress.label(p)] = n;
  return {{"name", k.name}, {"peer", k.peer}, {"val_loss_before", k.first_val},
          {"val_loss_after", k.last_val}, {"exchanges", k.exchanges},
          {"solo_steps", k.solo}, {"partners", partners},
          {"bytes_out", k.bytes_out}, {"raw_fp32_bytes", k.raw_out},
          {"tokens_per_s_mean", mean(k.tokens_per_s)},
          {"mean_group", mean(k.group_sizes)},
          {"exchange_s_median", median(k.exchange_s)},
          {"payload_bytes", k.payload_bytes}, {"raw_payload_bytes", k.raw_payload},
          {"curve", k.curve}, {"timeline", k.timeline}, {"blocked_s", k.blocked_s}};
}

// Writing the file itself is kept apart from building its contents.
void write_summary_json(const fs::path& path, const json& summary, std::FILE* out) {
  if (Status st = write_file_durably(path, as_bytes(summary.dump(2) + "\n"), {}); !st.ok())
    std::fprintf(out, "could not write the summary: %s\n", st.to_string().c_str());
}

void write_chart(const std::vector<NodeState>& nodes, const DemoSummaryInfo& info, std::FILE* out) {
  std::vector<ChartSeries> series;
  for (const auto& k : nodes) series.push_back({k.name, k.curve});
  ChartOptions co;
  co.title = "validation loss of " + std::to_string(info.peers) + " " + method_label(info.method) + " nodes";
  co.x_label = "inner step";
  co.y_label = "validation loss (nats)";
  const fs::path png = info.dir / "loss_curves.png";
  if (Status st = write_line_chart_png(png.string(), series, co); !st.ok())
    std::fprintf(out, "could not write the chart: %s\n", st.to_string().c_str());
  else
    std::fprintf(out, "loss curves: %s\nsummary: %s\n", png.c_str(), (info.dir / "summary.json").c_str());
}

}  // namespace

bool finish_demo_summary(const std::vector<NodeState>& nodes, const Progress& progress,
                         const DemoSummaryInfo& info, std::FILE* out) {
  std::fprintf(out, "\nmethod: %s\n", method_label(info.method).c_str());
  print_table(nodes, progress, out);
  std::fprintf(out, "unigram entropy of the corpus: %.4f nats (a model that ignores context)\n",
               info.unigram_entropy_nats);
  json summary = {{"run_id", info.run_id}, {"method", info.method}, {"nodes", json::array()}};
  bool all_fell = true;
  for (const auto& k : nodes) {
    summary["nodes"].push_back(node_json(k, progress));
    if (!(k.last_val < k.first_val)) all_fell = false;
  }
  summary["unigram_entropy_nats"] = info.unigram_entropy_nats;
  write_summary_json(info.dir / "summary.json", summary, out);
  write_chart(nodes, info, out);
  return all_fell;
}

}  // namespace noloco::cli
