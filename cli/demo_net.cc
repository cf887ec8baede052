// The demo's emulated network (demo_net.h).
#include "cli/demo_net.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>

#include <nlohmann/json.hpp>

#include "common/durable_file.h"

namespace noloco::cli {
namespace {

namespace fs = std::filesystem;

std::string node_ip(int net, int i) { return "127.0." + std::to_string(net) + "." + std::to_string(i + 1); }

// A port the kernel says is free on 127.0.1.1 (each node has its own IP, so one port serves all).
Result<uint16_t> free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return io_error("socket() failed");
  sockaddr_in a{};
  a.sin_family = AF_INET;
  ::inet_pton(AF_INET, "127.0.1.1", &a.sin_addr);
  socklen_t len = sizeof a;
  const bool ok = ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 &&
                  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0;
  ::close(fd);
  if (!ok) return io_error("cannot bind 127.0.1.1:0 for the emulated network");
  return ntohs(a.sin_port);
}

// Access classes of the hetero profile (one-way delay ms, Mbit/s): node i has class i % 3 and a
// pair takes the worse of its two ends, as make_topology.py does.
constexpr double kHetero[3][2] = {{10.0, 1000.0}, {50.0, 100.0}, {150.0, 20.0}};

nlohmann::json topology_json(const std::string& profile, int peers, uint16_t port) {
  nlohmann::json t;
  t["seed"] = 1;
  for (int i = 0; i < peers; ++i)
    t["nodes"].push_back({{"name", "n" + std::to_string(i)},
                          {"listen", node_ip(1, i) + ":" + std::to_string(port)},
                          {"proxy", node_ip(2, i) + ":" + std::to_string(port)}});
  if (profile == "uniform") t["default"] = {{"delay_ms", 50.0}, {"rate_mbit", 100.0}};
  if (profile == "lan") t["default"] = {{"delay_ms", 0.25}, {"rate_mbit", 1000.0}};
  if (profile != "hetero") return t;
  t["default"] = nlohmann::json::object();
  for (int i = 0; i < peers; ++i)
    for (int j = i + 1; j < peers; ++j)
      t["links"]["n" + std::to_string(i) + "<->n" + std::to_string(j)] = {
          {"delay_ms", std::max(kHetero[i % 3][0], kHetero[j % 3][0])},
          {"rate_mbit", std::min(kHetero[i % 3][1], kHetero[j % 3][1])}};
  return t;
}

}  // namespace

Result<DemoNet> plan_demo_net(const std::string& profile, int peers, const fs::path& dir,
                              const std::string& noloco_exe, const std::string& linkemu_path) {
  if (profile != "uniform" && profile != "hetero" && profile != "lan")
    return invalid_argument("--net must be uniform, hetero or lan (not '" + profile + "')");
  DemoNet net;
  net.profile = profile;
  // A build tree has cli/noloco next to tools/linkemu/linkemu.
  net.linkemu = !linkemu_path.empty()
                    ? linkemu_path
                    : (fs::path(noloco_exe).parent_path().parent_path() / "tools" / "linkemu" / "linkemu").string();
  if (::access(net.linkemu.c_str(), X_OK) != 0)
    return not_found("no linkemu binary at " + net.linkemu +
                     " (build it: cmake --build --preset release --target linkemu; or give --linkemu PATH)");
  NOLOCO_ASSIGN_OR_RETURN(net.port, free_port());
  net.topology = dir / "topology.json";
  NOLOCO_RETURN_IF_ERROR(
      write_file_durably(net.topology, as_bytes(topology_json(profile, peers, net.port).dump(2) + "\n"), {}));
  return net;
}

NodeLaunch linkemu_launch(const DemoNet& net, const fs::path& dir) {
  NodeLaunch l;
  l.name = "linkemu";
  l.exe = net.linkemu;
  l.args = {"--topology", net.topology.string()};
  l.log = dir / "linkemu.log";
  return l;
}

void put_behind_linkemu(NodeLaunch& node, const DemoNet& net, int i) {
  const std::string port = std::to_string(net.port);
  node.args.insert(node.args.end(), {"--listen", "/ip4/" + node_ip(1, i) + "/tcp/" + port, "--dial-from",
                                     node_ip(1, i), "--announce", "/ip4/" + node_ip(2, i) + "/tcp/" + port});
}

std::string describe_demo_net(const DemoNet& net) {
  if (net.profile == "uniform") return "emulated links (linkemu): 50 ms one-way, 100 Mbit/s between every pair";
  if (net.profile == "lan") return "emulated links (linkemu): 0.25 ms one-way, 1 Gbit/s between every pair";
  return "emulated links (linkemu): node i has 10 ms/1 Gbit, 50 ms/100 Mbit or 150 ms/20 Mbit by i mod 3; "
         "a pair gets the worse end";
}

}  // namespace noloco::cli
