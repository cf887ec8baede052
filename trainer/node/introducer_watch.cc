#include "trainer/node/introducer_watch.h"

#include <array>
#include <charconv>
#include <cstdint>
#include <string_view>

namespace noloco::node {
namespace {

enum class Scope { kPublic, kLoopback, kLocal, kUnknown };

// The text between "/ip4/" (or "/ip6/") and the next '/'.
std::string_view host_part(std::string_view a, size_t from) {
  const size_t end = a.find('/', from);
  return a.substr(from, end == std::string_view::npos ? std::string_view::npos : end - from);
}

Scope ipv4_scope(std::string_view ip) {
  std::array<unsigned, 4> o{};
  size_t at = 0;
  for (int i = 0; i < 4; ++i) {
    auto [p, ec] = std::from_chars(ip.data() + at, ip.data() + ip.size(), o[i]);
    if (ec != std::errc() || o[i] > 255) return Scope::kUnknown;
    at = static_cast<size_t>(p - ip.data());
    if (i < 3) {
      if (at >= ip.size() || ip[at] != '.') return Scope::kUnknown;
      ++at;
    }
  }
  if (at != ip.size()) return Scope::kUnknown;
  if (o[0] == 127) return Scope::kLoopback;
  if (o[0] == 0 || o[0] == 10 || (o[0] == 172 && (o[1] & 0xf0) == 16) || (o[0] == 192 && o[1] == 168) ||
      (o[0] == 169 && o[1] == 254) || (o[0] == 100 && (o[1] & 0xc0) == 64) || o[0] >= 224)
    return Scope::kLocal;  // unspecified, private, link-local, shared (CGNAT), multicast and reserved
  return Scope::kPublic;
}

Scope ipv6_scope(std::string_view ip) {
  if (ip == "::1") return Scope::kLoopback;
  if (ip.empty() || ip == "::") return Scope::kLocal;
  const char c0 = static_cast<char>(ip[0] | 0x20), c1 = ip.size() > 1 ? static_cast<char>(ip[1] | 0x20) : 0;
  if (c0 == 'f' && (c1 == 'c' || c1 == 'd' || c1 == 'e' || c1 == 'f')) return Scope::kLocal;  // ULA, link-local, multicast
  return Scope::kPublic;
}

Scope scope_of(std::string_view a) {
  if (a.find("/p2p-circuit") != std::string_view::npos) return Scope::kPublic;  // a relay carries it
  if (a.rfind("/ip4/", 0) == 0) return ipv4_scope(host_part(a, 5));
  if (a.rfind("/ip6/", 0) == 0) return ipv6_scope(host_part(a, 5));
  if (a.rfind("/dns", 0) == 0) return Scope::kPublic;
  return Scope::kUnknown;
}

}  // namespace

bool answer_expected(const std::vector<std::string>& addrs, bool we_are_on_loopback) {
  for (const auto& a : addrs) {
    const Scope s = scope_of(a);
    if (s == Scope::kPublic || (s == Scope::kLoopback && we_are_on_loopback)) return true;
  }
  return false;
}

}  // namespace noloco::node
