#include "p2p/address_limits.h"

#include <asio/ip/address.hpp>

#include <cstdio>

namespace noloco::p2p {

Status AddressLimitOptions::validate() const {
  if (max_inbound_per_address == 0) return invalid_argument("host: max_inbound_per_address must be positive");
  if (max_peer_ids_per_address == 0) return invalid_argument("host: max_peer_ids_per_address must be positive");
  return Status::Ok();
}

std::string AddressLimiter::bucket_of(const std::string& ip) const {
  asio::error_code ec;
  asio::ip::address a = asio::ip::make_address(ip, ec);
  if (ec) return {};
  if (a.is_v6() && a.to_v6().is_v4_mapped()) a = asio::ip::make_address_v4(asio::ip::v4_mapped, a.to_v6());
  // Only the machine's own default loopback address is exempt: a swarm on one machine that gives
  // each node its own 127/8 address (tools/linkemu, the chaos and attack harnesses) is limited per
  // address like any network.
  const bool default_loopback = a.is_v4() ? a.to_v4() == asio::ip::address_v4::loopback()
                                          : a.to_v6() == asio::ip::address_v6::loopback();
  if (default_loopback && !opt_.limit_loopback) return {};
  if (a.is_v4()) return a.to_string();
  const auto b = a.to_v6().to_bytes();
  char out[32];
  std::snprintf(out, sizeof out, "%02x%02x:%02x%02x:%02x%02x:%02x%02x::/64", b[0], b[1], b[2], b[3], b[4], b[5], b[6],
                b[7]);
  return out;
}

Status AddressLimiter::admit_inbound(const void* conn, const std::string& ip) {
  std::string key = bucket_of(ip);
  if (key.empty()) return Status::Ok();
  Bucket& b = buckets_[key];
  if (b.connections >= opt_.max_inbound_per_address)
    return Status(StatusCode::kUnavailable, "too many connections from " + key + " (limit " +
                                                std::to_string(opt_.max_inbound_per_address) + ")");
  ++b.connections;
  slots_[conn] = Slot{std::move(key), std::nullopt};
  return Status::Ok();
}

Status AddressLimiter::admit_peer(const void* conn, const PeerId& peer) {
  auto it = slots_.find(conn);
  if (it == slots_.end() || it->second.peer) return Status::Ok();
  Bucket& b = buckets_[it->second.bucket];
  auto p = b.peers.find(peer);
  if (p == b.peers.end() && b.peers.size() >= opt_.max_peer_ids_per_address)
    return Status(StatusCode::kUnavailable, "too many identities from " + it->second.bucket + " (limit " +
                                                std::to_string(opt_.max_peer_ids_per_address) + ")");
  ++b.peers[peer];
  it->second.peer = peer;
  return Status::Ok();
}

void AddressLimiter::release(const void* conn) {
  auto it = slots_.find(conn);
  if (it == slots_.end()) return;
  auto b = buckets_.find(it->second.bucket);
  if (b != buckets_.end()) {
    if (b->second.connections > 0) --b->second.connections;
    if (it->second.peer) {
      auto p = b->second.peers.find(*it->second.peer);
      if (p != b->second.peers.end() && --p->second == 0) b->second.peers.erase(p);
    }
    if (b->second.connections == 0 && b->second.peers.empty()) buckets_.erase(b);
  }
  slots_.erase(it);
}

size_t AddressLimiter::inbound_from(const std::string& ip) const {
  auto it = buckets_.find(bucket_of(ip));
  return it == buckets_.end() ? 0 : it->second.connections;
}

size_t AddressLimiter::peer_ids_from(const std::string& ip) const {
  auto it = buckets_.find(bucket_of(ip));
  return it == buckets_.end() ? 0 : it->second.peers.size();
}

}  // namespace noloco::p2p
