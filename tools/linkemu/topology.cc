#include "tools/linkemu/topology.h"

#include <arpa/inet.h>

#include <algorithm>
#include <fstream>
#include <map>
#include <set>

#include <nlohmann/json.hpp>

namespace noloco::linkemu {
namespace {

using nlohmann::json;

constexpr size_t kMaxFileBytes = 16u << 20;

bool is_ipv4(const std::string& s) {
  in_addr a{};
  return inet_pton(AF_INET, s.c_str(), &a) == 1;
}

Result<Endpoint> parse_endpoint(const json& v, const std::string& where, bool port_zero_ok) {
  if (!v.is_string()) return invalid_argument(where + ": expected \"IP:PORT\"");
  const std::string s = v.get<std::string>();
  const auto colon = s.rfind(':');
  if (colon == std::string::npos) return invalid_argument(where + ": expected \"IP:PORT\", got \"" + s + "\"");
  Endpoint e{s.substr(0, colon), 0};
  if (!is_ipv4(e.ip)) return invalid_argument(where + ": not an IPv4 address: " + e.ip);
  const std::string port = s.substr(colon + 1);
  if (port.empty() || port.size() > 5 || port.find_first_not_of("0123456789") != std::string::npos ||
      std::stoul(port) > 65535) {
    return invalid_argument(where + ": bad port \"" + port + "\"");
  }
  e.port = static_cast<uint16_t>(std::stoul(port));
  if (e.port == 0 && !port_zero_ok) return invalid_argument(where + ": port 0 is not allowed here");
  return e;
}

Result<std::vector<double>> parse_times(const json& v, const std::string& where) {
  if (!v.is_array()) return invalid_argument(where + ": expected an array of seconds");
  std::vector<double> out;
  for (const auto& x : v) {
    if (!x.is_number()) return invalid_argument(where + ": expected numbers");
    out.push_back(x.get<double>());
  }
  std::sort(out.begin(), out.end());  // any order in the file; compared on reload
  return out;
}

// Sets the fields present in `obj` on top of `p` (partial objects override only what they name).
Status apply_link_fields(const json& obj, const std::string& where, LinkParams& p) {
  if (!obj.is_object()) return invalid_argument(where + ": expected an object");
  const std::map<std::string, double*> numbers = {
      {"delay_ms", &p.delay_ms},           {"jitter_ms", &p.jitter_ms},         {"rate_mbit", &p.rate_mbit},
      {"stall_every_s", &p.stall_every_s}, {"stall_ms", &p.stall_ms},           {"reset_every_s", &p.reset_every_s}};
  for (const auto& [key, v] : obj.items()) {
    const std::string at = where + "." + key;
    if (auto it = numbers.find(key); it != numbers.end()) {
      if (!v.is_number()) return invalid_argument(at + ": expected a number");
      *it->second = v.get<double>();
    } else if (key == "burst_kb") {
      if (!v.is_number_unsigned() || v.get<uint64_t>() > 65536) return invalid_argument(at + ": expected 1..65536");
      p.burst_kb = static_cast<uint32_t>(v.get<uint64_t>());
    } else if (key == "down") {
      if (!v.is_boolean()) return invalid_argument(at + ": expected true or false");
      p.down = v.get<bool>();
    } else if (key == "stall_at_s" || key == "reset_at_s") {
      auto t = parse_times(v, at);
      if (!t.ok()) return t.status();
      (key == "stall_at_s" ? p.stall_at_s : p.reset_at_s) = *t;
    } else {
      return invalid_argument(at + ": unknown link setting");
    }
  }
  return Status::Ok();
}

Status parse_nodes(const json& arr, Topology& t) {
  if (!arr.is_array() || arr.empty()) return invalid_argument("nodes: expected a non-empty array");
  if (arr.size() > Topology::kMaxNodes) return invalid_argument("nodes: more than 256 nodes");
  std::set<std::string> names, sources, proxies;
  for (size_t i = 0; i < arr.size(); ++i) {
    const std::string where = "nodes[" + std::to_string(i) + "]";
    const json& n = arr[i];
    if (!n.is_object()) return invalid_argument(where + ": expected an object");
    for (const auto& [key, v] : n.items()) {
      if (key != "name" && key != "listen" && key != "proxy" && key != "source") {
        return invalid_argument(where + "." + key + ": unknown node setting");
      }
    }
    NodeSpec s;
    if (!n.contains("name") || !n["name"].is_string() || n["name"].get<std::string>().empty()) {
      return invalid_argument(where + ".name: expected a non-empty string");
    }
    s.name = n["name"].get<std::string>();
    if (s.name.find("->") != std::string::npos || s.name.find('<') != std::string::npos) {
      return invalid_argument(where + ".name: may not contain '->' or '<'");
    }
    auto listen = parse_endpoint(n.value("listen", json()), where + ".listen", false);
    if (!listen.ok()) return listen.status();
    auto proxy = parse_endpoint(n.value("proxy", json()), where + ".proxy", true);
    if (!proxy.ok()) return proxy.status();
    s.listen = *listen;
    s.proxy = *proxy;
    s.source = s.listen.ip;
    if (n.contains("source")) {
      if (!n["source"].is_string() || !is_ipv4(n["source"].get<std::string>())) {
        return invalid_argument(where + ".source: expected an IPv4 address");
      }
      s.source = n["source"].get<std::string>();
    }
    if (!names.insert(s.name).second) return invalid_argument(where + ".name: duplicate " + s.name);
    // The proxy tells dialers apart by source IP, so two nodes may not share one.
    if (!sources.insert(s.source).second) return invalid_argument(where + ".source: duplicate " + s.source);
    if (s.proxy.port != 0 && !proxies.insert(s.proxy.to_string()).second) {
      return invalid_argument(where + ".proxy: duplicate " + s.proxy.to_string());
    }
    t.nodes.push_back(std::move(s));
  }
  return Status::Ok();
}

Result<size_t> node_index(const Topology& t, const std::string& name, const std::string& where) {
  for (size_t i = 0; i < t.nodes.size(); ++i) {
    if (t.nodes[i].name == name) return i;
  }
  return invalid_argument(where + ": unknown node \"" + name + "\"");
}

// "a->b" and "a<->b" overrides on top of the default; one-way entries win over two-way ones.
Status parse_links(const json& links, const LinkParams& def, Topology& t) {
  const size_t n = t.nodes.size();
  t.links.assign(n * n, def);
  if (!links.is_null() && !links.is_object()) return invalid_argument("links: expected an object");
  for (const bool one_way_pass : {false, true}) {
    if (links.is_null()) break;
    for (const auto& [key, v] : links.items()) {
      const std::string where = "links.\"" + key + "\"";
      const auto both = key.find("<->");
      const auto one = key.find("->");
      if (one == std::string::npos) return invalid_argument(where + ": expected \"a->b\" or \"a<->b\"");
      const bool two_way = both != std::string::npos;
      if (two_way == one_way_pass) continue;
      const std::string a = key.substr(0, two_way ? both : one);
      const std::string b = key.substr(two_way ? both + 3 : one + 2);
      auto ia = node_index(t, a, where);
      if (!ia.ok()) return ia.status();
      auto ib = node_index(t, b, where);
      if (!ib.ok()) return ib.status();
      if (*ia == *ib) return invalid_argument(where + ": a node has no link to itself");
      NOLOCO_RETURN_IF_ERROR(apply_link_fields(v, where, t.links[*ia * n + *ib]));
      if (two_way) NOLOCO_RETURN_IF_ERROR(apply_link_fields(v, where, t.links[*ib * n + *ia]));
    }
  }
  for (size_t i = 0; i < t.links.size(); ++i) {
    Status st = t.links[i].validate();
    if (!st.ok()) return st.context(t.nodes[i / n].name + "->" + t.nodes[i % n].name);
  }
  return Status::Ok();
}

Result<Topology> parse_document(const json& doc) {
  if (!doc.is_object()) return invalid_argument("topology: expected a JSON object");
  for (const auto& [key, v] : doc.items()) {
    if (key != "seed" && key != "queue_limit_kb" && key != "nodes" && key != "default" && key != "links") {
      return invalid_argument(key + ": unknown topology key");
    }
  }
  Topology t;
  if (doc.contains("seed")) {
    if (!doc["seed"].is_number_unsigned()) return invalid_argument("seed: expected a non-negative integer");
    t.seed = doc["seed"].get<uint64_t>();
  }
  if (doc.contains("queue_limit_kb")) {
    const json& q = doc["queue_limit_kb"];
    if (!q.is_number_unsigned() || q.get<uint64_t>() < 64 || q.get<uint64_t>() > (1u << 20)) {
      return invalid_argument("queue_limit_kb: expected 64..1048576");
    }
    t.queue_limit_bytes = static_cast<size_t>(q.get<uint64_t>()) * 1024;
  }
  NOLOCO_RETURN_IF_ERROR(parse_nodes(doc.value("nodes", json()), t));
  LinkParams def;
  if (doc.contains("default")) NOLOCO_RETURN_IF_ERROR(apply_link_fields(doc["default"], "default", def));
  NOLOCO_RETURN_IF_ERROR(parse_links(doc.value("links", json()), def, t));
  return t;
}

}  // namespace

std::optional<size_t> Topology::node_by_source(const std::string& ip) const {
  for (size_t i = 0; i < nodes.size(); ++i) {
    if (nodes[i].source == ip) return i;
  }
  return std::nullopt;
}

Result<Topology> parse_topology(std::string_view json_text) {
  json doc = json::parse(json_text, nullptr, false);
  if (doc.is_discarded()) return invalid_argument("topology: not valid JSON");
  try {
    return parse_document(doc);
  } catch (const std::exception& e) {  // a value of an unexpected type deep inside
    return invalid_argument(std::string("topology: ") + e.what());
  }
}

Result<Topology> load_topology(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return not_found("cannot open topology file " + path);
  std::string text;
  char buf[65536];
  while (in.read(buf, sizeof buf) || in.gcount() > 0) {
    text.append(buf, static_cast<size_t>(in.gcount()));
    if (text.size() > kMaxFileBytes) return too_large("topology file " + path + " is over 16 MiB");
  }
  auto t = parse_topology(text);
  if (!t.ok()) return t.status().context(path);
  return t;
}

}  // namespace noloco::linkemu
