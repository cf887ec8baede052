#include "p2p/relay_hop.h"

#include <algorithm>

namespace noloco::p2p::relay {

Status RelayOptions::validate() const {
  if (reservation_ttl < std::chrono::seconds(1)) return invalid_argument("relay: reservation_ttl below 1 s");
  if (max_reservations == 0) return invalid_argument("relay: max_reservations must be positive");
  if (max_reservations_per_peer == 0) return invalid_argument("relay: max_reservations_per_peer must be positive");
  if (max_reservations_per_ip == 0) return invalid_argument("relay: max_reservations_per_ip must be positive");
  if (max_circuits == 0) return invalid_argument("relay: max_circuits must be positive");
  if (max_circuits_per_peer == 0) return invalid_argument("relay: max_circuits_per_peer must be positive");
  if (circuit_duration < Duration::zero()) return invalid_argument("relay: circuit_duration is negative");
  if (circuit_duration > std::chrono::seconds(UINT32_MAX)) return invalid_argument("relay: circuit_duration too long");
  return Status::Ok();
}

RelayHop::Decision RelayHop::reply(RelayStatus s) {
  Decision d;
  d.reply = hop_status(s);
  return d;
}

RelayLimit RelayHop::limit() const {
  RelayLimit l;
  if (opt_.circuit_duration > Duration::zero()) {
    // Announce whole seconds, rounded up, so a peer never sees less than we enforce.
    auto s = std::chrono::ceil<std::chrono::seconds>(opt_.circuit_duration).count();
    l.duration_s = static_cast<uint32_t>(s);
  }
  if (opt_.circuit_data_bytes > 0) l.data_bytes = opt_.circuit_data_bytes;
  return l;
}

RelayHop::Decision RelayHop::on_hop(const PeerId& from, ByteView body, TimePoint now, uint64_t unix_now,
                                    const std::vector<Multiaddr>& relay_addrs, const std::string& from_ip) {
  auto msg = decode_hop(body);
  if (!msg.ok()) return reply(RelayStatus::kMalformedMessage);
  expire(now);
  switch (msg->type) {
    case HopType::kReserve:
      return reserve(from, now, unix_now, relay_addrs, from_ip.empty() ? std::string() : buckets_.bucket_of(from_ip));
    case HopType::kConnect:
      return connect(from, *msg, now);
    case HopType::kStatus:
      break;
  }
  return reply(RelayStatus::kUnexpectedMessage);
}

RelayHop::Decision RelayHop::reserve(const PeerId& from, TimePoint now, uint64_t unix_now,
                                     const std::vector<Multiaddr>& relay_addrs, const std::string& bucket) {
  auto held = reservations_.find(from);
  const bool refresh = held != reservations_.end();
  if (!refresh && reservations_.size() >= opt_.max_reservations) return reply(RelayStatus::kReservationRefused);
  // A refresh from the same bucket keeps its place; one that moved counts as a newcomer there.
  if (!bucket.empty() && !(refresh && held->second.bucket == bucket)) {
    const size_t there = static_cast<size_t>(std::count_if(reservations_.begin(), reservations_.end(),
                                                           [&](const auto& kv) { return kv.second.bucket == bucket; }));
    if (there >= opt_.max_reservations_per_ip) return reply(RelayStatus::kReservationRefused);
  }
  auto& grants = grants_[from];
  if (grants.size() >= opt_.max_reservations_per_peer) return reply(RelayStatus::kReservationRefused);
  const TimePoint expiry = now + opt_.reservation_ttl;
  grants.push_back(expiry);
  reservations_[from] = Held{expiry, bucket};

  HopMessage ok = hop_status(RelayStatus::kOk);
  Reservation res;
  res.expire_unix_s = unix_now + static_cast<uint64_t>(
                                     std::chrono::duration_cast<std::chrono::seconds>(opt_.reservation_ttl).count());
  for (const auto& a : relay_addrs) {
    if (res.addrs.size() >= kMaxRelayAddrs) break;
    res.addrs.push_back(a);
  }
  ok.reservation = std::move(res);
  ok.limit = limit();
  Decision d;
  d.reply = std::move(ok);
  return d;
}

size_t RelayHop::circuits_of(const PeerId& peer) const {
  return static_cast<size_t>(std::count_if(circuits_.begin(), circuits_.end(), [&](const auto& kv) {
    return kv.second.source == peer || kv.second.target == peer;
  }));
}

RelayHop::Decision RelayHop::connect(const PeerId& from, const HopMessage& msg, TimePoint now) {
  if (!msg.peer) return reply(RelayStatus::kMalformedMessage);
  const PeerId& target = msg.peer->id;
  if (target == from) return reply(RelayStatus::kPermissionDenied);
  if (!has_reservation(target, now)) return reply(RelayStatus::kNoReservation);
  if (circuits_.size() >= opt_.max_circuits || circuits_of(from) >= opt_.max_circuits_per_peer ||
      circuits_of(target) >= opt_.max_circuits_per_peer) {
    return reply(RelayStatus::kResourceLimitExceeded);
  }
  const uint64_t id = next_circuit_++;
  circuits_.emplace(id, Circuit{from, target});

  StopMessage stop;
  stop.type = StopType::kConnect;
  stop.peer = RelayPeer{from, {}};
  stop.limit = limit();
  Decision d;
  d.circuit = id;
  d.target = target;
  d.stop = std::move(stop);
  return d;
}

HopMessage RelayHop::on_stop_reply(uint64_t circuit, const Result<StopMessage>& reply, TimePoint now) {
  auto it = circuits_.find(circuit);
  if (it == circuits_.end()) return hop_status(RelayStatus::kConnectionFailed);
  const bool accepted = reply.ok() && reply->type == StopType::kStatus && reply->status == RelayStatus::kOk;
  if (!accepted) {
    circuits_.erase(it);
    return hop_status(RelayStatus::kConnectionFailed);
  }
  it->second.live = true;
  it->second.started = now;
  HopMessage ok = hop_status(RelayStatus::kOk);
  ok.limit = limit();
  return ok;
}

RelayHop::DataVerdict RelayHop::on_data(uint64_t circuit, Direction dir, size_t n, TimePoint now) {
  auto it = circuits_.find(circuit);
  if (it == circuits_.end() || !it->second.live) return {0, true};
  if (expired(circuit, now)) return {0, true};
  if (opt_.circuit_data_bytes == 0) return {n, false};
  uint64_t& used = it->second.bytes[dir == Direction::kSourceToTarget ? 0 : 1];
  const uint64_t left = opt_.circuit_data_bytes - used;
  if (n < left) {
    used += n;
    return {n, false};
  }
  used = opt_.circuit_data_bytes;
  return {static_cast<size_t>(left), true};  // the last allowed bytes, then the circuit ends
}

std::optional<TimePoint> RelayHop::deadline(uint64_t circuit) const {
  auto it = circuits_.find(circuit);
  if (it == circuits_.end() || !it->second.live || opt_.circuit_duration == Duration::zero()) return std::nullopt;
  return it->second.started + opt_.circuit_duration;
}

bool RelayHop::expired(uint64_t circuit, TimePoint now) const {
  auto d = deadline(circuit);
  return d && now >= *d;
}

void RelayHop::on_circuit_closed(uint64_t circuit) { circuits_.erase(circuit); }

void RelayHop::expire(TimePoint now) {
  for (auto it = reservations_.begin(); it != reservations_.end();) {
    it = it->second.expiry <= now ? reservations_.erase(it) : std::next(it);
  }
  for (auto it = grants_.begin(); it != grants_.end();) {
    auto& v = it->second;
    v.erase(std::remove_if(v.begin(), v.end(), [&](TimePoint t) { return t <= now; }), v.end());
    it = v.empty() ? grants_.erase(it) : std::next(it);
  }
}

bool RelayHop::has_reservation(const PeerId& peer, TimePoint now) const {
  auto it = reservations_.find(peer);
  return it != reservations_.end() && it->second.expiry > now;
}

size_t RelayHop::reservations_from(const std::string& ip) const {
  const std::string bucket = buckets_.bucket_of(ip);
  if (bucket.empty()) return 0;
  return static_cast<size_t>(std::count_if(reservations_.begin(), reservations_.end(),
                                           [&](const auto& kv) { return kv.second.bucket == bucket; }));
}

}  // namespace noloco::p2p::relay
