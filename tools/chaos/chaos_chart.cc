// chaos_chart IN.json: draws the charts chaos.py describes in IN.json, one PNG each.
//   {"charts": [{"png": PATH, "title": T, "x_label": X, "y_label": Y,
//                "series": [{"label": L, "points": [[x, y], ...]}, ...]}, ...]}
// A harness helper, not a user command: the input is our own file, checked only enough to give a
// clear error instead of an exception.
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "cli/png_chart.h"

namespace {

using noloco::cli::ChartOptions;
using noloco::cli::ChartSeries;

bool draw(const nlohmann::json& c) {
  ChartOptions o;
  o.title = c.value("title", "");
  o.x_label = c.value("x_label", "");
  o.y_label = c.value("y_label", "");
  o.width = c.value("width", 1200);
  o.height = c.value("height", 600);
  std::vector<ChartSeries> series;
  for (const auto& s : c.at("series")) {
    ChartSeries cs;
    cs.label = s.value("label", "");
    for (const auto& p : s.at("points")) cs.points.emplace_back(p.at(0).get<double>(), p.at(1).get<double>());
    series.push_back(std::move(cs));
  }
  const std::string png = c.at("png").get<std::string>();
  const auto st = noloco::cli::write_line_chart_png(png, series, o);
  if (!st.ok()) {
    std::fprintf(stderr, "chaos_chart: %s: %s\n", png.c_str(), st.to_string().c_str());
    return false;
  }
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: chaos_chart CHARTS.json\n");
    return 2;
  }
  std::ifstream in(argv[1]);
  const auto j = nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.contains("charts") || !j["charts"].is_array()) {
    std::fprintf(stderr, "chaos_chart: %s is not a charts file\n", argv[1]);
    return 1;
  }
  bool ok = true;
  try {
    for (const auto& c : j["charts"]) ok = draw(c) && ok;
  } catch (const nlohmann::json::exception& e) {
    std::fprintf(stderr, "chaos_chart: %s: %s\n", argv[1], e.what());
    return 1;
  }
  return ok ? 0 : 1;
}
