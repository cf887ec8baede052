// `noloco ping MULTIADDR [--key FILE] [--psk FILE] [--count N] [--dial-from IP]
//              [--hole-punch --listen MULTIADDR [--wait-direct S]]`: dials a peer and pings it.
// With --hole-punch (DCUtR) and --wait-direct, a relayed dial waits for the upgrade to a direct
// connection, prints 'direct <address>' and pings over it.
// One line per reply on stdout; on failure one line on stderr saying why (unreachable,
// handshake failed, peer id mismatch, protocol not supported, timeout) and a non-zero exit.
#include <cstdio>
#include <memory>
#include <string>

#include "cli/commands.h"
#include "cli/p2p_flags.h"
#include "p2p/host_tools.h"

namespace noloco::cli {

Command register_ping(CLI::App& app) {
  auto* sub = app.add_subcommand("ping", "Dial a peer and measure round trips with /ipfs/ping/1.0.0");
  struct Flags {
    std::string addr;
    std::string key;
    std::string psk;
    std::string dial_from;
    int count = 1;
    double timeout_s = 10;
    bool hole_punch = false;
    std::string listen;
    double wait_direct_s = 0;
  };
  auto f = std::make_shared<Flags>();
  sub->add_option("multiaddr", f->addr, "Peer address, e.g. /ip4/127.0.0.1/tcp/4001/p2p/12D3KooW...")->required();
  sub->add_option("--key", f->key, "Identity key file (default: a fresh ephemeral identity)");
  sub->add_option("--psk", f->psk, "Private-network swarm key file (/key/swarm/psk/1.0.0/)");
  sub->add_option("--dial-from", f->dial_from, "Source IP of the connection (e.g. a node's address behind linkemu)");
  sub->add_option("--count", f->count, "Number of pings")->capture_default_str()->check(CLI::Range(1, 1000000));
  sub->add_option("--timeout", f->timeout_s, "Seconds allowed for the dial and for each ping")
      ->capture_default_str()
      ->check(CLI::Range(0.001, 3600.0));
  sub->add_flag("--hole-punch", f->hole_punch, "DCUtR hole punching (docs/protocols/dcutr.md); needs --listen");
  sub->add_option("--listen", f->listen, "Also listen here (DCUtR dials from, and offers, this port)");
  sub->add_option("--wait-direct", f->wait_direct_s,
                  "After connecting, wait up to this many seconds for a direct connection (prints 'direct <address>')")
      ->check(CLI::Range(0.0, 3600.0));
  return {sub, [f] {
            auto id = identity_from_flag(f->key);
            if (!id.ok()) return fail(id.status());
            auto addr = p2p::Multiaddr::parse(f->addr);
            if (!addr.ok()) return fail(addr.status().context("address"));
            p2p::PingToolOptions opt;
            opt.target = *addr;
            opt.count = f->count;
            const auto timeout = std::chrono::duration_cast<Duration>(std::chrono::duration<double>(f->timeout_s));
            opt.host.dial_timeout = timeout;
            opt.host.ping_timeout = timeout;
            opt.host.dial_from = f->dial_from;
            if (Status st = apply_psk_flag(f->psk, opt.host); !st.ok()) return fail(st);
            if (f->hole_punch && f->listen.empty()) return fail(invalid_argument("--hole-punch needs --listen"));
            opt.host.hole_punch = f->hole_punch;
            if (!f->listen.empty()) {
              auto listen = p2p::Multiaddr::parse(f->listen);
              if (!listen.ok()) return fail(listen.status().context("--listen"));
              opt.listen = *listen;
            }
            opt.wait_direct = std::chrono::duration_cast<Duration>(std::chrono::duration<double>(f->wait_direct_s));
            opt.on_direct = [](const p2p::Multiaddr& addr) {
              std::printf("direct %s\n", addr.to_string().c_str());
              std::fflush(stdout);
            };
            opt.on_reply = [](const p2p::PeerId& peer, int seq, Duration rtt) {
              std::printf("reply from %s: seq=%d time=%.3f ms\n", peer.to_string().c_str(), seq,
                          std::chrono::duration<double, std::milli>(rtt).count());
              std::fflush(stdout);
            };
            opt.on_identify = [](const p2p::PeerId&, const p2p::IdentifyInfo& info) {
              std::string protocols;
              for (const auto& p : info.protocols) protocols += (protocols.empty() ? "" : ",") + p;
              std::fprintf(stderr, "identify: agent=%s protocols=%s\n", info.agent_version.c_str(), protocols.c_str());
            };
            Status st = p2p::run_ping_tool(*id, opt);
            if (!st.ok()) {
              std::fprintf(stderr, "error: %s\n", st.message().c_str());
              return 1;
            }
            return 0;
          }};
}

}  // namespace noloco::cli
