// Membership gossip (/noloco/membership/1.0.0): who is in the run and alive, without a server.
//
// Every node signs a small PeerRecord about itself (addresses, run id, outer step, throughput,
// and a heartbeat that grows while it runs). Nodes push-pull their views with random peers; a
// record is believed only if its signature checks against the key inside its PeerId, it names
// our run, and it is newer than what we hold. A peer whose heartbeat stops growing is suspected
// (no longer offered as a partner) and later forgotten. This file is the sans-IO core: bytes in,
// bytes out, time from a Clock. The wire layout is in docs/protocols/membership.md.
#pragma once

#include <cstdint>
#include <optional>
#include <random>
#include <string>
#include <unordered_map>
#include <vector>

#include "common/bytes.h"
#include "common/clock.h"
#include "common/status.h"
#include "p2p/identity.h"

namespace noloco::p2p {

inline constexpr std::string_view kMembershipProtocolId = "/noloco/membership/1.0.0";
inline constexpr uint8_t kMembershipVersion = 1;
// A gossip message carries at most this many records and is at most this many bytes.
inline constexpr size_t kMaxRecordsPerMessage = 256;
inline constexpr size_t kMaxGossipMessageBytes = 256 * 1024;
inline constexpr size_t kMaxAddrsPerRecord = 8;
inline constexpr size_t kMaxAddrLength = 256;

struct PeerRecord {
  PeerId peer;
  std::vector<std::string> addrs;  // multiaddr text, dialable, without the /p2p/ suffix
  std::string run_id;
  // (epoch, heartbeat) orders a peer's records. epoch changes at every process start (start
  // time in ms), so a restarted peer is not mistaken for an old one with a smaller counter.
  uint64_t epoch = 0;
  uint64_t heartbeat = 0;
  uint64_t outer_step = 0;
  double tokens_per_sec = 0;

  bool newer_than(const PeerRecord& other) const {
    return epoch != other.epoch ? epoch > other.epoch : heartbeat > other.heartbeat;
  }
};

// One record with its signature, as it travels.
struct SignedPeerRecord {
  PeerRecord record;
  Bytes signature;  // Ed25519 over kRecordSignaturePrefix || body(record)
};
inline constexpr std::string_view kRecordSignaturePrefix = "noloco-peer-record:";

SignedPeerRecord sign_peer_record(const PeerRecord& record, const Identity& identity);
// Checks field bounds and the signature against the public key inside record.peer.
Status verify_peer_record(const SignedPeerRecord& signed_record);

// A gossip message: our view (self first), as msgpack. decode checks sizes before use but not
// signatures; MembershipView::on_gossip verifies each record.
Bytes encode_gossip(const std::vector<SignedPeerRecord>& records);
Result<std::vector<SignedPeerRecord>> decode_gossip(ByteView message);

// Eclipse resistance (docs/defences.md, "Live view"): a record that arrives from the peer it is
// about, over that peer's own authenticated connection, is *verified*; one relayed by someone
// else is hearsay (*unverified*). Hearsay lives in a bounded part of the view, capped per peer
// that introduced it and per claimed address prefix, never evicts a verified peer or a live
// hearsay one, and is never gossiped on: a flood of validly signed records from fresh keys (an attacker mints them for
// free) can fill the hearsay part but not push out the peers we have talked to. After Heilman et
// al., "Eclipse Attacks on Bitcoin's Peer-to-Peer Network" (USENIX Security 2015): separate
// tried/new tables, per-source and per-group bucketing, and test-before-evict.
struct MembershipOptions {
  size_t max_peers = 256;                                // records kept besides our own
  size_t max_unverified = 128;                           // of which hearsay at most
  size_t max_unverified_per_source = 64;                 // hearsay held per introducing peer
  size_t max_unverified_per_prefix = 32;                 // hearsay held per claimed /16 (IPv4) or /32 (IPv6)
  Duration suspect_after = std::chrono::seconds(15);     // no heartbeat progress: not live
  Duration forget_after = std::chrono::seconds(120);     // no heartbeat progress: dropped
  size_t max_records_per_message = 64;                   // what make_gossip() sends
  Status validate() const;
};

struct GossipReport {
  size_t accepted = 0;   // new peers or newer records
  size_t stale = 0;      // not newer than what we hold (normal in gossip)
  size_t rejected = 0;   // bad signature, other run, bad fields: counted against the sender
  size_t capped = 0;     // well-formed hearsay left out because its part of the view is full
  size_t forged = 0;     // of `rejected`: records whose fields or signature do not verify, which an
                         // honest sender never gossips (it verified every record it holds)
  std::string first_rejection;  // why, for the log
};

class MembershipView {
 public:
  MembershipView(const Identity& self, std::string run_id, uint64_t epoch,
                 MembershipOptions options, const Clock& clock);

  // Our own record: call when addresses or progress change; beat() once per gossip period.
  void set_self(std::vector<std::string> addrs, uint64_t outer_step, double tokens_per_sec);
  void beat();
  const PeerRecord& self() const { return self_.record; }

  // Our record and the freshest live *verified* others (most recent progress first), capped.
  // Hearsay is not passed on (see make_gossip in membership.cc).
  Bytes make_gossip() const;
  // Merges a peer's gossip. A malformed message is an error (nothing merged); individual bad
  // records are counted in the report and skipped. `from`: the authenticated sender (the
  // remote of the stream it came on); its own record is then verified, the rest is hearsay it
  // introduced. Without it everything is hearsay of an unknown source.
  Result<GossipReport> on_gossip(ByteView message, const std::optional<PeerId>& from = std::nullopt);

  // Drops peers silent for longer than forget_after. Call periodically.
  size_t expire();
  // A hearsay record whose peer did not answer our dial: dropped, and kept out of the hearsay part
  // for forget_after. Hearsay is never evicted while it is live, and a flood's sender keeps its dead
  // records live by re-signing them, so without this they would hold the part (per claimed prefix:
  // all 32 places) for as long as the flood goes on, and no newer record, a flood's or an honest
  // one, would come in and be tested. The peer speaking for itself still comes in (verified), and
  // so does a record of it with other addresses (a private node that lists only its LAN address
  // until its relay reservation is granted: its next record names the circuit). No-op for
  // verified and unknown peers.
  void drop_unreachable(const PeerId& peer);

  // Peers whose heartbeat progressed within suspect_after, excluding ourselves.
  std::vector<PeerRecord> live_peers() const;
  // A uniformly random live peer other than those in `exclude`; nullopt if none.
  std::optional<PeerRecord> sample_live(std::mt19937_64& rng,
                                        const std::vector<PeerId>& exclude = {}) const;
  std::optional<PeerRecord> find(const PeerId& peer) const;
  size_t size() const { return peers_.size(); }
  size_t unverified_count() const { return unverified_; }
  bool is_verified(const PeerId& peer) const;
  // Who told us of a hearsay record (the authenticated sender of the gossip it first came in);
  // nullopt for verified records, unknown sources and peers we do not hold.
  std::optional<PeerId> introducer(const PeerId& peer) const;

 private:
  struct Entry {
    SignedPeerRecord signed_record;
    TimePoint last_progress;  // when we last saw its (epoch, heartbeat) grow
    bool verified = false;
    std::string source;       // hearsay: who introduced it (peer id bytes; empty: unknown)
    std::string prefix;       // hearsay: its claimed address group (empty: none counted)
  };
  using Peers = std::unordered_map<PeerId, Entry>;
  bool is_live(const Entry& e) const;
  void resign();
  // Room for a new record (verified or not): true when it may be added, evicting if needed.
  bool make_room(bool verified, const std::string& source, const std::string& prefix);
  void add(SignedPeerRecord s, bool verified, std::string source, std::string prefix);
  void set_verified(Entry& e);
  Peers::iterator erase(Peers::iterator it);
  // The oldest entry matching `pred`, or end().
  template <typename Pred>
  Peers::iterator oldest(Pred pred);

  Identity identity_;
  std::string run_id_;
  MembershipOptions options_;
  const Clock& clock_;
  SignedPeerRecord self_;
  Peers peers_;
  size_t unverified_ = 0;
  std::unordered_map<std::string, size_t> per_source_, per_prefix_;  // hearsay counts
  static constexpr size_t kMaxUnreachable = 4096;                     // memory bound
  struct Unreachable {
    TimePoint since;
    size_t addrs = 0;  // hash of the address list that was dialled
  };
  std::unordered_map<PeerId, Unreachable> unreachable_;               // hearsay kept out
};

}  // namespace noloco::p2p
