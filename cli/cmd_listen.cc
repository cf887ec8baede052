// `noloco listen [--key FILE] [--listen MULTIADDR] [--psk FILE] [--relay] [--reserve-on RELAY]`:
// serves identify, ping, /noloco/time/1.0.0 and AutoNAT dial-backs (so `noloco doctor` can test
// reachability against it), and with --relay circuit relay v2 for others.
// The first line of stdout is the full dialable address (with /p2p/<id>), flushed at once so
// scripts can read it; logs go to stderr. Runs until SIGINT/SIGTERM, then exits 0.
#include <cstdio>
#include <memory>
#include <string>

#include "cli/commands.h"
#include "cli/p2p_flags.h"
#include "p2p/host_tools.h"

namespace noloco::cli {

Command register_listen(CLI::App& app) {
  auto* sub = app.add_subcommand("listen", "Serve identify, ping, time and AutoNAT dial-backs on a multiaddr until interrupted");
  struct Flags {
    std::string key;
    std::string listen = "/ip4/127.0.0.1/tcp/0";
    std::string psk;
    bool relay = false;
    std::string reserve_on;
  };
  auto f = std::make_shared<Flags>();
  sub->add_option("--key", f->key, "Identity key file (default: a fresh ephemeral identity)");
  sub->add_option("--listen", f->listen, "Multiaddr to listen on; port 0 picks a free port")->capture_default_str();
  sub->add_option("--psk", f->psk, "Private-network swarm key file (/key/swarm/psk/1.0.0/)");
  sub->add_flag("--relay", f->relay, "Relay for others (circuit relay v2 hop, default limits; docs/protocols/relay.md)");
  sub->add_option("--reserve-on", f->reserve_on,
                  "Reserve on this relay (/ip4/.../tcp/.../p2p/<relay>) and print 'relayed <circuit address>'");
  return {sub, [f] {
            auto id = identity_from_flag(f->key);
            if (!id.ok()) return fail(id.status());
            auto addr = p2p::Multiaddr::parse(f->listen);
            if (!addr.ok()) return fail(addr.status().context("--listen"));
            p2p::ListenToolOptions opt;
            opt.listen = *addr;
            if (Status st = apply_psk_flag(f->psk, opt.host); !st.ok()) return fail(st);
            opt.on_listening = [](const p2p::Multiaddr& bound) {
              std::printf("%s\n", bound.to_string().c_str());
              std::fflush(stdout);
            };
            opt.host.autonat = p2p::HostOptions::Autonat{};  // rate-limited; dials back only the asker's IP
            if (f->relay) opt.host.relay = p2p::relay::RelayOptions{};
            if (!f->reserve_on.empty()) {
              auto relay = p2p::Multiaddr::parse(f->reserve_on);
              if (!relay.ok()) return fail(relay.status().context("--reserve-on"));
              opt.reserve_on = *relay;
              opt.on_reserved = [](const p2p::Multiaddr& circuit) {
                std::printf("relayed %s\n", circuit.to_string().c_str());
                std::fflush(stdout);
              };
            }
            Status st = p2p::run_listen_tool(*id, opt);
            if (!st.ok()) return fail(st);
            return 0;
          }};
}

}  // namespace noloco::cli
