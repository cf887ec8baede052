#include "cli/png_chart.h"

#include <cairo.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <memory>
#include <string_view>

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

// fontconfig resolves the family; DejaVu comes with Debian's fontconfig, and any sans face works.
constexpr char kFontFamily[] = "DejaVu Sans";

using Surface = std::unique_ptr<cairo_surface_t, decltype(&cairo_surface_destroy)>;
using Context = std::unique_ptr<cairo_t, decltype(&cairo_destroy)>;

Surface make_surface(int w, int h) { return {cairo_image_surface_create(CAIRO_FORMAT_RGB24, w, h), cairo_surface_destroy}; }
Context make_context(cairo_surface_t* s) { return {cairo_create(s), cairo_destroy}; }

void set_colour(cairo_t* cr, Rgb c) { cairo_set_source_rgb(cr, c.r / 255.0, c.g / 255.0, c.b / 255.0); }

// Text measured and drawn with one face at one of two sizes (labels, title).
struct Font {
  double size = 0;
  double ascent = 0, height = 0;  // of the face at this size, in pixels
};

Font use_font(cairo_t* cr, double size) {
  cairo_select_font_face(cr, kFontFamily, CAIRO_FONT_SLANT_NORMAL, CAIRO_FONT_WEIGHT_NORMAL);
  cairo_set_font_size(cr, size);
  cairo_font_extents_t fe;
  cairo_font_extents(cr, &fe);
  return {size, fe.ascent, fe.ascent + fe.descent};
}

int text_width(cairo_t* cr, const std::string& text) {
  cairo_text_extents_t te;
  cairo_text_extents(cr, text.c_str(), &te);
  return static_cast<int>(std::ceil(te.x_advance));
}

// Left-to-right text whose box's top-left corner is (x, y).
void draw_text(cairo_t* cr, const Font& f, double x, double y, const std::string& text) {
  cairo_move_to(cr, x, y + f.ascent);
  cairo_show_text(cr, text.c_str());
}

// Text turned 90 degrees anticlockwise (reads bottom to top); (x, y) is the top-left corner of
// its box, f.height wide and `width` tall.
void draw_text_up(cairo_t* cr, const Font& f, double x, double y, int width, const std::string& text) {
  cairo_save(cr);
  cairo_translate(cr, x + f.ascent, y + width);
  cairo_rotate(cr, -M_PI / 2);
  cairo_move_to(cr, 0, 0);
  cairo_show_text(cr, text.c_str());
  cairo_restore(cr);
}

std::string legend_text(const ChartSeries& s, size_t index) {
  std::string t = s.label.empty() ? "series " + std::to_string(index) : s.label;
  if (t.size() > kLegendLabelMaxChars) t = t.substr(0, kLegendLabelMaxChars - 2) + "..";
  return t;
}

// Inclusive pixel rectangle.
struct Rect {
  int left = 0, top = 0, right = 0, bottom = 0;
};

// Fills whole pixels (no antialiasing), so frame, grid and ticks keep their exact colours.
void fill_pixels(cairo_t* cr, Rect r, Rgb c) {
  set_colour(cr, c);
  cairo_rectangle(cr, r.left, r.top, r.right - r.left + 1, r.bottom - r.top + 1);
  cairo_fill(cr);
}

// --- axes ---

struct Axis {
  double lo = 0, hi = 0;  // axis range: first and last tick
  std::vector<double> ticks;
  std::vector<std::string> labels;
  int max_label_width = 0;
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
// Label widths are measured with the font currently set on `cr`.
Axis make_axis(cairo_t* cr, double lo, double hi, int target) {
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
    a.max_label_width = std::max(a.max_label_width, text_width(cr, a.labels.back()));
  }
  return a;
}

// Fewest-overlap axis: starts from a tick per `spacing` pixels and drops ticks until labels fit.
Axis fit_axis(cairo_t* cr, const Font& f, double lo, double hi, int length_px, int spacing, bool horizontal) {
  int target = std::clamp(length_px / spacing, 2, 10);
  for (;; --target) {
    Axis a = make_axis(cr, lo, hi, target);
    if (a.ticks.empty()) return a;
    int n = static_cast<int>(a.ticks.size());
    int gap = n > 1 ? length_px / (n - 1) : length_px;
    int need = horizontal ? a.max_label_width + static_cast<int>(2 * f.size) : static_cast<int>(2 * f.height);
    if (gap >= need || target <= 2) return a;
  }
}

// --- layout ---

struct Layout {
  int scale = 1;
  Font label_font, title_font;
  Rect frame;          // the box drawn around the plot
  ChartPlotArea area;  // where the axis range maps (inside the frame)
  Axis x_axis, y_axis;
  std::vector<size_t> drawn;  // indices of series with at least one finite point
  int legend_x = 0, legend_rows = 0, legend_col_width = 0;
};

constexpr int kInsetPerScale = 4;  // gap between frame and data, so lines at the axis ends show

Status check_size(const ChartOptions& o) {
  if (o.width < kMinChartWidth || o.height < kMinChartHeight || o.width > kMaxChartSide ||
      o.height > kMaxChartSide) {
    return invalid_argument("chart: size " + std::to_string(o.width) + "x" + std::to_string(o.height) +
                            " outside " + std::to_string(kMinChartWidth) + "x" +
                            std::to_string(kMinChartHeight) + ".." + std::to_string(kMaxChartSide));
  }
  return Status::Ok();
}

// Indices of the series with a finite point, and the data's range over them.
struct DataRange {
  std::vector<size_t> drawn;
  double x_lo = INFINITY, x_hi = -INFINITY, y_lo = INFINITY, y_hi = -INFINITY;
};

DataRange data_range(const std::vector<ChartSeries>& series) {
  DataRange r;
  for (size_t i = 0; i < series.size(); ++i) {
    bool any = false;
    for (auto [x, y] : series[i].points) {
      if (!std::isfinite(x) || !std::isfinite(y)) continue;
      any = true;
      r.x_lo = std::min(r.x_lo, x);
      r.x_hi = std::max(r.x_hi, x);
      r.y_lo = std::min(r.y_lo, y);
      r.y_hi = std::max(r.y_hi, y);
    }
    if (any) r.drawn.push_back(i);
  }
  return r;
}

// Measures text on `cr` (any cairo context) and places title, axes, plot and legend.
Result<Layout> make_layout(cairo_t* cr, const std::vector<ChartSeries>& series, const ChartOptions& o) {
  NOLOCO_RETURN_IF_ERROR(check_size(o));
  if (series.empty()) return invalid_argument("chart: no series");
  Layout L;
  DataRange d = data_range(series);
  L.drawn = std::move(d.drawn);
  if (L.drawn.empty()) return invalid_argument("chart: no series has a finite point");
  const Status too_wide = invalid_argument("chart: data range too wide to plot");
  if (!std::isfinite(d.x_hi - d.x_lo) || !std::isfinite(d.y_hi - d.y_lo)) return too_wide;

  const int s = L.scale = std::max(1, std::min(o.width / 480, o.height / 270));
  L.title_font = use_font(cr, 10.0 * s);
  L.label_font = use_font(cr, 8.0 * s);  // left set: everything below measures labels
  const int pad = 6 * s, tick = 3 * s, inset = kInsetPerScale * s;
  const int text_h = static_cast<int>(std::ceil(L.label_font.height));

  // Vertical: title, plot, x tick labels, x label.
  int top = pad + (o.title.empty() ? text_h / 2 : static_cast<int>(std::ceil(L.title_font.height)) + pad);
  int bottom = o.height - 1 - (pad + tick + 2 * s + text_h + (o.x_label.empty() ? 0 : 3 * s + text_h));
  int plot_h = bottom - top - 2 * inset;
  if (plot_h < 40) return invalid_argument("chart: too short for its labels");
  L.y_axis = fit_axis(cr, L.label_font, d.y_lo, d.y_hi, plot_h, 32 * s, false);
  if (L.y_axis.ticks.empty()) return too_wide;

  // Legend: rows down the right of the plot, more columns when they do not fit.
  const int row_h = text_h + 4 * s, swatch = 10 * s;
  int label_w = 0;
  for (size_t i : L.drawn) label_w = std::max(label_w, text_width(cr, legend_text(series[i], i)));
  L.legend_rows = std::max(1, (bottom - top) / row_h);
  int cols = static_cast<int>((L.drawn.size() + L.legend_rows - 1) / L.legend_rows);
  L.legend_col_width = swatch + 3 * s + label_w + 5 * s;
  int legend_w = 4 * s + cols * L.legend_col_width;
  // Horizontal: y label, y tick labels, plot, legend. The last x tick label is centred on the
  // right end of the plot, so leave half a label of room there too.
  Axis x_guess = make_axis(cr, d.x_lo, d.x_hi, 5);
  if (x_guess.ticks.empty()) return too_wide;
  int left = pad + (o.y_label.empty() ? 0 : text_h + 3 * s) + L.y_axis.max_label_width + 2 * s + tick;
  int right = o.width - 1 - std::max(pad + legend_w, pad + x_guess.max_label_width / 2);
  int plot_w = right - left - 2 * inset;
  if (plot_w < 40) return invalid_argument("chart: too narrow for its labels and legend");
  L.x_axis = fit_axis(cr, L.label_font, d.x_lo, d.x_hi, plot_w, 40 * s, true);
  if (L.x_axis.ticks.empty()) return too_wide;
  L.legend_x = right + 4 * s;

  L.frame = {left, top, right, bottom};
  L.area = {left + inset, top + inset, right - inset, bottom - inset,
            L.x_axis.lo, L.x_axis.hi, L.y_axis.lo, L.y_axis.hi};
  return L;
}

// Data -> pixel index (as the public ChartPlotArea describes); +0.5 is that pixel's centre.
double to_px_x(const ChartPlotArea& a, double x) { return a.left + (x - a.x_min) / (a.x_max - a.x_min) * (a.right - a.left); }
double to_px_y(const ChartPlotArea& a, double y) { return a.bottom - (y - a.y_min) / (a.y_max - a.y_min) * (a.bottom - a.top); }
int px_x(const ChartPlotArea& a, double x) { return static_cast<int>(std::lround(to_px_x(a, x))); }
int px_y(const ChartPlotArea& a, double y) { return static_cast<int>(std::lround(to_px_y(a, y))); }

// An antialiased polyline through the pixel centres, clipped to the inside of the frame. Square
// caps so the end points' own pixels are fully covered.
void draw_series(cairo_t* cr, const Layout& L, const ChartSeries& s, Rgb colour) {
  std::vector<std::pair<double, double>> pts;
  for (auto p : s.points)
    if (std::isfinite(p.first) && std::isfinite(p.second)) pts.push_back(p);
  std::stable_sort(pts.begin(), pts.end(), [](auto& a, auto& b) { return a.first < b.first; });
  const double thickness = std::max(2, L.scale);
  cairo_save(cr);
  cairo_rectangle(cr, L.frame.left + 1, L.frame.top + 1, L.frame.right - L.frame.left - 1,
                  L.frame.bottom - L.frame.top - 1);
  cairo_clip(cr);
  set_colour(cr, colour);
  if (pts.size() == 1) {  // a lone point: a small square so it is visible
    const double half = 1.5 * thickness;
    cairo_rectangle(cr, to_px_x(L.area, pts[0].first) + 0.5 - half, to_px_y(L.area, pts[0].second) + 0.5 - half,
                    2 * half, 2 * half);
    cairo_fill(cr);
  } else {
    cairo_set_antialias(cr, CAIRO_ANTIALIAS_DEFAULT);
    cairo_set_line_width(cr, thickness);
    cairo_set_line_cap(cr, CAIRO_LINE_CAP_SQUARE);
    cairo_set_line_join(cr, CAIRO_LINE_JOIN_ROUND);
    cairo_move_to(cr, to_px_x(L.area, pts[0].first) + 0.5, to_px_y(L.area, pts[0].second) + 0.5);
    for (size_t i = 1; i < pts.size(); ++i)
      cairo_line_to(cr, to_px_x(L.area, pts[i].first) + 0.5, to_px_y(L.area, pts[i].second) + 0.5);
    cairo_stroke(cr);
  }
  cairo_restore(cr);
}

// Grid lines at every tick, under the data.
void draw_grid(cairo_t* cr, const Layout& L) {
  const Rect& f = L.frame;
  for (double t : L.x_axis.ticks) {
    int x = px_x(L.area, t);
    fill_pixels(cr, {x, f.top + 1, x, f.bottom - 1}, kGrid);
  }
  for (double t : L.y_axis.ticks) {
    int y = px_y(L.area, t);
    fill_pixels(cr, {f.left + 1, y, f.right - 1, y}, kGrid);
  }
}

void draw_frame_and_ticks(cairo_t* cr, const Layout& L) {
  const int s = L.scale, tick = 3 * s;
  const Rect& f = L.frame;
  fill_pixels(cr, {f.left, f.top, f.right, f.top}, kFrame);
  fill_pixels(cr, {f.left, f.bottom, f.right, f.bottom}, kFrame);
  fill_pixels(cr, {f.left, f.top, f.left, f.bottom}, kFrame);
  fill_pixels(cr, {f.right, f.top, f.right, f.bottom}, kFrame);
  set_colour(cr, kText);
  use_font(cr, L.label_font.size);
  const double text_h = L.label_font.height;
  for (size_t i = 0; i < L.x_axis.ticks.size(); ++i) {
    int x = px_x(L.area, L.x_axis.ticks[i]);
    fill_pixels(cr, {x, f.bottom + 1, x + s - 1, f.bottom + tick}, kFrame);
    const std::string& lab = L.x_axis.labels[i];
    set_colour(cr, kText);
    draw_text(cr, L.label_font, x - text_width(cr, lab) / 2.0, f.bottom + tick + 2 * s, lab);
  }
  for (size_t i = 0; i < L.y_axis.ticks.size(); ++i) {
    int y = px_y(L.area, L.y_axis.ticks[i]);
    fill_pixels(cr, {f.left - tick, y, f.left - 1, y + s - 1}, kFrame);
    const std::string& lab = L.y_axis.labels[i];
    set_colour(cr, kText);
    draw_text(cr, L.label_font, f.left - tick - 2 * s - text_width(cr, lab), y - text_h / 2, lab);
  }
}

void draw_titles(cairo_t* cr, const Layout& L, const ChartOptions& o) {
  const int s = L.scale, pad = 6 * s;
  const Rect& f = L.frame;
  set_colour(cr, kText);
  if (!o.title.empty()) {
    use_font(cr, L.title_font.size);
    int w = text_width(cr, o.title);
    draw_text(cr, L.title_font, std::max(pad, (f.left + f.right) / 2 - w / 2), pad, o.title);
  }
  use_font(cr, L.label_font.size);
  if (!o.x_label.empty()) {
    int w = text_width(cr, o.x_label);
    draw_text(cr, L.label_font, std::max(pad, (f.left + f.right) / 2 - w / 2),
              o.height - 1 - pad - L.label_font.height, o.x_label);
  }
  if (!o.y_label.empty()) {
    int w = text_width(cr, o.y_label);
    draw_text_up(cr, L.label_font, pad, std::max(pad, (f.top + f.bottom) / 2 - w / 2), w, o.y_label);
  }
}

// A short stroke in each drawn series' colour, then its label.
void draw_legend(cairo_t* cr, const Layout& L, const std::vector<ChartSeries>& series) {
  const int s = L.scale, swatch = 10 * s, thickness = std::max(2, s);
  const int text_h = static_cast<int>(std::ceil(L.label_font.height)), row_h = text_h + 4 * s;
  use_font(cr, L.label_font.size);
  for (size_t k = 0; k < L.drawn.size(); ++k) {
    size_t i = L.drawn[k];
    int col = static_cast<int>(k) / L.legend_rows, row = static_cast<int>(k) % L.legend_rows;
    int x = L.legend_x + col * L.legend_col_width, y = L.frame.top + row * row_h;
    int mid = y + text_h / 2;
    fill_pixels(cr, {x, mid - thickness / 2, x + swatch - 1, mid - thickness / 2 + thickness - 1},
                chart_series_colour(i));
    set_colour(cr, kText);
    draw_text(cr, L.label_font, x + swatch + 3 * s, y, legend_text(series[i], i));
  }
}

cairo_status_t append_bytes(void* closure, const unsigned char* data, unsigned int length) {
  auto* out = static_cast<Bytes*>(closure);
  out->insert(out->end(), data, data + length);
  return CAIRO_STATUS_SUCCESS;
}

}  // namespace

Rgb chart_series_colour(size_t index) { return kPalette[index % kDistinctSeriesColours]; }

Result<ChartPlotArea> line_chart_plot_area(const std::vector<ChartSeries>& series,
                                           const ChartOptions& options) {
  Surface measure = make_surface(1, 1);
  Context cr = make_context(measure.get());
  NOLOCO_ASSIGN_OR_RETURN(Layout L, make_layout(cr.get(), series, options));
  return L.area;
}

Result<Bytes> render_line_chart_png(const std::vector<ChartSeries>& series,
                                    const ChartOptions& options) {
  NOLOCO_RETURN_IF_ERROR(check_size(options));
  Surface surface = make_surface(options.width, options.height);
  Context ctx = make_context(surface.get());
  cairo_t* cr = ctx.get();
  NOLOCO_ASSIGN_OR_RETURN(Layout L, make_layout(cr, series, options));
  set_colour(cr, kWhite);
  cairo_paint(cr);
  cairo_set_antialias(cr, CAIRO_ANTIALIAS_NONE);  // pixel-exact rules; series and text set their own
  draw_grid(cr, L);
  for (size_t i : L.drawn) draw_series(cr, L, series[i], chart_series_colour(i));
  draw_frame_and_ticks(cr, L);
  draw_titles(cr, L, options);
  draw_legend(cr, L, series);
  if (cairo_status(cr) != CAIRO_STATUS_SUCCESS)
    return internal_error(std::string("chart: drawing failed: ") + cairo_status_to_string(cairo_status(cr)));
  Bytes png;
  cairo_surface_flush(surface.get());
  cairo_status_t st = cairo_surface_write_to_png_stream(surface.get(), append_bytes, &png);
  if (st != CAIRO_STATUS_SUCCESS)
    return internal_error(std::string("chart: PNG encoding failed: ") + cairo_status_to_string(st));
  return png;
}

Status write_line_chart_png(const std::string& path, const std::vector<ChartSeries>& series,
                            const ChartOptions& options) {
  NOLOCO_ASSIGN_OR_RETURN(Bytes png, render_line_chart_png(series, options));
  return write_file_durably(path, png, {.mode = 0644}).context("chart");
}

}  // namespace noloco::cli
