// Addresses that sent us liars (docs/defences.md, "Tainted addresses"). Identities cost nothing
// and an address does, so the per-address limit (p2p/address_limits.h) bounds how many identities
// one machine holds in our connection table at once; it does not stop that machine from bringing
// the next identity as soon as we ban one. Each of those must then be proven anew, and a proof
// takes a Sybil identity at least two calls at moving claims (claim_watch.h): identities let in
// late in a run were never proven at all (the attack matrix of 2026-12-04: 27 of the 45 Sybil
// pairs left unbanned with two attackers were first met after their address's second ban).
//
// So, once `bans_to_taint` identities connected directly from one address bucket (an IPv4
// address, an IPv6 /64: AddressLimiter::bucket_of) are banned, the bucket is tainted, and every
// other identity directly connected from it is banned on sight, unless it has served us a
// well-formed payload (an honest node sharing a NAT or a carrier's address with the liars, that
// has already shown it trains). GossipSub v1.1 scores peers down for sharing an IP with many
// others (libp2p/specs, pubsub/gossipsub/gossipsub-v1.1.md, "P6: IP Colocation Factor"); this
// acts only on evidence: banned identities, each banned for what it did.
//
// Only direct connections count (a relayed connection's address is the relay's), and only the
// addresses of connections the identity really holds (a record's addresses are its own word and
// could name someone else's). Sans-IO; the caller supplies the buckets. In memory only: after a
// restart an address is tainted again by two fresh bans.
#pragma once

#include <cstddef>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace noloco::node {

// The strike a peer banned for its address gets: a ban on its own, whatever strikes_to_ban is.
constexpr double kTaintStrike = 1e6;

template <class Peer>
class AddressTaint {
 public:
  static constexpr size_t kMaxVouched = 4096;  // memory bound: a vouch is only an exemption

  explicit AddressTaint(size_t bans_to_taint = 2) : bans_to_taint_(bans_to_taint) {}

  // `peer` was banned while connected directly from `buckets`. Returns the buckets this ban
  // tainted (each once).
  std::vector<std::string> on_banned(const Peer& peer, const std::vector<std::string>& buckets) {
    std::vector<std::string> now_tainted;
    for (const auto& b : buckets) {
      if (b.empty() || tainted(b)) continue;
      auto& who = banned_from_[b];
      who.insert(peer);
      if (who.size() >= bans_to_taint_) {
        tainted_.insert(b);
        banned_from_.erase(b);
        now_tainted.push_back(b);
      }
    }
    return now_tainted;
  }

  // `peer` served us a payload that passed the wire checks: never banned for its address.
  void vouch(const Peer& peer) {
    if (vouched_.size() < kMaxVouched) vouched_.insert(peer);
  }

  bool tainted(const std::string& bucket) const { return tainted_.count(bucket) > 0; }
  bool any() const { return !tainted_.empty(); }

  // Why `peer`, connected directly from `buckets`, is banned for its address; nothing when none
  // of them is tainted or the peer is vouched for.
  std::optional<std::string> judge(const Peer& peer, const std::vector<std::string>& buckets) const {
    if (vouched_.count(peer)) return std::nullopt;
    for (const auto& b : buckets)
      if (!b.empty() && tainted(b))
        return "connected from " + b + ", an address " + std::to_string(bans_to_taint_) +
               " banned identities came from, without having served a payload";
    return std::nullopt;
  }

 private:
  size_t bans_to_taint_;
  std::map<std::string, std::set<Peer>> banned_from_;  // untainted buckets: their banned identities
  std::set<std::string> tainted_;
  std::set<Peer> vouched_;
};

}  // namespace noloco::node
