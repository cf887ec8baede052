// The linkemu topology file (JSON, docs/linkemu.md): the nodes, where each really listens,
// where peers dial it (the proxy), the source IP it dials from, and the link settings of every
// ordered pair. Parsing only: no sockets here.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "tools/linkemu/link_model.h"

namespace noloco::linkemu {

struct Endpoint {
  std::string ip;  // dotted IPv4
  uint16_t port = 0;
  std::string to_string() const { return ip + ":" + std::to_string(port); }
  bool operator==(const Endpoint&) const = default;
};

struct NodeSpec {
  std::string name;
  Endpoint listen;     // where the node really listens
  Endpoint proxy;      // where peers dial it (linkemu listens here); port 0: any (tests)
  std::string source;  // the IP the node dials from (default: listen.ip)
  bool operator==(const NodeSpec&) const = default;
};

struct Topology {
  static constexpr size_t kMaxNodes = 256;

  uint64_t seed = 1;
  size_t queue_limit_bytes = 4u << 20;  // per connection and direction: reading stops above it
  std::vector<NodeSpec> nodes;
  std::vector<LinkParams> links;  // nodes.size()^2, row = sender, column = receiver

  const LinkParams& link(size_t from, size_t to) const { return links[from * nodes.size() + to]; }
  std::optional<size_t> node_by_source(const std::string& ip) const;
};

// Errors name the offending key ("links.\"a->b\".delay_ms: ...").
Result<Topology> parse_topology(std::string_view json_text);
Result<Topology> load_topology(const std::string& path);

}  // namespace noloco::linkemu
