// The chart PNG is decoded here by an independent reader (bitwise CRC-32, plain Adler-32, stored
// deflate blocks) and its pixels are checked against the layout the renderer reports.
#include <catch2/catch.hpp>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <string>
#include <unistd.h>

#include "cli/bitmap_font.h"
#include "cli/png_chart.h"
#include "cli/png_encode.h"

using namespace noloco;
using namespace noloco::cli;

namespace {

uint32_t be32(const uint8_t* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | p[3];
}

// Bit-at-a-time CRC-32 (no table), so a wrong table in the encoder cannot agree with it.
uint32_t slow_crc32(const uint8_t* p, size_t n) {
  uint32_t c = 0xFFFFFFFFu;
  for (size_t i = 0; i < n; ++i) {
    c ^= p[i];
    for (int k = 0; k < 8; ++k) c = (c >> 1) ^ (0xEDB88320u & (0u - (c & 1)));
  }
  return ~c;
}

uint32_t slow_adler32(const std::vector<uint8_t>& d) {
  uint32_t a = 1, b = 0;
  for (uint8_t x : d) {
    a = (a + x) % 65521;
    b = (b + a) % 65521;
  }
  return (b << 16) | a;
}

struct Image {
  int w = 0, h = 0;
  std::vector<uint8_t> rgb;
  Rgb at(int x, int y) const {
    const uint8_t* p = &rgb[(static_cast<size_t>(y) * w + x) * 3];
    return {p[0], p[1], p[2]};
  }
};

// Decodes what our encoder promises to write (8-bit RGB, stored deflate blocks, filter 0),
// checking every structural rule on the way with REQUIRE.
Image decode_png(const Bytes& png) {
  const uint8_t sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};
  REQUIRE(png.size() >= 8);
  REQUIRE(std::equal(sig, sig + 8, png.begin()));
  Image img;
  std::vector<uint8_t> idat;
  bool seen_ihdr = false, seen_iend = false;
  size_t pos = 8;
  while (pos < png.size()) {
    REQUIRE_FALSE(seen_iend);  // nothing after IEND
    REQUIRE(png.size() - pos >= 12);
    uint32_t len = be32(&png[pos]);
    REQUIRE(png.size() - pos - 12 >= len);
    std::string type(png.begin() + pos + 4, png.begin() + pos + 8);
    const uint8_t* data = &png[pos + 8];
    INFO("chunk " << type);
    REQUIRE(be32(data + len) == slow_crc32(&png[pos + 4], len + 4));
    if (!seen_ihdr) REQUIRE(type == "IHDR");
    if (type == "IHDR") {
      REQUIRE(len == 13);
      img.w = static_cast<int>(be32(data));
      img.h = static_cast<int>(be32(data + 4));
      REQUIRE(data[8] == 8);   // bit depth
      REQUIRE(data[9] == 2);   // RGB
      REQUIRE(data[10] == 0);  // deflate
      REQUIRE(data[11] == 0);  // filter method
      REQUIRE(data[12] == 0);  // no interlace
      seen_ihdr = true;
    } else if (type == "IDAT") {
      idat.insert(idat.end(), data, data + len);
    } else if (type == "IEND") {
      REQUIRE(len == 0);
      seen_iend = true;
    }
    pos += 12 + len;
  }
  REQUIRE(seen_iend);

  // zlib header (RFC 1950 §2.2), then stored blocks (RFC 1951 §3.2.4), then Adler-32.
  REQUIRE(idat.size() >= 2 + 5 + 4);
  REQUIRE((idat[0] & 0x0F) == 8);
  REQUIRE((idat[0] * 256 + idat[1]) % 31 == 0);
  REQUIRE((idat[1] & 0x20) == 0);  // no preset dictionary
  std::vector<uint8_t> raw;
  size_t p = 2;
  for (bool final = false; !final;) {
    REQUIRE(idat.size() - p >= 5);
    uint8_t hdr = idat[p];
    final = hdr & 1;
    REQUIRE(((hdr >> 1) & 3) == 0);  // stored
    uint16_t n = static_cast<uint16_t>(idat[p + 1] | (idat[p + 2] << 8));
    uint16_t nn = static_cast<uint16_t>(idat[p + 3] | (idat[p + 4] << 8));
    REQUIRE(n == static_cast<uint16_t>(~nn));
    p += 5;
    REQUIRE(idat.size() - p >= n);
    raw.insert(raw.end(), idat.begin() + p, idat.begin() + p + n);
    p += n;
  }
  REQUIRE(idat.size() - p == 4);
  REQUIRE(be32(&idat[p]) == slow_adler32(raw));

  const size_t stride = static_cast<size_t>(img.w) * 3;
  REQUIRE(raw.size() == (stride + 1) * img.h);
  for (int y = 0; y < img.h; ++y) {
    REQUIRE(raw[y * (stride + 1)] == 0);  // filter type None
    img.rgb.insert(img.rgb.end(), raw.begin() + y * (stride + 1) + 1, raw.begin() + (y + 1) * (stride + 1));
  }
  return img;
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

TEST_CASE("checksums match published check values") {
  // CRC-32/ISO-HDLC check value for "123456789" (Williams' CRC catalogue; PNG spec Annex D code).
  REQUIRE(png_crc32(as_bytes("123456789")) == 0xCBF43926u);
  REQUIRE(png_crc32(as_bytes("")) == 0u);
  // Adler-32 of "Wikipedia" is 0x11E60398 (the worked example in Wikipedia's Adler-32 article).
  REQUIRE(zlib_adler32(as_bytes("Wikipedia")) == 0x11E60398u);
  REQUIRE(zlib_adler32(as_bytes("")) == 1u);
  // Long input crosses the encoder's modulo batching; compare with the byte-at-a-time version.
  std::vector<uint8_t> big(200000);
  for (size_t i = 0; i < big.size(); ++i) big[i] = static_cast<uint8_t>(255 - i % 7);
  REQUIRE(zlib_adler32(big) == slow_adler32(big));
  REQUIRE(png_crc32(big) == slow_crc32(big.data(), big.size()));
}

TEST_CASE("the font has a distinct glyph for every character charts use") {
  const std::string chars =
      "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz.,-+:()[]/=%_?!'<>#*| ";
  const GlyphRows& missing = glyph_for('\x01');
  const GlyphRows blank{};
  REQUIRE(missing != blank);
  REQUIRE(glyph_for('~') == missing);
  REQUIRE(glyph_for('\xC3') == missing);  // bytes of UTF-8 sequences get the box too
  for (size_t i = 0; i < chars.size(); ++i) {
    INFO("char '" << chars[i] << "'");
    REQUIRE(glyph_for(chars[i]) != missing);
    REQUIRE((glyph_for(chars[i]) == blank) == (chars[i] == ' '));
    for (size_t j = i + 1; j < chars.size(); ++j) REQUIRE(glyph_for(chars[i]) != glyph_for(chars[j]));
    for (int row = 0; row < kGlyphRows; ++row) REQUIRE(glyph_for(chars[i])[row] < (1u << kGlyphWidth));
  }
  // Only lower-case letters with descenders use the rows below the baseline.
  for (char c : chars) {
    bool below = glyph_for(c)[kGlyphHeight] != 0 || glyph_for(c)[kGlyphHeight + 1] != 0;
    INFO("char '" << c << "'");
    REQUIRE(below == (std::string_view("gjpqy").find(c) != std::string_view::npos));
  }
  REQUIRE(text_width("ab", 2) == (2 * kGlyphAdvance - 1) * 2);
  REQUIRE(text_width("", 3) == 0);
}

TEST_CASE("encode_png_rgb8 round-trips pixels, including over several stored blocks") {
  for (auto [w, h] : {std::pair{1, 1}, std::pair{3, 2}, std::pair{300, 100}}) {  // 300x100: 90 KB > one block
    Bytes rgb(static_cast<size_t>(w) * h * 3);
    for (size_t i = 0; i < rgb.size(); ++i) rgb[i] = static_cast<uint8_t>(i * 31 + i / 7);
    auto png = encode_png_rgb8(w, h, rgb);
    REQUIRE(png.ok());
    Image img = decode_png(*png);
    REQUIRE(img.w == w);
    REQUIRE(img.h == h);
    REQUIRE(img.rgb == rgb);
  }
  Bytes two(6, 0);
  REQUIRE(encode_png_rgb8(2, 1, two).ok());
  REQUIRE(encode_png_rgb8(3, 1, two).status().code() == StatusCode::kInvalidArgument);
  REQUIRE(encode_png_rgb8(0, 1, {}).status().code() == StatusCode::kInvalidArgument);
  REQUIRE(encode_png_rgb8(1, kMaxPngSide + 1, two).status().code() == StatusCode::kInvalidArgument);
}

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
  const Rgb black{0, 0, 0};
  REQUIRE(find_colour(img, black, 0, 0, img.w - 1, area.top - 12).size() > 100);            // title
  REQUIRE(find_colour(img, black, area.left, area.bottom + 12, area.right, img.h - 1).size() > 100);  // x ticks, label
  REQUIRE(find_colour(img, black, 0, area.top, area.left - 12, area.bottom).size() > 100);   // y ticks, label
  REQUIRE(find_colour(img, black, area.right + 12, area.top, img.w - 1, area.bottom).size() > 100);  // legend text

  // Without a title nothing dark is drawn above the frame.
  ChartOptions plain = opts();
  plain.title.clear();
  auto area2 = *line_chart_plot_area(series, plain);
  Image img2 = decode_png(*render_line_chart_png(series, plain));
  REQUIRE(find_colour(img2, black, 0, 0, img2.w - 1, area2.top - 20).empty());
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
