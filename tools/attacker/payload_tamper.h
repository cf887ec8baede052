// The hostile payloads and state blobs of noloco-attacker (docs/attacks.md): hooks for the real
// node's publish seam (trainer/node/publish_tamper.h). Everything else the attacking node does is
// the honest node's code.
#pragma once

#include <cstdint>
#include <string>

#include "common/status.h"
#include "trainer/node/publish_tamper.h"

namespace noloco::attacker {

// flip | scale100 | noise | replay | wrong-run | poison-state; `ahead`: how many outer steps past
// its own the poison-state attacker claims to be (so that honest nodes sync from it).
Result<node::PublishTamper> make_payload_tamper(const std::string& attack, uint64_t seed, uint64_t ahead);

bool is_node_attack(const std::string& attack);

}  // namespace noloco::attacker
