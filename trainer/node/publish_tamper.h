// A seam for tools/attacker (docs/attacks.md), and nothing else: lets a program that joins a run
// with the real node code rewrite what that node publishes for others, so that the hostile part
// of an attack lives in tools/attacker while everything else is the honest node. Every honest node
// (`noloco run`, `noloco join`, the tests) leaves it empty, and an empty hook changes nothing.
//
// Torch-free: the payload as framed for the wire, the state blob as encoded.
#pragma once

#include <cstdint>
#include <functional>

#include "common/bytes.h"
#include "common/status.h"
#include "trainer/node/exchange_wire.h"

namespace noloco::node {

struct PublishTamper {
  // Our exchange payload, just built, before it is published (answers and calls both send it).
  std::function<Result<WirePayload>(WirePayload built)> payload;
  // Our state-sync blob and the steps it is served with, before its SHA-256 is taken.
  std::function<Status(Bytes& blob, uint64_t& outer_step, uint64_t& inner_step)> state;
  // The outer step our membership record claims, from the one we are at.
  std::function<uint64_t(uint64_t outer_step)> advertised_outer_step;
};

}  // namespace noloco::node
