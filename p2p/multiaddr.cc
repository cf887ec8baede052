#include "p2p/multiaddr.h"

#include <arpa/inet.h>

#include <charconv>

#include "common/varint.h"

namespace noloco::p2p {

namespace {

constexpr size_t kMaxDnsName = 253;

struct ProtocolInfo {
  MultiaddrProtocol code;
  std::string_view name;
  int fixed_size;  // bytes, or -1 for a varint-length-prefixed value
};

constexpr ProtocolInfo kProtocols[] = {
    {MultiaddrProtocol::kIp4, "ip4", 4},   {MultiaddrProtocol::kTcp, "tcp", 2},
    {MultiaddrProtocol::kIp6, "ip6", 16},  {MultiaddrProtocol::kDns4, "dns4", -1},
    {MultiaddrProtocol::kDns6, "dns6", -1}, {MultiaddrProtocol::kP2p, "p2p", -1},
    {MultiaddrProtocol::kP2pCircuit, "p2p-circuit", 0},
};

const ProtocolInfo* find_by_code(uint64_t code) {
  for (const auto& p : kProtocols)
    if (static_cast<uint64_t>(p.code) == code) return &p;
  return nullptr;
}

const ProtocolInfo* find_by_name(std::string_view name) {
  if (name == "ipfs") return find_by_code(static_cast<uint64_t>(MultiaddrProtocol::kP2p));  // legacy alias
  for (const auto& p : kProtocols)
    if (p.name == name) return &p;
  return nullptr;
}

bool valid_dns_name(std::string_view name) {
  if (name.empty() || name.size() > kMaxDnsName) return false;
  for (char c : name) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
              c == '.' || c == '_';
    if (!ok) return false;
  }
  return true;
}

bool is_dns(MultiaddrProtocol p) { return p == MultiaddrProtocol::kDns4 || p == MultiaddrProtocol::kDns6; }
bool is_host(MultiaddrProtocol p) {
  return p == MultiaddrProtocol::kIp4 || p == MultiaddrProtocol::kIp6 || is_dns(p);
}

// Text value -> binary value for one component.
Result<Bytes> value_from_text(const ProtocolInfo& p, std::string_view text) {
  const std::string s(text);
  switch (p.code) {
    case MultiaddrProtocol::kIp4: {
      Bytes out(4);
      if (inet_pton(AF_INET, s.c_str(), out.data()) != 1) return invalid_argument("bad ip4 address '" + s + "'");
      return out;
    }
    case MultiaddrProtocol::kIp6: {
      Bytes out(16);
      if (inet_pton(AF_INET6, s.c_str(), out.data()) != 1) return invalid_argument("bad ip6 address '" + s + "'");
      return out;
    }
    case MultiaddrProtocol::kTcp: {
      // Digits only, no sign, no leading zeros (so text -> bytes -> text round-trips).
      unsigned port = 0;
      auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), port);
      if (s.empty() || ec != std::errc() || end != s.data() + s.size() || (s.size() > 1 && s[0] == '0') ||
          port > 65535) {
        return invalid_argument("bad tcp port '" + s + "'");
      }
      Bytes out;
      put_u16_be(out, static_cast<uint16_t>(port));
      return out;
    }
    case MultiaddrProtocol::kDns4:
    case MultiaddrProtocol::kDns6:
      if (!valid_dns_name(text)) return invalid_argument("bad dns name '" + s + "'");
      return to_bytes(text);
    case MultiaddrProtocol::kP2p: {
      auto id = PeerId::parse(text);
      if (!id.ok()) return invalid_argument("bad p2p peer id: " + id.status().message());
      return id->bytes();
    }
    case MultiaddrProtocol::kP2pCircuit:
      return Bytes{};
  }
  return invalid_argument("unknown protocol");
}

// Checks a binary value read from the wire (the length is already known to fit).
Status check_binary_value(const ProtocolInfo& p, ByteView value) {
  switch (p.code) {
    case MultiaddrProtocol::kDns4:
    case MultiaddrProtocol::kDns6:
      if (!valid_dns_name(to_string(value))) return corrupt("bad dns name");
      return Status::Ok();
    case MultiaddrProtocol::kP2p: {
      auto id = PeerId::from_bytes(value);
      if (!id.ok()) return corrupt("bad p2p peer id: " + id.status().message());
      return Status::Ok();
    }
    default:
      return Status::Ok();  // fixed-size values: any bytes are an address or a port
  }
}

std::string value_to_text(const MultiaddrComponent& c) {
  switch (c.protocol) {
    case MultiaddrProtocol::kIp4:
    case MultiaddrProtocol::kIp6: {
      char buf[INET6_ADDRSTRLEN];
      int family = c.protocol == MultiaddrProtocol::kIp4 ? AF_INET : AF_INET6;
      if (!inet_ntop(family, c.value.data(), buf, sizeof buf)) return "?";
      return buf;
    }
    case MultiaddrProtocol::kTcp:
      return std::to_string(get_u16_be(c.value.data()));
    case MultiaddrProtocol::kDns4:
    case MultiaddrProtocol::kDns6:
      return to_string(c.value);
    case MultiaddrProtocol::kP2p: {
      auto id = PeerId::from_bytes(c.value);
      return id.ok() ? id->to_string() : "?";
    }
    case MultiaddrProtocol::kP2pCircuit:
      return "";
  }
  return "?";
}

}  // namespace

Result<Multiaddr> Multiaddr::parse(std::string_view text) {
  if (text.size() > kMaxMultiaddrText) return too_large("multiaddr text over " + std::to_string(kMaxMultiaddrText) + " bytes");
  if (text.empty() || text[0] != '/') return invalid_argument("multiaddr must start with '/': '" + std::string(text) + "'");
  Multiaddr out;
  size_t pos = 1;
  auto next_part = [&]() -> std::optional<std::string_view> {
    if (pos > text.size()) return std::nullopt;
    size_t slash = text.find('/', pos);
    if (slash == std::string_view::npos) slash = text.size();
    std::string_view part = text.substr(pos, slash - pos);
    pos = slash + 1;
    return part;
  };
  while (pos <= text.size()) {
    auto name = next_part();
    if (!name || name->empty()) return invalid_argument("multiaddr '" + std::string(text) + "': empty protocol name");
    const ProtocolInfo* p = find_by_name(*name);
    if (!p) return invalid_argument("multiaddr: unknown protocol '" + std::string(*name) + "'");
    if (p->fixed_size == 0) {  // a flag such as /p2p-circuit: no value part follows
      out.components_.push_back({p->code, Bytes{}});
      continue;
    }
    auto value = next_part();
    if (!value || value->empty()) return invalid_argument("multiaddr: " + std::string(p->name) + " needs a value");
    NOLOCO_ASSIGN_OR_RETURN(Bytes bin, value_from_text(*p, *value));
    out.components_.push_back({p->code, std::move(bin)});
  }
  if (out.to_bytes().size() > kMaxMultiaddrBytes) {
    return too_large("multiaddr over " + std::to_string(kMaxMultiaddrBytes) + " bytes in binary form");
  }
  return out;
}

Result<Multiaddr> Multiaddr::from_bytes(ByteView bytes) {
  if (bytes.size() > kMaxMultiaddrBytes) return too_large("multiaddr over " + std::to_string(kMaxMultiaddrBytes) + " bytes");
  if (bytes.empty()) return corrupt("empty multiaddr");
  Multiaddr out;
  size_t pos = 0;
  while (pos < bytes.size()) {
    auto code = read_varint(bytes.subspan(pos));
    if (!code.ok()) return corrupt("multiaddr: bad protocol code: " + code.status().message());
    pos += code->consumed;
    const ProtocolInfo* p = find_by_code(code->value);
    if (!p) return corrupt("multiaddr: unknown protocol code " + std::to_string(code->value));
    size_t len;
    if (p->fixed_size >= 0) {
      len = static_cast<size_t>(p->fixed_size);
    } else {
      auto l = read_varint(bytes.subspan(pos));
      if (!l.ok()) return corrupt("multiaddr: bad value length: " + l.status().message());
      pos += l->consumed;
      if (l->value > bytes.size() - pos) return corrupt("multiaddr: value length past the end");
      len = static_cast<size_t>(l->value);
    }
    if (len > bytes.size() - pos) return corrupt("multiaddr: " + std::string(p->name) + " value truncated");
    ByteView value = bytes.subspan(pos, len);
    NOLOCO_RETURN_IF_ERROR(check_binary_value(*p, value));
    out.components_.push_back({p->code, Bytes(value.begin(), value.end())});
    pos += len;
  }
  return out;
}

Result<Multiaddr> Multiaddr::from_ip_tcp(std::string_view ip, uint16_t port) {
  std::string proto = ip.find(':') != std::string_view::npos ? "/ip6/" : "/ip4/";
  return parse(proto + std::string(ip) + "/tcp/" + std::to_string(port));
}

std::string Multiaddr::to_string() const {
  std::string out;
  for (const auto& c : components_) {
    out += '/';
    const ProtocolInfo* p = find_by_code(static_cast<uint64_t>(c.protocol));
    out += p->name;
    if (p->fixed_size == 0) continue;
    out += '/';
    out += value_to_text(c);
  }
  return out;
}

Bytes Multiaddr::to_bytes() const {
  Bytes out;
  for (const auto& c : components_) {
    put_varint(out, static_cast<uint64_t>(c.protocol));
    if (find_by_code(static_cast<uint64_t>(c.protocol))->fixed_size < 0) put_varint(out, c.value.size());
    append(out, c.value);
  }
  return out;
}

std::optional<std::string> Multiaddr::host() const {
  for (const auto& c : components_)
    if (is_host(c.protocol)) return value_to_text(c);
  return std::nullopt;
}

bool Multiaddr::host_is_dns() const {
  for (const auto& c : components_)
    if (is_host(c.protocol)) return is_dns(c.protocol);
  return false;
}

std::optional<uint16_t> Multiaddr::tcp_port() const {
  for (const auto& c : components_)
    if (c.protocol == MultiaddrProtocol::kTcp) return get_u16_be(c.value.data());
  return std::nullopt;
}

std::optional<PeerId> Multiaddr::peer_id() const {
  if (components_.empty() || components_.back().protocol != MultiaddrProtocol::kP2p) return std::nullopt;
  auto id = PeerId::from_bytes(components_.back().value);
  if (!id.ok()) return std::nullopt;
  return *id;
}

bool Multiaddr::is_circuit() const {
  for (const auto& c : components_)
    if (c.protocol == MultiaddrProtocol::kP2pCircuit) return true;
  return false;
}

Result<CircuitParts> Multiaddr::circuit_parts() const {
  size_t at = components_.size();
  for (size_t i = 0; i < components_.size(); ++i) {
    if (components_[i].protocol == MultiaddrProtocol::kP2pCircuit) {
      at = i;
      break;
    }
  }
  if (at == components_.size()) return invalid_argument("not a relay address: " + to_string());
  CircuitParts parts;
  parts.relay.components_.assign(components_.begin(), components_.begin() + static_cast<std::ptrdiff_t>(at));
  if (!parts.relay.peer_id() || !parts.relay.host() || !parts.relay.tcp_port()) {
    return invalid_argument("relay address needs /<host>/tcp/<port>/p2p/<relay> before /p2p-circuit: " + to_string());
  }
  const size_t rest = components_.size() - at - 1;
  if (rest == 1 && components_.back().protocol == MultiaddrProtocol::kP2p) {
    parts.target = peer_id();
  } else if (rest != 0) {
    return invalid_argument("after /p2p-circuit only /p2p/<target> is supported: " + to_string());
  }
  return parts;
}

Multiaddr Multiaddr::without_peer_id() const {
  Multiaddr out = *this;
  if (!out.components_.empty() && out.components_.back().protocol == MultiaddrProtocol::kP2p) out.components_.pop_back();
  return out;
}

Multiaddr Multiaddr::with_peer_id(const PeerId& id) const {
  Multiaddr out = without_peer_id();
  out.components_.push_back({MultiaddrProtocol::kP2p, id.bytes()});
  return out;
}

}  // namespace noloco::p2p
