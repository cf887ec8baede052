#include "cli/png_encode.h"

#include <algorithm>
#include <array>
#include <string>

namespace noloco::cli {
namespace {

std::array<uint32_t, 256> make_crc_table() {
  std::array<uint32_t, 256> table{};
  for (uint32_t n = 0; n < 256; ++n) {
    uint32_t c = n;
    for (int k = 0; k < 8; ++k) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
    table[n] = c;
  }
  return table;
}

// Running CRC so a chunk's type and data can be fed separately.
uint32_t crc_update(uint32_t crc, ByteView data) {
  static const std::array<uint32_t, 256> table = make_crc_table();
  for (uint8_t b : data) crc = table[(crc ^ b) & 0xFF] ^ (crc >> 8);
  return crc;
}

// length, type, data, CRC over type+data (PNG §5.3).
void put_chunk(Bytes& out, const char (&type)[5], ByteView data) {
  put_u32_be(out, static_cast<uint32_t>(data.size()));
  ByteView type_bytes(reinterpret_cast<const uint8_t*>(type), 4);
  append(out, type_bytes);
  append(out, data);
  uint32_t crc = crc_update(0xFFFFFFFFu, type_bytes);
  crc = crc_update(crc, data);
  put_u32_be(out, crc ^ 0xFFFFFFFFu);
}

// zlib stream (RFC 1950) around stored deflate blocks (RFC 1951 §3.2.4), each at most 65535 bytes.
Bytes zlib_stored(ByteView raw) {
  constexpr size_t kMaxBlock = 65535;
  Bytes out;
  out.reserve(raw.size() + raw.size() / kMaxBlock * 5 + 16);
  out.push_back(0x78);  // CMF: deflate, 32 KiB window
  out.push_back(0x01);  // FLG: no dictionary, fastest; 0x7801 is a multiple of 31 as §2.2 requires
  size_t pos = 0;
  do {
    size_t n = std::min(kMaxBlock, raw.size() - pos);
    bool last = pos + n == raw.size();
    out.push_back(last ? 0x01 : 0x00);  // BFINAL, BTYPE=00 (stored), then pad to a byte
    out.push_back(static_cast<uint8_t>(n));
    out.push_back(static_cast<uint8_t>(n >> 8));
    out.push_back(static_cast<uint8_t>(~n));
    out.push_back(static_cast<uint8_t>(~n >> 8));
    append(out, raw.subspan(pos, n));
    pos += n;
  } while (pos < raw.size());
  put_u32_be(out, zlib_adler32(raw));
  return out;
}

}  // namespace

uint32_t png_crc32(ByteView data) { return crc_update(0xFFFFFFFFu, data) ^ 0xFFFFFFFFu; }

uint32_t zlib_adler32(ByteView data) {
  constexpr uint32_t kMod = 65521;
  uint32_t a = 1, b = 0;
  // 5552 is the most bytes that can be summed before b could overflow 32 bits (zlib's NMAX).
  for (size_t pos = 0; pos < data.size();) {
    size_t n = std::min<size_t>(5552, data.size() - pos);
    for (size_t i = 0; i < n; ++i) {
      a += data[pos + i];
      b += a;
    }
    a %= kMod;
    b %= kMod;
    pos += n;
  }
  return (b << 16) | a;
}

Result<Bytes> encode_png_rgb8(int width, int height, ByteView rgb) {
  if (width < 1 || height < 1 || width > kMaxPngSide || height > kMaxPngSide) {
    return invalid_argument("png: size " + std::to_string(width) + "x" + std::to_string(height) +
                            " outside 1.." + std::to_string(kMaxPngSide));
  }
  const size_t stride = static_cast<size_t>(width) * 3;
  if (rgb.size() != stride * static_cast<size_t>(height)) {
    return invalid_argument("png: pixel buffer has " + std::to_string(rgb.size()) + " bytes, want " +
                            std::to_string(stride * height));
  }

  // Each scanline is a filter-type byte (0 = None) followed by the row's bytes.
  Bytes raw;
  raw.reserve((stride + 1) * height);
  for (int y = 0; y < height; ++y) {
    raw.push_back(0);
    append(raw, rgb.subspan(y * stride, stride));
  }

  Bytes ihdr;
  put_u32_be(ihdr, static_cast<uint32_t>(width));
  put_u32_be(ihdr, static_cast<uint32_t>(height));
  ihdr.push_back(8);  // bit depth
  ihdr.push_back(2);  // colour type: truecolour (RGB)
  ihdr.push_back(0);  // compression: deflate
  ihdr.push_back(0);  // filter method: adaptive (we always pick type 0)
  ihdr.push_back(0);  // no interlace

  Bytes png = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};
  put_chunk(png, "IHDR", ihdr);
  put_chunk(png, "IDAT", zlib_stored(raw));
  put_chunk(png, "IEND", {});
  return png;
}

}  // namespace noloco::cli
