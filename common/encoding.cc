#include "common/encoding.h"

#include <algorithm>
#include <array>

namespace noloco {

namespace {
constexpr char kHexDigits[] = "0123456789abcdef";
constexpr char kBase58Alphabet[] = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::array<int8_t, 256> make_base58_table() {
  std::array<int8_t, 256> t{};
  t.fill(-1);
  for (int i = 0; i < 58; ++i) t[static_cast<uint8_t>(kBase58Alphabet[i])] = static_cast<int8_t>(i);
  return t;
}
}  // namespace

std::string hex_encode(ByteView in) {
  std::string out;
  out.reserve(in.size() * 2);
  for (uint8_t b : in) {
    out.push_back(kHexDigits[b >> 4]);
    out.push_back(kHexDigits[b & 15]);
  }
  return out;
}

Result<Bytes> hex_decode(std::string_view in) {
  if (in.size() % 2 != 0) return invalid_argument("hex string has odd length");
  Bytes out(in.size() / 2);
  for (size_t i = 0; i < out.size(); ++i) {
    int hi = hex_value(in[2 * i]), lo = hex_value(in[2 * i + 1]);
    if (hi < 0 || lo < 0) return invalid_argument("not a hex digit at position " + std::to_string(2 * i));
    out[i] = static_cast<uint8_t>(hi * 16 + lo);
  }
  return out;
}

// Base58 is a big-number base conversion; inputs here are short (keys, hashes), so the
// quadratic schoolbook method is fine.
std::string base58_encode(ByteView in) {
  size_t zeros = 0;
  while (zeros < in.size() && in[zeros] == 0) ++zeros;
  std::vector<uint8_t> digits;  // base-58 digits, least significant first
  for (size_t i = zeros; i < in.size(); ++i) {
    int carry = in[i];
    for (auto& d : digits) {
      carry += d * 256;
      d = static_cast<uint8_t>(carry % 58);
      carry /= 58;
    }
    while (carry > 0) {
      digits.push_back(static_cast<uint8_t>(carry % 58));
      carry /= 58;
    }
  }
  std::string out(zeros, '1');
  for (auto it = digits.rbegin(); it != digits.rend(); ++it) out.push_back(kBase58Alphabet[*it]);
  return out;
}

Result<Bytes> base58_decode(std::string_view in) {
  static const auto table = make_base58_table();
  if (in.size() > 1024) return too_large("base58 string longer than 1024 characters");
  size_t ones = 0;
  while (ones < in.size() && in[ones] == '1') ++ones;
  std::vector<uint8_t> bytes;  // base-256 digits, least significant first
  for (size_t i = ones; i < in.size(); ++i) {
    int v = table[static_cast<uint8_t>(in[i])];
    if (v < 0) return invalid_argument(std::string("invalid base58 character '") + in[i] + "'");
    int carry = v;
    for (auto& b : bytes) {
      carry += b * 58;
      b = static_cast<uint8_t>(carry & 0xff);
      carry >>= 8;
    }
    while (carry > 0) {
      bytes.push_back(static_cast<uint8_t>(carry & 0xff));
      carry >>= 8;
    }
  }
  Bytes out(ones, 0);
  out.insert(out.end(), bytes.rbegin(), bytes.rend());
  return out;
}

}  // namespace noloco
