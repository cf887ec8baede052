// The chart PNG is decoded by cairo's reader (libpng) and its pixels are checked against the
// layout the renderer reports.
#include <catch2/catch.hpp>

#include <cairo.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <string>
#include <unistd.h>

#include "cli/png_chart.h"

using namespace noloco;
using namespace noloco::cli;

namespace {

struct Image {
  int w = 0, h = 0;
  std::vector<uint8_t> rgb;
  Rgb at(int x, int y) const {
    const uint8_t* p = &rgb[(static_cast<size_t>(y) * w + x) * 3];
    return {p[0], p[1], p[2]};
  }
};

struct ReadCursor {
  const Bytes* png;
  size_t pos = 0;
};

cairo_status_t read_bytes(void* closure, unsigned char* data, unsigned int length) {
  auto* c = static_cast<ReadCursor*>(closure);
  if (c->png->size() - c->pos < length) return CAIRO_STATUS_READ_ERROR;
  std::copy_n(c->png->begin() + c->pos, length, data);
  c->pos += length;
  return CAIRO_STATUS_SUCCESS;
}

// Decodes the PNG with cairo's reader (libpng) into 8-bit RGB.
Image decode_png(const Bytes& png) {
  const uint8_t sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};
  REQUIRE(png.size() >= 8);
  REQUIRE(std::equal(sig, sig + 8, png.begin()));
  ReadCursor cursor{&png};
  cairo_surface_t* s = cairo_image_surface_create_from_png_stream(read_bytes, &cursor);
  REQUIRE(cairo_surface_status(s) == CAIRO_STATUS_SUCCESS);
  Image img;
  img.w = cairo_image_surface_get_width(s);
  img.h = cairo_image_surface_get_height(s);
  const int stride = cairo_image_surface_get_stride(s);
  const unsigned char* data = cairo_image_surface_get_data(s);
  for (int y = 0; y < img.h; ++y)
    for (int x = 0; x < img.w; ++x) {
      uint32_t px;  // native-endian 0xAARRGGBB (RGB24 and opaque ARGB32 alike)
      std::memcpy(&px, data + y * stride + x * 4, 4);
      img.rgb.push_back(static_cast<uint8_t>(px >> 16));
      img.rgb.push_back(static_cast<uint8_t>(px >> 8));
      img.rgb.push_back(static_cast<uint8_t>(px));
    }
  cairo_surface_destroy(s);
  return img;
}

// Pixels of text ink (black text, antialiased: its dark core) inside [x0, x1] x [y0, y1]; darker
// than the frame's grey, so rules and ticks do not count.
size_t find_ink(const Image& img, int x0, int y0, int x1, int y1) {
  size_t n = 0;
  for (int y = std::max(0, y0); y <= std::min(img.h - 1, y1); ++y)
    for (int x = std::max(0, x0); x <= std::min(img.w - 1, x1); ++x) {
      Rgb c = img.at(x, y);
      n += c.r < 48 && c.g < 48 && c.b < 48;
    }
  return n;
}

ChartSeries line(std::string label, double y0, double y1, int n = 101) {
  ChartSeries s{std::move(label), {}};
  for (int i = 0; i < n; ++i) s.points.push_back({i * 100.0 / (n - 1), y0 + (y1 - y0) * i / (n - 1)});
  return s;
}

// Pixels of colour c inside [x0, x1] x [y0, y1].
std::vector<std::pair<int, int>> find_colour(const Image& img, Rgb c, int x0, int y0, int x1, int y1) {
  std::vector<std::pair<int, int>> out;
  for (int y = std::max(0, y0); y <= std::min(img.h - 1, y1); ++y)
    for (int x = std::max(0, x0); x <= std::min(img.w - 1, x1); ++x)
      if (img.at(x, y) == c) out.push_back({x, y});
  return out;
}

double mean_row(const std::vector<std::pair<int, int>>& px) {
  double sum = 0;
  for (auto [x, y] : px) sum += y;
  return px.empty() ? NAN : sum / px.size();
}

ChartOptions opts() { return {"validation loss per node", "step", "loss", 960, 540}; }

}  // namespace

TEST_CASE("chart is a valid PNG of the requested size on a white background") {
  ChartOptions o = opts();
  o.width = 800;
  o.height = 450;
  auto png = render_line_chart_png({line("a", 1, 2)}, o);
  REQUIRE(png.ok());
  Image img = decode_png(*png);
  REQUIRE(img.w == 800);
  REQUIRE(img.h == 450);
  const Rgb white{255, 255, 255};
  REQUIRE(img.at(0, 0) == white);
  REQUIRE(img.at(799, 0) == white);
  REQUIRE(img.at(0, 449) == white);
  REQUIRE(img.at(799, 449) == white);
  size_t whites = find_colour(img, white, 0, 0, img.w - 1, img.h - 1).size();
  REQUIRE(whites > img.rgb.size() / 3 * 7 / 10);  // mostly background
  REQUIRE(whites < img.rgb.size() / 3);           // but something is drawn
}

TEST_CASE("each series is drawn in its own colour, rising and falling the right way") {
  std::vector<ChartSeries> series = {line("rising", 2, 9), line("falling", 9, 2), line("zigzag", 4, 4)};
  for (int i = 0; i < 101; i += 2) series[2].points[i].second = 5;  // a third colour, mid-height
  auto area = line_chart_plot_area(series, opts());
  REQUIRE(area.ok());
  Image img = decode_png(*render_line_chart_png(series, opts()));

  const int fifth = (area->right - area->left) / 5;
  auto left_band = [&](Rgb c) { return find_colour(img, c, area->left, area->top, area->left + fifth, area->bottom); };
  auto right_band = [&](Rgb c) { return find_colour(img, c, area->right - fifth, area->top, area->right, area->bottom); };
  for (size_t i = 0; i < 3; ++i) {
    INFO("series " << i);
    REQUIRE(left_band(chart_series_colour(i)).size() > 20);
    REQUIRE(right_band(chart_series_colour(i)).size() > 20);
  }
  // Rows grow downwards: a rising series sits lower (bigger row) on the left than on the right.
  REQUIRE(mean_row(left_band(chart_series_colour(0))) > mean_row(right_band(chart_series_colour(0))) + 100);
  REQUIRE(mean_row(left_band(chart_series_colour(1))) + 100 < mean_row(right_band(chart_series_colour(1))));
  // The colours are distinct from one another and from white.
  REQUIRE_FALSE(chart_series_colour(0) == chart_series_colour(1));
  REQUIRE_FALSE(chart_series_colour(1) == chart_series_colour(2));
  for (size_t i = 0; i < kDistinctSeriesColours; ++i)
    for (size_t j = i + 1; j < kDistinctSeriesColours; ++j) REQUIRE_FALSE(chart_series_colour(i) == chart_series_colour(j));
}

TEST_CASE("points land where the reported axis range says") {
  // Axis range from round ticks: x data 0.3..97.2 -> 0..100. The flat line is off-centre so a
  // flipped axis would show.
  std::vector<ChartSeries> series = {{"cover", {{0.3, 2.13}, {97.2, 9.87}}}, {"flat", {{0.3, 8}, {97.2, 8}}}};
  auto area = line_chart_plot_area(series, opts());
  REQUIRE(area.ok());
  CHECK(area->x_min == 0);
  CHECK(area->x_max == 100);
  CHECK(area->y_min <= 2.13);
  CHECK(area->y_max >= 9.87);
  CHECK(area->y_max - area->y_min <= 2 * (9.87 - 2.13));
  REQUIRE(area->left < area->right);
  REQUIRE(area->top < area->bottom);

  Image img = decode_png(*render_line_chart_png(series, opts()));
  const Rgb flat = chart_series_colour(1);
  const double row = area->bottom - (8 - area->y_min) / (area->y_max - area->y_min) * (area->bottom - area->top);
  const int c0 = static_cast<int>(std::lround(area->left + (0.3 - area->x_min) / (area->x_max - area->x_min) * (area->right - area->left)));
  const int c1 = static_cast<int>(std::lround(area->left + (97.2 - area->x_min) / (area->x_max - area->x_min) * (area->right - area->left)));
  // Drawn last, so on top: every column between the two points has the flat colour at its row...
  int covered = 0;
  for (int x = c0; x <= c1; ++x) {
    bool hit = false;
    for (int dy = -1; dy <= 1; ++dy) hit = hit || img.at(x, static_cast<int>(std::lround(row)) + dy) == flat;
    covered += hit;
  }
  REQUIRE(covered == c1 - c0 + 1);
  // ...and inside the plot it appears nowhere else, nor left or right of the data's ends.
  for (auto [x, y] : find_colour(img, flat, area->left - 10, area->top - 10, area->right + 10, area->bottom + 10)) {
    REQUIRE(std::abs(y - row) <= 2);
    REQUIRE(x >= c0 - 1);
    REQUIRE(x <= c1 + 1);
  }
}

TEST_CASE("legend, title and tick labels are drawn outside the plot") {
  std::vector<ChartSeries> series = {line("node 0", 9, 3), line("node 1", 8, 4), line("node 2", 7, 2)};
  auto area = *line_chart_plot_area(series, opts());
  Image img = decode_png(*render_line_chart_png(series, opts()));
  for (size_t i = 0; i < series.size(); ++i) {
    INFO("legend swatch " << i);
    REQUIRE(find_colour(img, chart_series_colour(i), area.right + 12, 0, img.w - 1, img.h - 1).size() >= 10);
  }
  REQUIRE(find_ink(img, 0, 0, img.w - 1, area.top - 12) > 100);                        // title
  REQUIRE(find_ink(img, area.left, area.bottom + 12, area.right, img.h - 1) > 100);     // x ticks, label
  REQUIRE(find_ink(img, 0, area.top, area.left - 12, area.bottom) > 100);               // y ticks, label
  REQUIRE(find_ink(img, area.right + 12, area.top, img.w - 1, area.bottom) > 100);      // legend text

  // Without a title nothing dark is drawn above the frame.
  ChartOptions plain = opts();
  plain.title.clear();
  auto area2 = *line_chart_plot_area(series, plain);
  Image img2 = decode_png(*render_line_chart_png(series, plain));
  REQUIRE(find_ink(img2, 0, 0, img2.w - 1, area2.top - 20) == 0);
}

TEST_CASE("empty series and non-finite points are skipped") {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const double inf = std::numeric_limits<double>::infinity();
  ChartSeries holes = line("holes", 3, 8);
  holes.points[10].second = nan;
  holes.points[20].first = inf;
  holes.points.push_back({nan, nan});
  std::vector<ChartSeries> series = {{"empty", {}}, holes, {"all bad", {{nan, 1}, {2, -inf}}}};
  auto area = line_chart_plot_area(series, opts());
  REQUIRE(area.ok());
  // The holes did not stretch the axes.
  REQUIRE(area->x_max <= 200);
  REQUIRE(area->y_max <= 20);
  Image img = decode_png(*render_line_chart_png(series, opts()));
  // Colours follow input positions: the empty series' colour is unused, the second's is drawn.
  REQUIRE(find_colour(img, chart_series_colour(0), 0, 0, img.w - 1, img.h - 1).empty());
  REQUIRE(find_colour(img, chart_series_colour(2), 0, 0, img.w - 1, img.h - 1).empty());
  REQUIRE(find_colour(img, chart_series_colour(1), area->left, area->top, area->right, area->bottom).size() > 500);
}

TEST_CASE("a lone point and constant data still render") {
  std::vector<ChartSeries> series = {{"one", {{5, 3}}}, {"flat", {{0, 3}, {10, 3}}}};
  auto area = line_chart_plot_area(series, opts());
  REQUIRE(area.ok());
  REQUIRE(area->y_min < 3);  // a single value gets room either side
  REQUIRE(area->y_max > 3);
  Image img = decode_png(*render_line_chart_png({series[0]}, opts()));
  REQUIRE(find_colour(img, chart_series_colour(0), area->left, area->top, area->right, area->bottom).size() >= 9);
}

TEST_CASE("invalid charts are refused") {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  auto code = [](const std::vector<ChartSeries>& s, ChartOptions o) { return render_line_chart_png(s, o).status().code(); };
  REQUIRE(code({}, opts()) == StatusCode::kInvalidArgument);
  REQUIRE(code({{"empty", {}}}, opts()) == StatusCode::kInvalidArgument);
  REQUIRE(code({{"nan", {{nan, nan}, {1, nan}}}}, opts()) == StatusCode::kInvalidArgument);
  REQUIRE(code({{"huge", {{0, -1e308}, {1, 1e308}}}}, opts()) == StatusCode::kInvalidArgument);
  // Rounding the axis out (or padding a single value) would pass the largest double.
  REQUIRE(code({{"edge", {{0, 1.79e308}, {1, 1.7976e308}}}}, opts()) == StatusCode::kInvalidArgument);
  REQUIRE(code({{"edge", {{1.7e308, 1}, {1.7e308, 2}}}}, opts()) == StatusCode::kInvalidArgument);
  // Large but representable values and ranges are fine.
  REQUIRE(render_line_chart_png({{"big", {{0, 1e300}, {1, 3e300}}}}, opts()).ok());
  REQUIRE(render_line_chart_png({{"wide", {{0, -8e307}, {1, 8e307}}}}, opts()).ok());
  ChartOptions small = opts();
  small.width = 100;
  REQUIRE(code({line("a", 1, 2)}, small) == StatusCode::kInvalidArgument);
  ChartOptions big = opts();
  big.height = kMaxChartSide + 1;
  REQUIRE(code({line("a", 1, 2)}, big) == StatusCode::kInvalidArgument);
  REQUIRE(line_chart_plot_area({}, opts()).status().code() == StatusCode::kInvalidArgument);
}

TEST_CASE("write_line_chart_png writes the rendered bytes, and reports a bad path") {
  namespace fs = std::filesystem;
  fs::path dir = fs::path(NOLOCO_BINARY_DIR) / ("chart_test_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  std::vector<ChartSeries> series = {line("a", 1, 2), line("b", 2, 1)};
  std::string path = (dir / "loss.png").string();
  REQUIRE(write_line_chart_png(path, series, opts()).ok());
  std::ifstream in(path, std::ios::binary);
  Bytes got((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  REQUIRE(got == *render_line_chart_png(series, opts()));
  REQUIRE_FALSE(fs::exists(path + ".tmp"));
  Status bad = write_line_chart_png((dir / "no/such/dir/x.png").string(), series, opts());
  REQUIRE(bad.code() == StatusCode::kIoError);
  fs::remove_all(dir);
}
