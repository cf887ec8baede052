// linkemu --topology FILE: the user-space link emulator (docs/linkemu.md). Listens on every
// node's proxy address and forwards to the node's real address with the configured delay,
// jitter, bandwidth, stalls and resets. SIGHUP re-reads FILE (link settings only); SIGINT or
// SIGTERM stops. Once listening, prints "proxy NAME IP:PORT" per node and then "linkemu ready"
// on stdout; logs go to stderr.
#include <asio/io_context.hpp>
#include <asio/signal_set.hpp>

#include <csignal>
#include <cstdio>
#include <cstring>
#include <string>

#include "common/log.h"
#include "tools/linkemu/proxy.h"
#include "tools/linkemu/topology.h"

using namespace noloco;
using namespace noloco::linkemu;

namespace {

int usage() {
  std::fprintf(stderr, "usage: linkemu --topology FILE [--log-level LEVEL]\n");
  return 2;
}

void wait_for_signals(asio::signal_set& signals, Proxy& proxy, const std::string& path) {
  signals.async_wait([&signals, &proxy, path](const asio::error_code& ec, int sig) {
    if (ec) return;
    if (sig != SIGHUP) {
      NLOG_INFO("linkemu: signal {}, stopping", sig);
      proxy.stop();
      signals.cancel();
      return;
    }
    auto t = load_topology(path);
    Status st = t.ok() ? proxy.apply(std::move(*t)) : t.status();
    if (!st.ok()) NLOG_ERROR("linkemu: reload refused, keeping the previous links: {}", st.to_string());
    wait_for_signals(signals, proxy, path);
  });
}

}  // namespace

int main(int argc, char** argv) {
  std::string path, level = "info";
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--topology") && i + 1 < argc) path = argv[++i];
    else if (!std::strcmp(argv[i], "--log-level") && i + 1 < argc) level = argv[++i];
    else return usage();
  }
  if (path.empty()) return usage();
  configure_logging(level);
  std::signal(SIGPIPE, SIG_IGN);
  auto topology = load_topology(path);
  if (!topology.ok()) {
    std::fprintf(stderr, "linkemu: %s\n", topology.status().to_string().c_str());
    return 2;
  }
  asio::io_context io;
  asio::signal_set signals(io, SIGHUP, SIGINT, SIGTERM);
  Proxy proxy(io, std::move(*topology), [](const std::string& line) { NLOG_INFO("linkemu: {}", line); });
  if (Status st = proxy.start(); !st.ok()) {
    std::fprintf(stderr, "linkemu: %s\n", st.to_string().c_str());
    return 1;
  }
  // stdout, for scripts: where each node is dialed (the bound port when the file said 0).
  for (size_t i = 0; i < proxy.topology().nodes.size(); ++i) {
    const auto& n = proxy.topology().nodes[i];
    std::printf("proxy %s %s\n", n.name.c_str(), proxy.proxy_endpoint(i).to_string().c_str());
    NLOG_INFO("linkemu: {} listens at {}, dialed at {}, dials from {}", n.name, n.listen.to_string(),
              proxy.proxy_endpoint(i).to_string(), n.source);
  }
  std::printf("linkemu ready\n");
  std::fflush(stdout);
  wait_for_signals(signals, proxy, path);
  io.run();
  return 0;
}
