#include "p2p/membership.h"

#include <algorithm>
#include <cmath>

#include "common/msgpack_safe.h"

namespace noloco::p2p {

namespace {

constexpr size_t kMaxRecordBodyBytes = 4096;
constexpr size_t kMaxRunIdLength = 128;

Bytes encode_body(const PeerRecord& r) {
  msgpack::sbuffer buf;
  msgpack::packer<msgpack::sbuffer> pk(buf);
  pk.pack_array(8);
  pk.pack_uint8(kMembershipVersion);
  pk.pack_bin(static_cast<uint32_t>(r.peer.bytes().size()));
  pk.pack_bin_body(reinterpret_cast<const char*>(r.peer.bytes().data()),
                   static_cast<uint32_t>(r.peer.bytes().size()));
  pk.pack_array(static_cast<uint32_t>(r.addrs.size()));
  for (const auto& a : r.addrs) pk.pack(a);
  pk.pack(r.run_id);
  pk.pack_uint64(r.epoch);
  pk.pack_uint64(r.heartbeat);
  pk.pack_uint64(r.outer_step);
  pk.pack_double(r.tokens_per_sec);
  return Bytes(buf.data(), buf.data() + buf.size());
}

Bytes signing_input(ByteView body) {
  Bytes in = to_bytes(kRecordSignaturePrefix);
  append(in, body);
  return in;
}

Status check_fields(const PeerRecord& r) {
  if (!r.peer.valid()) return corrupt("peer record: empty peer id");
  if (r.addrs.size() > kMaxAddrsPerRecord) return too_large("peer record: too many addresses");
  for (const auto& a : r.addrs)
    if (a.empty() || a.size() > kMaxAddrLength) return corrupt("peer record: bad address length");
  if (r.run_id.empty() || r.run_id.size() > kMaxRunIdLength) return corrupt("peer record: bad run id");
  if (!std::isfinite(r.tokens_per_sec) || r.tokens_per_sec < 0)
    return corrupt("peer record: throughput not a finite non-negative number");
  return Status::Ok();
}

Result<PeerRecord> decode_body(ByteView body) {
  MsgpackLimits limits;
  limits.max_array = std::max<size_t>(8, kMaxAddrsPerRecord);
  limits.max_map = 0;
  limits.max_str = std::max(kMaxAddrLength, kMaxRunIdLength);
  limits.max_bin = 128;
  limits.max_depth = 3;
  NOLOCO_ASSIGN_OR_RETURN(auto handle, msgpack_unpack_bounded(body, limits));
  const msgpack::object& o = handle.get();
  if (o.type != msgpack::type::ARRAY || o.via.array.size != 8)
    return corrupt("peer record: body is not an 8-element array");
  const msgpack::object* f = o.via.array.ptr;
  NOLOCO_ASSIGN_OR_RETURN(uint64_t version, msgpack_as<uint64_t>(f[0], "version"));
  if (version != kMembershipVersion)
    return unsupported("peer record: version " + std::to_string(version));
  if (f[1].type != msgpack::type::BIN) return corrupt("peer record: peer id is not bin");
  PeerRecord r;
  NOLOCO_ASSIGN_OR_RETURN(
      r.peer, PeerId::from_bytes(ByteView(reinterpret_cast<const uint8_t*>(f[1].via.bin.ptr),
                                          f[1].via.bin.size)));
  NOLOCO_ASSIGN_OR_RETURN(r.addrs, msgpack_as<std::vector<std::string>>(f[2], "addrs"));
  NOLOCO_ASSIGN_OR_RETURN(r.run_id, msgpack_as<std::string>(f[3], "run_id"));
  NOLOCO_ASSIGN_OR_RETURN(r.epoch, msgpack_as<uint64_t>(f[4], "epoch"));
  NOLOCO_ASSIGN_OR_RETURN(r.heartbeat, msgpack_as<uint64_t>(f[5], "heartbeat"));
  NOLOCO_ASSIGN_OR_RETURN(r.outer_step, msgpack_as<uint64_t>(f[6], "outer_step"));
  NOLOCO_ASSIGN_OR_RETURN(r.tokens_per_sec, msgpack_as<double>(f[7], "tokens_per_sec"));
  NOLOCO_RETURN_IF_ERROR(check_fields(r));
  return r;
}

// Which address list a record names, for MembershipView::drop_unreachable (order-sensitive: an
// honest node lists its addresses in one order).
size_t addrs_key(const PeerRecord& r) {
  size_t h = r.addrs.size();
  for (const auto& a : r.addrs) h = h * 1000003u ^ std::hash<std::string>{}(a);
  return h;
}

}  // namespace

SignedPeerRecord sign_peer_record(const PeerRecord& record, const Identity& identity) {
  Bytes body = encode_body(record);
  return SignedPeerRecord{record, identity.sign(signing_input(body))};
}

Status verify_peer_record(const SignedPeerRecord& s) {
  NOLOCO_RETURN_IF_ERROR(check_fields(s.record));
  auto key = s.record.peer.ed25519_public_key();
  if (!key.ok()) return key.status().context("peer record");
  if (!Identity::verify(*key, signing_input(encode_body(s.record)), s.signature))
    return corrupt("peer record: bad signature for " + s.record.peer.to_string());
  return Status::Ok();
}

// gossip := [version, [[body-bin, signature-bin], ...]]
// The body travels as the exact bytes that were signed; decode re-encodes after parsing and
// refuses a body that is not in our canonical form, so sign and verify see the same bytes.
Bytes encode_gossip(const std::vector<SignedPeerRecord>& records) {
  msgpack::sbuffer buf;
  msgpack::packer<msgpack::sbuffer> pk(buf);
  pk.pack_array(2);
  pk.pack_uint8(kMembershipVersion);
  pk.pack_array(static_cast<uint32_t>(records.size()));
  for (const auto& s : records) {
    Bytes body = encode_body(s.record);
    pk.pack_array(2);
    pk.pack_bin(static_cast<uint32_t>(body.size()));
    pk.pack_bin_body(reinterpret_cast<const char*>(body.data()), static_cast<uint32_t>(body.size()));
    pk.pack_bin(static_cast<uint32_t>(s.signature.size()));
    pk.pack_bin_body(reinterpret_cast<const char*>(s.signature.data()),
                     static_cast<uint32_t>(s.signature.size()));
  }
  return Bytes(buf.data(), buf.data() + buf.size());
}

Result<std::vector<SignedPeerRecord>> decode_gossip(ByteView message) {
  if (message.size() > kMaxGossipMessageBytes) return too_large("gossip message over the size cap");
  MsgpackLimits limits;
  limits.max_array = kMaxRecordsPerMessage;
  limits.max_map = 0;
  limits.max_str = 0;
  limits.max_bin = kMaxRecordBodyBytes;
  limits.max_depth = 4;
  NOLOCO_ASSIGN_OR_RETURN(auto handle, msgpack_unpack_bounded(message, limits));
  const msgpack::object& o = handle.get();
  if (o.type != msgpack::type::ARRAY || o.via.array.size != 2)
    return corrupt("gossip: not a 2-element array");
  NOLOCO_ASSIGN_OR_RETURN(uint64_t version, msgpack_as<uint64_t>(o.via.array.ptr[0], "version"));
  if (version != kMembershipVersion) return unsupported("gossip: version " + std::to_string(version));
  const msgpack::object& list = o.via.array.ptr[1];
  if (list.type != msgpack::type::ARRAY) return corrupt("gossip: records are not an array");
  std::vector<SignedPeerRecord> out;
  out.reserve(list.via.array.size);
  for (uint32_t i = 0; i < list.via.array.size; ++i) {
    const msgpack::object& item = list.via.array.ptr[i];
    if (item.type != msgpack::type::ARRAY || item.via.array.size != 2 ||
        item.via.array.ptr[0].type != msgpack::type::BIN ||
        item.via.array.ptr[1].type != msgpack::type::BIN)
      return corrupt("gossip: record " + std::to_string(i) + " is not [bin, bin]");
    const auto& body_obj = item.via.array.ptr[0].via.bin;
    const auto& sig_obj = item.via.array.ptr[1].via.bin;
    ByteView body(reinterpret_cast<const uint8_t*>(body_obj.ptr), body_obj.size);
    auto record = decode_body(body);
    if (!record.ok()) return record.status().context("gossip record " + std::to_string(i));
    if (encode_body(*record) != Bytes(body.begin(), body.end()))
      return corrupt("gossip record " + std::to_string(i) + ": body not in canonical form");
    out.push_back(SignedPeerRecord{
        std::move(record).value(),
        Bytes(reinterpret_cast<const uint8_t*>(sig_obj.ptr),
              reinterpret_cast<const uint8_t*>(sig_obj.ptr) + sig_obj.size)});
  }
  return out;
}

Status MembershipOptions::validate() const {
  if (max_peers == 0) return invalid_argument("membership: max_peers must be positive");
  if (suspect_after <= Duration::zero()) return invalid_argument("membership: suspect_after must be positive");
  if (forget_after < suspect_after)
    return invalid_argument("membership: forget_after must not be shorter than suspect_after");
  if (max_records_per_message == 0 || max_records_per_message > kMaxRecordsPerMessage)
    return invalid_argument("membership: max_records_per_message must be in 1.." +
                            std::to_string(kMaxRecordsPerMessage));
  if (max_unverified == 0 || max_unverified > max_peers)
    return invalid_argument("membership: max_unverified must be in 1..max_peers");
  if (max_unverified_per_source == 0 || max_unverified_per_prefix == 0)
    return invalid_argument("membership: the per-source and per-prefix caps must be positive");
  return Status::Ok();
}

MembershipView::MembershipView(const Identity& self, std::string run_id, uint64_t epoch,
                               MembershipOptions options, const Clock& clock)
    : identity_(self), run_id_(std::move(run_id)), options_(options), clock_(clock) {
  self_.record.peer = identity_.peer_id();
  self_.record.run_id = run_id_;
  self_.record.epoch = epoch;
  resign();
}

void MembershipView::resign() { self_ = sign_peer_record(self_.record, identity_); }

void MembershipView::set_self(std::vector<std::string> addrs, uint64_t outer_step,
                              double tokens_per_sec) {
  if (addrs.size() > kMaxAddrsPerRecord) addrs.resize(kMaxAddrsPerRecord);
  self_.record.addrs = std::move(addrs);
  self_.record.outer_step = outer_step;
  self_.record.tokens_per_sec = std::isfinite(tokens_per_sec) && tokens_per_sec >= 0 ? tokens_per_sec : 0;
  ++self_.record.heartbeat;
  resign();
}

void MembershipView::beat() {
  ++self_.record.heartbeat;
  resign();
}

bool MembershipView::is_live(const Entry& e) const {
  return clock_.now() - e.last_progress <= options_.suspect_after;
}

Bytes MembershipView::make_gossip() const {
  // Only peers we have talked to ourselves: hearsay is never passed on, so every record in an
  // honest node's gossip is one it verified, and a receiver may hold the sender to it (records
  // nobody answers at count against whoever introduced them, trainer/node/introducer_watch.h).
  // A flood's records therefore travel no further than the flooder's own messages.
  std::vector<const Entry*> live;
  for (const auto& [id, e] : peers_)
    if (e.verified && is_live(e)) live.push_back(&e);
  std::sort(live.begin(), live.end(),
            [](const Entry* a, const Entry* b) { return a->last_progress > b->last_progress; });
  std::vector<SignedPeerRecord> records{self_};
  for (const Entry* e : live) {
    if (records.size() >= options_.max_records_per_message) break;
    records.push_back(e->signed_record);
  }
  return encode_gossip(records);
}

namespace {

std::string key_of(const PeerId& p) { return std::string(p.bytes().begin(), p.bytes().end()); }

// The address group a record claims (its first address): "4:a.b" for an IPv4 /16, "6:x:y" for an
// IPv6 /32. Loopback and names count in no group (one machine running many nodes for a test).
std::string prefix_of(const PeerRecord& r) {
  if (r.addrs.empty()) return {};
  const std::string& a = r.addrs[0];
  auto field = [&](size_t from) { return a.substr(from, a.find('/', from) - from); };
  if (a.rfind("/ip4/", 0) == 0) {
    const std::string ip = field(5);
    if (ip.rfind("127.", 0) == 0) return {};
    const size_t second = ip.find('.', ip.find('.') + 1);
    return "4:" + ip.substr(0, second);
  }
  if (a.rfind("/ip6/", 0) == 0) {
    const std::string ip = field(5);
    if (ip == "::1") return {};
    const size_t second = ip.find(':', ip.find(':') + 1);
    return "6:" + ip.substr(0, second);
  }
  return {};
}

}  // namespace

bool MembershipView::is_verified(const PeerId& peer) const {
  auto it = peers_.find(peer);
  return it != peers_.end() && it->second.verified;
}

std::optional<PeerId> MembershipView::introducer(const PeerId& peer) const {
  auto it = peers_.find(peer);
  if (it == peers_.end() || it->second.verified || it->second.source.empty()) return std::nullopt;
  const std::string& k = it->second.source;
  auto id = PeerId::from_bytes(ByteView(reinterpret_cast<const uint8_t*>(k.data()), k.size()));
  if (!id.ok()) return std::nullopt;
  return *id;
}

template <typename Pred>
MembershipView::Peers::iterator MembershipView::oldest(Pred pred) {
  auto best = peers_.end();
  for (auto it = peers_.begin(); it != peers_.end(); ++it)
    if (pred(it->second) && (best == peers_.end() || it->second.last_progress < best->second.last_progress)) best = it;
  return best;
}

MembershipView::Peers::iterator MembershipView::erase(Peers::iterator it) {
  Entry& e = it->second;
  if (!e.verified) {
    --unverified_;
    if (auto s = per_source_.find(e.source); s != per_source_.end() && --s->second == 0) per_source_.erase(s);
    if (auto p = per_prefix_.find(e.prefix); !e.prefix.empty() && p != per_prefix_.end() && --p->second == 0)
      per_prefix_.erase(p);
  }
  return peers_.erase(it);
}

void MembershipView::set_verified(Entry& e) {
  if (e.verified) return;
  if (auto s = per_source_.find(e.source); s != per_source_.end() && --s->second == 0) per_source_.erase(s);
  if (auto p = per_prefix_.find(e.prefix); !e.prefix.empty() && p != per_prefix_.end() && --p->second == 0)
    per_prefix_.erase(p);
  --unverified_;
  e.verified = true;
  e.source.clear();
  e.prefix.clear();
}

bool MembershipView::make_room(bool verified, const std::string& source, const std::string& prefix) {
  if (!verified) {
    if (auto s = per_source_.find(source); s != per_source_.end() && s->second >= options_.max_unverified_per_source)
      return false;
    if (auto p = per_prefix_.find(prefix);
        !prefix.empty() && p != per_prefix_.end() && p->second >= options_.max_unverified_per_prefix)
      return false;
    if (unverified_ >= options_.max_unverified) {
      // Only hearsay that has gone quiet makes way for new hearsay.
      auto victim = oldest([&](const Entry& e) { return !e.verified && !is_live(e); });
      if (victim == peers_.end()) return false;
      erase(victim);
    }
  }
  if (peers_.size() < options_.max_peers) return true;
  // Full. A verified peer displaces the oldest hearsay, else the peer heard from least recently;
  // hearsay displaces only quiet hearsay.
  auto victim = verified ? oldest([](const Entry& e) { return !e.verified; })
                         : oldest([&](const Entry& e) { return !e.verified && !is_live(e); });
  if (victim == peers_.end() && verified) victim = oldest([](const Entry&) { return true; });
  if (victim == peers_.end()) return false;
  erase(victim);
  return true;
}

void MembershipView::add(SignedPeerRecord s, bool verified, std::string source, std::string prefix) {
  Entry e{std::move(s), clock_.now(), verified, {}, {}};
  if (!verified) {
    ++unverified_;
    ++per_source_[source];
    if (!prefix.empty()) ++per_prefix_[prefix];
    e.source = std::move(source);
    e.prefix = std::move(prefix);
  }
  PeerId id = e.signed_record.record.peer;
  peers_.emplace(std::move(id), std::move(e));
}

Result<GossipReport> MembershipView::on_gossip(ByteView message, const std::optional<PeerId>& from) {
  NOLOCO_ASSIGN_OR_RETURN(auto records, decode_gossip(message));
  GossipReport report;
  auto reject = [&](const std::string& why) {
    ++report.rejected;
    if (report.first_rejection.empty()) report.first_rejection = why;
  };
  const TimePoint now = clock_.now();
  const std::string source = from ? key_of(*from) : std::string();
  for (auto& s : records) {
    if (s.record.peer == identity_.peer_id()) continue;  // our own record, echoed back
    if (s.record.run_id != run_id_) {
      reject("record of " + s.record.peer.to_string() + " is for run " + s.record.run_id);
      continue;
    }
    const bool direct = from && s.record.peer == *from;
    auto it = peers_.find(s.record.peer);
    if (it != peers_.end() && !s.record.newer_than(it->second.signed_record.record)) {
      // The record we hold (verified when it was taken) came from its own peer: promote it.
      if (direct) set_verified(it->second);
      ++report.stale;
      continue;
    }
    if (Status st = verify_peer_record(s); !st.ok()) {
      reject(st.message());
      ++report.forged;
      continue;
    }
    if (it != peers_.end()) {
      it->second.signed_record = std::move(s);
      it->second.last_progress = now;
      if (direct) set_verified(it->second);
    } else {
      if (!direct) {
        auto u = unreachable_.find(s.record.peer);
        if (u != unreachable_.end() && now - u->second.since <= options_.forget_after &&
            u->second.addrs == addrs_key(s.record)) {
          ++report.capped;  // we dialled it and nobody answered: not taken from hearsay again yet
          continue;
        }
      }
      std::string prefix = direct ? std::string() : prefix_of(s.record);
      if (!make_room(direct, source, prefix)) {
        ++report.capped;
        continue;
      }
      add(std::move(s), direct, direct ? std::string() : source, std::move(prefix));
    }
    ++report.accepted;
  }
  return report;
}

void MembershipView::drop_unreachable(const PeerId& peer) {
  auto it = peers_.find(peer);
  if (it == peers_.end() || it->second.verified) return;
  const size_t addrs = addrs_key(it->second.signed_record.record);
  erase(it);
  const TimePoint now = clock_.now();
  if (unreachable_.size() >= kMaxUnreachable)
    std::erase_if(unreachable_, [&](const auto& u) { return now - u.second.since > options_.forget_after; });
  if (unreachable_.size() < kMaxUnreachable) unreachable_[peer] = Unreachable{now, addrs};
}

size_t MembershipView::expire() {
  const TimePoint now = clock_.now();
  size_t n = 0;
  for (auto it = peers_.begin(); it != peers_.end();) {
    if (now - it->second.last_progress > options_.forget_after) {
      it = erase(it);
      ++n;
    } else {
      ++it;
    }
  }
  return n;
}

std::vector<PeerRecord> MembershipView::live_peers() const {
  std::vector<PeerRecord> out;
  for (const auto& [id, e] : peers_)
    if (is_live(e)) out.push_back(e.signed_record.record);
  // Deterministic order (by peer id) so sampling with a seeded rng is reproducible.
  std::sort(out.begin(), out.end(), [](const PeerRecord& a, const PeerRecord& b) { return a.peer < b.peer; });
  return out;
}

std::optional<PeerRecord> MembershipView::sample_live(std::mt19937_64& rng,
                                                      const std::vector<PeerId>& exclude) const {
  std::vector<PeerRecord> candidates;
  for (auto& r : live_peers())
    if (std::find(exclude.begin(), exclude.end(), r.peer) == exclude.end()) candidates.push_back(std::move(r));
  if (candidates.empty()) return std::nullopt;
  std::uniform_int_distribution<size_t> pick(0, candidates.size() - 1);
  return candidates[pick(rng)];
}

std::optional<PeerRecord> MembershipView::find(const PeerId& peer) const {
  auto it = peers_.find(peer);
  if (it == peers_.end()) return std::nullopt;
  return it->second.signed_record.record;
}

}  // namespace noloco::p2p
