// A built-in 5x7 bitmap font so charts can carry text without a font library: digits, letters in
// both cases (lower case has descenders) and common punctuation; a character without a glyph is
// drawn as a hollow box.
#pragma once

#include <array>
#include <cstdint>
#include <string_view>

namespace noloco::cli {

inline constexpr int kGlyphWidth = 5;
inline constexpr int kGlyphHeight = 7;                  // cap height: rows above the baseline
inline constexpr int kGlyphDescent = 2;                 // rows below it, for g, j, p, q, y
inline constexpr int kGlyphRows = kGlyphHeight + kGlyphDescent;
inline constexpr int kGlyphAdvance = kGlyphWidth + 1;  // one column of spacing between glyphs

// Row r (0 = top) of the glyph; bit 4 is the leftmost column.
using GlyphRows = std::array<uint8_t, kGlyphRows>;
const GlyphRows& glyph_for(char c);

// Width in pixels of `text` at integer scale `scale` (no trailing spacing column).
inline int text_width(std::string_view text, int scale) {
  return text.empty() ? 0 : (static_cast<int>(text.size()) * kGlyphAdvance - 1) * scale;
}

}  // namespace noloco::cli
