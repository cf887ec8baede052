// `noloco listen [--key FILE] [--listen MULTIADDR] [--psk FILE] [--relay] [--reserve-on RELAY]
//               [--autonat-ask PEER] [--hole-punch]`:
// serves identify, ping, /noloco/time/1.0.0 and AutoNAT v1 dial-backs (so `noloco doctor` can
// test reachability against it), with --relay circuit relay v2 for others, with --hole-punch DCUtR.
// The first line of stdout is the full dialable address (with /p2p/<id>), flushed at once so
// scripts can read it; logs go to stderr. Runs until SIGINT/SIGTERM, then exits 0 (printing the
// hole-punch counters with --hole-punch).
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
    bool autonat = false;
    std::string autonat_ask;
    bool hole_punch = false;
  };
  auto f = std::make_shared<Flags>();
  sub->add_option("--key", f->key, "Identity key file (default: a fresh ephemeral identity)");
  sub->add_option("--listen", f->listen, "Multiaddr to listen on; port 0 picks a free port")->capture_default_str();
  sub->add_option("--psk", f->psk, "Private-network swarm key file (/key/swarm/psk/1.0.0/)");
  sub->add_flag("--relay", f->relay, "Relay for others (circuit relay v2 hop, default limits; docs/protocols/relay.md)");
  sub->add_option("--reserve-on", f->reserve_on,
                  "Reserve on this relay (/ip4/.../tcp/.../p2p/<relay>) and print 'relayed <circuit address>'");
  sub->add_flag("--autonat", f->autonat, "Serve AutoNAT v1 dial-backs (docs/protocols/autonat.md); always on now, kept for scripts");
  sub->add_option("--autonat-ask", f->autonat_ask,
                  "Connect to this peer, ask it to dial us back (AutoNAT v1) and print "
                  "'autonat reachability=... public_votes=N private_votes=N addr=...' (implies --autonat)");
  sub->add_flag("--hole-punch", f->hole_punch,
                "DCUtR hole punching (docs/protocols/dcutr.md); on exit prints 'holepunch attempts=A succeeded=S failed=F'");
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
            if (f->autonat || !f->autonat_ask.empty()) {
              opt.host.autonat = p2p::HostOptions::Autonat{};
              // One server is asked, so one vote decides (the default wants three).
              if (!f->autonat_ask.empty()) opt.host.autonat->client.min_votes = 1;
            }
            if (!f->autonat_ask.empty()) {
              auto server = p2p::Multiaddr::parse(f->autonat_ask);
              if (!server.ok()) return fail(server.status().context("--autonat-ask"));
              opt.autonat_ask = *server;
              opt.on_reachability = [](const p2p::autonat::ReachabilityStatus& st) {
                std::printf("autonat reachability=%s public_votes=%zu private_votes=%zu addr=%s\n",
                            p2p::autonat::reachability_name(st.reachability), st.public_votes, st.private_votes,
                            st.public_addr ? st.public_addr->to_string().c_str() : "none");
                std::fflush(stdout);
              };
            }
            if (f->hole_punch) {
              opt.host.hole_punch = true;
              opt.on_stopping = [](const p2p::Host& host) {
                const auto s = host.hole_punch_stats();
                std::printf("holepunch attempts=%llu succeeded=%llu failed=%llu\n",
                            static_cast<unsigned long long>(s.attempts), static_cast<unsigned long long>(s.succeeded),
                            static_cast<unsigned long long>(s.failed));
                std::fflush(stdout);
              };
            }
            Status st = p2p::run_listen_tool(*id, opt);
            if (!st.ok()) return fail(st);
            return 0;
          }};
}

}  // namespace noloco::cli
