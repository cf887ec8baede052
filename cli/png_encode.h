// A minimal PNG encoder for 8-bit RGB images, so the CLI can write charts without an image library.
// Spec: PNG (W3C, 2003 / RFC 2083), zlib (RFC 1950), deflate (RFC 1951).
#pragma once

#include <cstdint>

#include "common/bytes.h"
#include "common/status.h"

namespace noloco::cli {

// CRC-32 as PNG uses it (ISO-HDLC: reflected polynomial 0xEDB88320, init and final xor 0xFFFFFFFF).
uint32_t png_crc32(ByteView data);
// Adler-32 (RFC 1950 §8), the checksum that ends a zlib stream.
uint32_t zlib_adler32(ByteView data);

// Largest side we encode; a chart never needs more, and it bounds the buffer we build.
inline constexpr int kMaxPngSide = 16384;

// Encodes width*height pixels given row-major as R,G,B bytes (rgb.size() == width*height*3).
// Every scanline uses filter type 0 and the zlib stream uses stored (uncompressed) deflate
// blocks: simple and exact, at the cost of size (about 3 bytes per pixel).
Result<Bytes> encode_png_rgb8(int width, int height, ByteView rgb);

}  // namespace noloco::cli
