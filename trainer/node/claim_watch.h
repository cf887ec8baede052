// Progress claimed without a payload (docs/defences.md, "Claims without a payload"): a peer's
// signed membership record says which outer step it has reached, and a caller picks partners by
// it. An honest node answers an exchange with "no snapshot yet" (kRefusalNoPayloadYet) only while
// it is fresh: since its process started it has published no payload and not moved its claim
// (NodeNetworkImpl::fresh). Every later gap is a different refusal (kRefusalPayloadBusy). So one
// process (one record epoch) says "no snapshot yet" at one claimed step only, and a peer that
// says it at two different claimed steps of one epoch advertises progress it cannot serve: the
// Sybil that draws calls by claiming the swarm's step and wastes each one (docs/attacks.md).
//
// The claim and epoch are what the caller's view held when it called. The view can lag the
// peer's real claim, never lead it, and an epoch's records all come from one process; a restart
// is a new epoch and starts afresh here.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>

#include "trainer/node/partner_choice.h"

namespace noloco::node {

class ClaimWatch {
 public:
  // A "no snapshot yet" from `peer` whose record (epoch, outer step) we called it on. Returns why
  // this proves a false claim, or nothing; each proof moves the reference to this claim, so the
  // next proof needs the claim to move again.
  std::optional<std::string> refused_without_payload(PeerRef peer, uint64_t epoch, uint64_t claimed_outer) {
    auto [it, fresh] = seen_.try_emplace(peer, Seen{epoch, claimed_outer});
    if (fresh) return std::nullopt;
    Seen& s = it->second;
    if (s.epoch != epoch) {  // another process of that identity: its own first claim counts anew
      s = Seen{epoch, claimed_outer};
      return std::nullopt;
    }
    if (s.claimed_outer == claimed_outer) return std::nullopt;
    std::string why = "claims outer step " + std::to_string(claimed_outer) + " without a payload (it had none at " +
                      std::to_string(s.claimed_outer) + " either, same process)";
    s.claimed_outer = claimed_outer;
    return why;
  }

  // True when `peer` said "no snapshot yet" (in the epoch we last saw) at a claim other than the
  // one it now advertises: worth calling again before anyone else. An honest fresh process moves
  // its claim only after it has published a payload, so it answers with that; a false claimant
  // says "no snapshot yet" again, at a second claimed step, and is proven. Without this a Sybil
  // identity that a node happened to call once was never called again, never proven and never
  // banned (the attack matrix of 2026-12-04: 98 of 111 and 112 of 150 such pairs banned).
  bool recheck_due(PeerRef peer, uint64_t advertised_outer) const {
    auto it = seen_.find(peer);
    return it != seen_.end() && it->second.claimed_outer != advertised_outer;
  }
  // The peer answered with a payload: it has one, nothing to recheck.
  void served(PeerRef peer) { seen_.erase(peer); }

 private:
  struct Seen {
    uint64_t epoch = 0;
    uint64_t claimed_outer = 0;  // at the last "no snapshot yet"
  };
  std::map<PeerRef, Seen> seen_;
};

}  // namespace noloco::node
