// Which addresses go into an invite (`noloco init-run`) and which address a joining node tells
// its peers to dial (`noloco join`) when it listens on 0.0.0.0 (docs/invite.md). Pure functions:
// the machine's facts (its interfaces, its routes) are passed in.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "common/status.h"
#include "p2p/identity.h"
#include "p2p/multiaddr.h"

namespace noloco::cli {

inline constexpr size_t kMaxInviteInterfaces = 4;  // local IPs put into an invite by default

// The invite's bootstrap addresses for the node with id `self`: each --announce address, else
// the --listen address, else (listen on 0.0.0.0) one per local IPv4 address (at most
// kMaxInviteInterfaces); all with the listen port, which must not be 0, and /p2p/<self>.
Result<std::vector<p2p::Multiaddr>> invite_bootstrap(const std::string& listen, const std::vector<std::string>& announce,
                                                     const std::vector<std::string>& local_ipv4s,
                                                     const p2p::PeerId& self);

// The address a joining node announces: `announce` when given; empty (the bound address) when it
// listens on a specific IP; for 0.0.0.0 with a fixed port, the local IP that routes to the first
// IPv4 bootstrap peer (`route_to` asks the kernel). kInvalidArgument saying to give --announce
// when none of that works.
using RouteFn = std::function<Result<std::string>(const std::string& remote_ipv4)>;
Result<std::string> join_announce(const std::string& listen, const std::string& announce,
                                  const std::vector<p2p::Multiaddr>& bootstrap, const RouteFn& route_to);

}  // namespace noloco::cli
