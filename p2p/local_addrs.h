// This machine's own IPv4 addresses, for the address a node tells others to dial when it listens
// on 0.0.0.0 (`noloco init-run`, `noloco join`; docs/invite.md). Plain POSIX, no packets sent.
#pragma once

#include <string>
#include <vector>

#include "common/status.h"

namespace noloco::p2p {

// The IPv4 addresses of interfaces that are up, loopback excluded, in the kernel's order.
std::vector<std::string> local_ipv4_addresses();

// The local IPv4 address the kernel would use to reach `ipv4` (a UDP socket is connected, which
// only consults the routing table, and closed). kInvalidArgument when `ipv4` is not an IPv4
// literal, kIoError when there is no route.
Result<std::string> local_ipv4_towards(const std::string& ipv4);

}  // namespace noloco::p2p
