// Line charts as PNG images, for the summary `noloco demo` writes (one validation-loss curve per
// node). Drawn with cairo (antialiased lines, fontconfig's sans face, libpng output); this file
// only lays the chart out. Presentation code only; nothing here parses hostile input.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "common/bytes.h"
#include "common/status.h"

namespace noloco::cli {

struct ChartSeries {
  std::string label;
  // (x, y) pairs in any order; they are joined in order of increasing x.
  std::vector<std::pair<double, double>> points;
};

struct ChartOptions {
  std::string title;
  std::string x_label;
  std::string y_label;
  int width = 960;
  int height = 540;
};

inline constexpr int kMinChartWidth = 320;
inline constexpr int kMinChartHeight = 200;
inline constexpr int kMaxChartSide = 8192;
inline constexpr size_t kLegendLabelMaxChars = 24;  // longer labels are cut and end in ".."

struct Rgb {
  uint8_t r = 0, g = 0, b = 0;
  bool operator==(const Rgb&) const = default;
};

// The colour of series `index` (its position in the input, empty series included, so a node keeps
// its colour when another has no data). Twelve distinct colours, then they repeat.
Rgb chart_series_colour(size_t index);
inline constexpr size_t kDistinctSeriesColours = 12;

// Where the data lands: the axis range [x_min, x_max] maps linearly onto pixel columns
// [left, right] and [y_min, y_max] onto pixel rows [bottom, top] (rows grow downwards). The axis
// range is the data range widened to round tick values. The frame is drawn a few pixels outside.
struct ChartPlotArea {
  int left = 0, top = 0, right = 0, bottom = 0;
  double x_min = 0, x_max = 0, y_min = 0, y_max = 0;
};
// The layout render_line_chart_png uses, for callers and tests that need to find the data.
Result<ChartPlotArea> line_chart_plot_area(const std::vector<ChartSeries>& series,
                                           const ChartOptions& options);

// Renders the series as antialiased coloured polylines (2 px, colour by series index) on white, with a frame,
// grid, tick marks and numeric tick labels on round values on both axes, the title, axis labels
// and a legend (right of the plot) naming each drawn series. Non-finite points are skipped; series
// with no finite point are skipped (and left out of the legend). kInvalidArgument when no series
// has a finite point, when the size is outside [kMinChartWidth|Height, kMaxChartSide], or when the
// data range is too wide for a double.
Result<Bytes> render_line_chart_png(const std::vector<ChartSeries>& series,
                                    const ChartOptions& options);

// render_line_chart_png, written to `path` (via a temporary file renamed into place).
Status write_line_chart_png(const std::string& path, const std::vector<ChartSeries>& series,
                            const ChartOptions& options);

}  // namespace noloco::cli
