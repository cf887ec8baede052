#include "cli/png_chart.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string_view>

#include "cli/bitmap_font.h"
#include "cli/png_encode.h"
#include "common/durable_file.h"

namespace noloco::cli {
namespace {

constexpr Rgb kWhite{255, 255, 255};
constexpr Rgb kText{0, 0, 0};
constexpr Rgb kFrame{64, 64, 64};
constexpr Rgb kGrid{228, 228, 228};

// Tableau-like hues, none close to black, grey or white so lines never read as frame or grid.
constexpr Rgb kPalette[kDistinctSeriesColours] = {
    {31, 119, 180}, {255, 127, 14}, {44, 160, 44},  {214, 39, 40}, {148, 103, 189}, {140, 86, 75},
    {227, 119, 194}, {188, 189, 34}, {23, 190, 207}, {0, 0, 128},   {230, 171, 2},   {0, 128, 128},
};

// Inclusive pixel rectangle.
struct Rect {
  int left = 0, top = 0, right = 0, bottom = 0;
  bool contains(int x, int y) const { return x >= left && x <= right && y >= top && y <= bottom; }
};

class Canvas {
 public:
  Canvas(int w, int h) : w_(w), h_(h), px_(static_cast<size_t>(w) * h * 3, 255) {}

  void set(int x, int y, Rgb c) {
    if (x < 0 || y < 0 || x >= w_ || y >= h_) return;
    uint8_t* p = &px_[(static_cast<size_t>(y) * w_ + x) * 3];
    p[0] = c.r;
    p[1] = c.g;
    p[2] = c.b;
  }
  void fill(Rect r, Rgb c) {
    for (int y = r.top; y <= r.bottom; ++y)
      for (int x = r.left; x <= r.right; ++x) set(x, y, c);
  }
  ByteView pixels() const { return px_; }

 private:
  int w_, h_;
  Bytes px_;
};

// --- text ---

// Left-to-right text whose top-left corner is (x, y); descenders go below y + kGlyphHeight*scale.
void draw_text(Canvas& cv, int x, int y, std::string_view text, int scale, Rgb c) {
  for (size_t i = 0; i < text.size(); ++i) {
    const GlyphRows& g = glyph_for(text[i]);
    int gx0 = x + static_cast<int>(i) * kGlyphAdvance * scale;
    for (int row = 0; row < kGlyphRows; ++row)
      for (int col = 0; col < kGlyphWidth; ++col)
        if (g[row] & (1u << (kGlyphWidth - 1 - col)))
          cv.fill({gx0 + col * scale, y + row * scale, gx0 + (col + 1) * scale - 1,
                   y + (row + 1) * scale - 1},
                  c);
  }
}

// Text turned 90 degrees anticlockwise (reads bottom to top); (x, y) is the top-left corner of
// its box, which is kGlyphHeight*scale wide (descenders reach 2*scale further right) and
// text_width tall.
void draw_text_up(Canvas& cv, int x, int y, std::string_view text, int scale, Rgb c) {
  const int len = text_width(text, scale);
  for (size_t i = 0; i < text.size(); ++i) {
    const GlyphRows& g = glyph_for(text[i]);
    int gx0 = static_cast<int>(i) * kGlyphAdvance * scale;  // along the text
    for (int row = 0; row < kGlyphRows; ++row)
      for (int col = 0; col < kGlyphWidth; ++col)
        if (g[row] & (1u << (kGlyphWidth - 1 - col))) {
          // Unrotated pixel block at (gx0 + col*scale, row*scale); rotation maps (u, v) to (v, len-1-u).
          int u_last = gx0 + (col + 1) * scale - 1;
          cv.fill({x + row * scale, y + len - 1 - u_last, x + (row + 1) * scale - 1,
                   y + len - 1 - (gx0 + col * scale)},
                  c);
        }
  }
}

std::string legend_text(const ChartSeries& s, size_t index) {
  std::string t = s.label.empty() ? "series " + std::to_string(index) : s.label;
  if (t.size() > kLegendLabelMaxChars) t = t.substr(0, kLegendLabelMaxChars - 2) + "..";
  return t;
}

// --- lines ---

// A line `thickness` pixels wide: a square brush stamped along Bresenham's path, kept inside `clip`.
void draw_line(Canvas& cv, int x0, int y0, int x1, int y1, int thickness, Rgb c, const Rect& clip) {
  const int lo = -(thickness - 1) / 2, hi = thickness / 2;
  auto stamp = [&](int x, int y) {
    for (int dy = lo; dy <= hi; ++dy)
      for (int dx = lo; dx <= hi; ++dx)
        if (clip.contains(x + dx, y + dy)) cv.set(x + dx, y + dy, c);
  };
  const int dx = std::abs(x1 - x0), sx = x0 < x1 ? 1 : -1;
  const int dy = -std::abs(y1 - y0), sy = y0 < y1 ? 1 : -1;
  int err = dx + dy;
  for (;;) {
    stamp(x0, y0);
    if (x0 == x1 && y0 == y1) break;
    int e2 = 2 * err;
    if (e2 >= dy) {
      err += dy;
      x0 += sx;
    }
    if (e2 <= dx) {
      err += dx;
      y0 += sy;
    }
  }
}

// --- axes ---

struct Axis {
  double lo = 0, hi = 0;  // axis range: first and last tick
  std::vector<double> ticks;
  std::vector<std::string> labels;
  int max_label_width = 0;  // at the scale it was measured with
};

// The "nice number" rule: 1, 2 or 5 times a power of ten, nearest to x.
double nice_step(double x) {
  double p = std::pow(10.0, std::floor(std::log10(x)));
  double f = x / p;
  double nf = f < 1.5 ? 1 : f < 3 ? 2 : f < 7 ? 5 : 10;
  return nf * p;
}

std::string format_tick(double v, double step, double max_abs) {
  if (std::fabs(v) < step * 1e-6) return "0";  // no "-0.00" from rounding error
  char buf[64];
  if (max_abs < 1e6 && step >= 1e-4) {
    int decimals = std::max(0, static_cast<int>(-std::floor(std::log10(step) + 1e-9)));
    std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
  } else {
    int digits = static_cast<int>(std::floor(std::log10(max_abs))) -
                 static_cast<int>(std::floor(std::log10(step) + 1e-9));
    std::snprintf(buf, sizeof buf, "%.*e", std::clamp(digits, 0, 12), v);
  }
  return buf;
}

constexpr int kMaxTicks = 100;

// Round ticks covering [lo, hi], about `target` intervals; no ticks when that cannot be done.
Axis make_axis(double lo, double hi, int target, int scale) {
  double span = hi - lo;
  double mag = std::max(std::fabs(lo), std::fabs(hi));
  if (!(span > mag * 1e-12)) {  // one value (or nearly): give it some room
    double pad = mag > 0 ? mag * 0.1 : 1.0;
    lo -= pad;
    hi += pad;
    span = hi - lo;
  }
  double step = nice_step(span / std::max(1, target));
  double k0 = std::floor(lo / step + 1e-9), k1 = std::ceil(hi / step - 1e-9);
  Axis a;
  a.lo = k0 * step;
  a.hi = k1 * step;
  // Near the ends of the double range the padding or the rounding out can overflow.
  if (!(step > 0) || !std::isfinite(step) || !std::isfinite(a.hi - a.lo) || !(k1 > k0) ||
      k1 - k0 > kMaxTicks) {
    return {};
  }
  double max_abs = std::max(std::fabs(a.lo), std::fabs(a.hi));
  for (double k = k0; k <= k1 + 0.5; k += 1) {
    a.ticks.push_back(k * step);
    a.labels.push_back(format_tick(k * step, step, max_abs));
    a.max_label_width = std::max(a.max_label_width, text_width(a.labels.back(), scale));
  }
  return a;
}

// Fewest-overlap axis: starts from a tick per `spacing` pixels and drops ticks until labels fit.
Axis fit_axis(double lo, double hi, int length_px, int spacing, int scale, bool horizontal) {
  int target = std::clamp(length_px / spacing, 2, 10);
  for (;; --target) {
    Axis a = make_axis(lo, hi, target, scale);
    if (a.ticks.empty()) return a;
    int n = static_cast<int>(a.ticks.size());
    int gap = n > 1 ? length_px / (n - 1) : length_px;
    int need = horizontal ? a.max_label_width + 3 * kGlyphAdvance * scale
                          : kGlyphHeight * scale * 2;
    if (gap >= need || target <= 2) return a;
  }
}

// --- layout ---

struct Layout {
  int scale = 1;
  Rect frame;          // the box drawn around the plot
  ChartPlotArea area;  // where the axis range maps (inside the frame)
  Axis x_axis, y_axis;
  std::vector<size_t> drawn;  // indices of series with at least one finite point
  int legend_x = 0, legend_rows = 0, legend_col_width = 0;
};

constexpr int kInsetPerScale = 4;  // gap between frame and data, so lines at the axis ends show

Result<Layout> make_layout(const std::vector<ChartSeries>& series, const ChartOptions& o) {
  if (o.width < kMinChartWidth || o.height < kMinChartHeight || o.width > kMaxChartSide ||
      o.height > kMaxChartSide) {
    return invalid_argument("chart: size " + std::to_string(o.width) + "x" + std::to_string(o.height) +
                            " outside " + std::to_string(kMinChartWidth) + "x" +
                            std::to_string(kMinChartHeight) + ".." + std::to_string(kMaxChartSide));
  }
  if (series.empty()) return invalid_argument("chart: no series");

  Layout L;
  double x_lo = INFINITY, x_hi = -INFINITY, y_lo = INFINITY, y_hi = -INFINITY;
  for (size_t i = 0; i < series.size(); ++i) {
    bool any = false;
    for (auto [x, y] : series[i].points) {
      if (!std::isfinite(x) || !std::isfinite(y)) continue;
      any = true;
      x_lo = std::min(x_lo, x);
      x_hi = std::max(x_hi, x);
      y_lo = std::min(y_lo, y);
      y_hi = std::max(y_hi, y);
    }
    if (any) L.drawn.push_back(i);
  }
  if (L.drawn.empty()) return invalid_argument("chart: no series has a finite point");
  const Status too_wide = invalid_argument("chart: data range too wide to plot");
  if (!std::isfinite(x_hi - x_lo) || !std::isfinite(y_hi - y_lo)) return too_wide;

  const int s = L.scale = std::max(1, std::min(o.width / 480, o.height / 270));
  const int pad = 6 * s, tick = 3 * s, text_h = kGlyphHeight * s, inset = kInsetPerScale * s;

  // Vertical: title, plot, x tick labels, x label.
  int top = pad + (o.title.empty() ? text_h / 2 : kGlyphHeight * (s + 1) + pad);
  int bottom = o.height - 1 - (pad + tick + 2 * s + text_h + (o.x_label.empty() ? 0 : 3 * s + text_h));
  int plot_h = bottom - top - 2 * inset;
  if (plot_h < 40) return invalid_argument("chart: too short for its labels");
  L.y_axis = fit_axis(y_lo, y_hi, plot_h, 32 * s, s, false);
  if (L.y_axis.ticks.empty()) return too_wide;

  // Legend: rows down the right of the plot, more columns when they do not fit.
  const int row_h = text_h + 4 * s, swatch = 10 * s;
  int label_w = 0;
  for (size_t i : L.drawn) label_w = std::max(label_w, text_width(legend_text(series[i], i), s));
  L.legend_rows = std::max(1, (bottom - top) / row_h);
  int cols = static_cast<int>((L.drawn.size() + L.legend_rows - 1) / L.legend_rows);
  L.legend_col_width = swatch + 3 * s + label_w + 5 * s;
  int legend_w = 4 * s + cols * L.legend_col_width;
  // Horizontal: y label, y tick labels, plot, legend. The last x tick label is centred on the
  // right end of the plot, so leave half a label of room there too.
  Axis x_guess = make_axis(x_lo, x_hi, 5, s);
  if (x_guess.ticks.empty()) return too_wide;
  int left = pad + (o.y_label.empty() ? 0 : text_h + 3 * s) + L.y_axis.max_label_width + 2 * s + tick;
  int right = o.width - 1 - std::max(pad + legend_w, pad + x_guess.max_label_width / 2);
  int plot_w = right - left - 2 * inset;
  if (plot_w < 40) return invalid_argument("chart: too narrow for its labels and legend");
  L.x_axis = fit_axis(x_lo, x_hi, plot_w, 80 * s / 2, s, true);
  if (L.x_axis.ticks.empty()) return too_wide;
  L.legend_x = right + 4 * s;

  L.frame = {left, top, right, bottom};
  L.area = {left + inset, top + inset, right - inset, bottom - inset,
            L.x_axis.lo, L.x_axis.hi, L.y_axis.lo, L.y_axis.hi};
  return L;
}

int to_px_x(const ChartPlotArea& a, double x) {
  return static_cast<int>(std::lround(a.left + (x - a.x_min) / (a.x_max - a.x_min) * (a.right - a.left)));
}
int to_px_y(const ChartPlotArea& a, double y) {
  return static_cast<int>(std::lround(a.bottom - (y - a.y_min) / (a.y_max - a.y_min) * (a.bottom - a.top)));
}

void draw_series(Canvas& cv, const Layout& L, const ChartSeries& s, Rgb colour) {
  std::vector<std::pair<double, double>> pts;
  for (auto p : s.points)
    if (std::isfinite(p.first) && std::isfinite(p.second)) pts.push_back(p);
  std::stable_sort(pts.begin(), pts.end(), [](auto& a, auto& b) { return a.first < b.first; });
  const int thickness = std::max(2, L.scale);
  const Rect clip{L.frame.left + 1, L.frame.top + 1, L.frame.right - 1, L.frame.bottom - 1};
  if (pts.size() == 1) {  // a lone point: a small square so it is visible
    int x = to_px_x(L.area, pts[0].first), y = to_px_y(L.area, pts[0].second);
    draw_line(cv, x, y, x, y, 3 * thickness, colour, clip);
    return;
  }
  for (size_t i = 1; i < pts.size(); ++i) {
    draw_line(cv, to_px_x(L.area, pts[i - 1].first), to_px_y(L.area, pts[i - 1].second),
              to_px_x(L.area, pts[i].first), to_px_y(L.area, pts[i].second), thickness, colour, clip);
  }
}

// Grid lines at every tick, under the data.
void draw_grid(Canvas& cv, const Layout& L) {
  const Rect& f = L.frame;
  for (double t : L.x_axis.ticks) {
    int x = to_px_x(L.area, t);
    cv.fill({x, f.top + 1, x, f.bottom - 1}, kGrid);
  }
  for (double t : L.y_axis.ticks) {
    int y = to_px_y(L.area, t);
    cv.fill({f.left + 1, y, f.right - 1, y}, kGrid);
  }
}

void draw_frame_and_labels(Canvas& cv, const Layout& L, const std::vector<ChartSeries>& series,
                           const ChartOptions& o) {
  const int s = L.scale, tick = 3 * s, text_h = kGlyphHeight * s, pad = 6 * s;
  const Rect& f = L.frame;
  cv.fill({f.left, f.top, f.right, f.top}, kFrame);
  cv.fill({f.left, f.bottom, f.right, f.bottom}, kFrame);
  cv.fill({f.left, f.top, f.left, f.bottom}, kFrame);
  cv.fill({f.right, f.top, f.right, f.bottom}, kFrame);

  for (size_t i = 0; i < L.x_axis.ticks.size(); ++i) {
    int x = to_px_x(L.area, L.x_axis.ticks[i]);
    cv.fill({x, f.bottom + 1, x + s - 1, f.bottom + tick}, kFrame);
    const std::string& lab = L.x_axis.labels[i];
    draw_text(cv, x - text_width(lab, s) / 2, f.bottom + tick + 2 * s, lab, s, kText);
  }
  for (size_t i = 0; i < L.y_axis.ticks.size(); ++i) {
    int y = to_px_y(L.area, L.y_axis.ticks[i]);
    cv.fill({f.left - tick, y, f.left - 1, y + s - 1}, kFrame);
    const std::string& lab = L.y_axis.labels[i];
    draw_text(cv, f.left - tick - 2 * s - text_width(lab, s), y - text_h / 2, lab, s, kText);
  }

  if (!o.title.empty()) {
    int ts = s + 1, w = text_width(o.title, ts);
    int x = std::max(pad, (f.left + f.right) / 2 - w / 2);
    draw_text(cv, x, pad, o.title, ts, kText);
  }
  if (!o.x_label.empty()) {
    int w = text_width(o.x_label, s);
    draw_text(cv, std::max(pad, (f.left + f.right) / 2 - w / 2), o.height - 1 - pad - text_h, o.x_label,
              s, kText);
  }
  if (!o.y_label.empty()) {
    int w = text_width(o.y_label, s);
    draw_text_up(cv, pad, std::max(pad, (f.top + f.bottom) / 2 - w / 2), o.y_label, s, kText);
  }

  // Legend: a short stroke in the series colour, then its label.
  const int row_h = text_h + 4 * s, swatch = 10 * s, thickness = std::max(2, s);
  for (size_t k = 0; k < L.drawn.size(); ++k) {
    size_t i = L.drawn[k];
    int col = static_cast<int>(k) / L.legend_rows, row = static_cast<int>(k) % L.legend_rows;
    int x = L.legend_x + col * L.legend_col_width, y = f.top + row * row_h;
    int mid = y + text_h / 2;
    cv.fill({x, mid - thickness / 2, x + swatch - 1, mid - thickness / 2 + thickness - 1},
            chart_series_colour(i));
    draw_text(cv, x + swatch + 3 * s, y, legend_text(series[i], i), s, kText);
  }
}

}  // namespace

Rgb chart_series_colour(size_t index) { return kPalette[index % kDistinctSeriesColours]; }

Result<ChartPlotArea> line_chart_plot_area(const std::vector<ChartSeries>& series,
                                           const ChartOptions& options) {
  NOLOCO_ASSIGN_OR_RETURN(Layout L, make_layout(series, options));
  return L.area;
}

Result<Bytes> render_line_chart_png(const std::vector<ChartSeries>& series,
                                    const ChartOptions& options) {
  NOLOCO_ASSIGN_OR_RETURN(Layout L, make_layout(series, options));
  Canvas cv(options.width, options.height);
  draw_grid(cv, L);
  for (size_t i : L.drawn) draw_series(cv, L, series[i], chart_series_colour(i));
  draw_frame_and_labels(cv, L, series, options);
  return encode_png_rgb8(options.width, options.height, cv.pixels());
}

Status write_line_chart_png(const std::string& path, const std::vector<ChartSeries>& series,
                            const ChartOptions& options) {
  NOLOCO_ASSIGN_OR_RETURN(Bytes png, render_line_chart_png(series, options));
  return write_file_durably(path, png, {.mode = 0644}).context("chart");
}

}  // namespace noloco::cli
