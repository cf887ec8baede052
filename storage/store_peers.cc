// Peer book (bounded, evicting stale and low-score entries) and bans (expiring).
#include <algorithm>

#include "common/log.h"
#include "storage/store_impl.h"

namespace noloco::storage {

namespace {

rocksdb::Slice slice(std::string_view s) { return {s.data(), s.size()}; }
rocksdb::Slice slice(const Bytes& b) { return {reinterpret_cast<const char*>(b.data()), b.size()}; }
ByteView view(const rocksdb::Slice& s) { return {reinterpret_cast<const uint8_t*>(s.data()), s.size()}; }

Status check_peer_id(std::string_view id) {
  if (id.empty()) return invalid_argument("empty peer id");
  if (id.size() > kMaxShortStringBytes) return invalid_argument("peer id too long");
  return Status::Ok();
}

template <typename T>
Result<std::vector<T>> scan_all(Store::Impl& impl, rocksdb::ColumnFamilyHandle* cf,
                                Result<T> (*decode)(ByteView), const char* what) {
  std::vector<T> out;
  std::unique_ptr<rocksdb::Iterator> it(impl.db->NewIterator(rocksdb::ReadOptions(), cf));
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    auto r = decode(view(it->value()));
    if (!r.ok()) return r.status().context(std::string(what) + " '" + it->key().ToString() + "'");
    out.push_back(std::move(r).value());
  }
  NOLOCO_RETURN_IF_ERROR(from_rocks(it->status(), std::string("scanning ") + what));
  return out;
}

// Eviction order: stale entries first (oldest last-seen first), then lowest score, then oldest.
bool evict_before(const PeerRecord& a, const PeerRecord& b, int64_t stale_before) {
  bool sa = a.last_seen_unix < stale_before, sb = b.last_seen_unix < stale_before;
  if (sa != sb) return sa;
  if (sa) return a.last_seen_unix < b.last_seen_unix;
  if (a.score != b.score) return a.score < b.score;
  return a.last_seen_unix < b.last_seen_unix;
}

// Caller holds peer_mu.
Status put_peer_locked(Store::Impl& impl, const PeerRecord& peer) {
  NOLOCO_ASSIGN_OR_RETURN(Bytes value, encode_peer(peer));
  NOLOCO_ASSIGN_OR_RETURN(auto old, impl.get(impl.peers, peer.peer_id, "reading peer"));
  rocksdb::WriteBatch batch;
  batch.Put(impl.peers, slice(peer.peer_id), slice(value));
  size_t count = impl.peer_count + (old ? 0 : 1);
  size_t evicted = 0;
  if (count > impl.options.max_peers) {
    NOLOCO_ASSIGN_OR_RETURN(auto all, scan_all<PeerRecord>(impl, impl.peers, decode_peer, "peer"));
    std::erase_if(all, [&](const PeerRecord& p) { return p.peer_id == peer.peer_id; });
    const int64_t stale_before = impl.now() - impl.options.peer_stale_after_s;
    size_t excess = count - impl.options.max_peers;
    std::partial_sort(all.begin(), all.begin() + std::min(excess, all.size()), all.end(),
                      [&](const PeerRecord& a, const PeerRecord& b) { return evict_before(a, b, stale_before); });
    for (size_t i = 0; i < excess && i < all.size(); ++i) {
      batch.Delete(impl.peers, slice(all[i].peer_id));
      ++evicted;
    }
  }
  NOLOCO_RETURN_IF_ERROR(impl.write(batch, false, "writing peer"));
  impl.peer_count = count - evicted;
  if (evicted) NLOG_DEBUG("storage: peer book over {}: evicted {}", impl.options.max_peers, evicted);
  return Status::Ok();
}

}  // namespace

Status Store::put_peer(const PeerRecord& peer) {
  NOLOCO_ASSIGN_OR_RETURN(auto use, impl_->use_for_write("writing peer"));
  NOLOCO_RETURN_IF_ERROR(check_peer_id(peer.peer_id));
  std::lock_guard lock(impl_->peer_mu);
  return put_peer_locked(*impl_, peer);
}

Status Store::update_peer(std::string_view peer_id, const std::function<void(PeerRecord&)>& change) {
  NOLOCO_ASSIGN_OR_RETURN(auto use, impl_->use_for_write("writing peer"));
  NOLOCO_RETURN_IF_ERROR(check_peer_id(peer_id));
  std::lock_guard lock(impl_->peer_mu);
  NOLOCO_ASSIGN_OR_RETURN(auto old, impl_->get(impl_->peers, peer_id, "reading peer"));
  PeerRecord p;
  if (old) {
    NOLOCO_ASSIGN_OR_RETURN(p, decode_peer(as_bytes(*old)));
  } else {
    p.peer_id = std::string(peer_id);
    p.first_seen_unix = p.last_seen_unix = impl_->now();
  }
  change(p);
  if (p.peer_id != peer_id) return invalid_argument("update_peer must not change the peer id");
  return put_peer_locked(*impl_, p);
}

Status Store::record_seen(std::string_view peer_id, const std::vector<std::string>& addresses) {
  const int64_t now = impl_->now();
  return update_peer(peer_id, [&](PeerRecord& p) {
    p.last_seen_unix = now;
    for (const auto& a : addresses)
      if (std::find(p.addresses.begin(), p.addresses.end(), a) == p.addresses.end()) p.addresses.push_back(a);
    // Newest addresses win when there are too many.
    if (p.addresses.size() > kMaxAddressesPerPeer)
      p.addresses.erase(p.addresses.begin(), p.addresses.end() - kMaxAddressesPerPeer);
  });
}

Status Store::record_outcome(std::string_view peer_id, bool success, double score_delta) {
  const int64_t now = impl_->now();
  return update_peer(peer_id, [&](PeerRecord& p) {
    p.last_seen_unix = now;
    (success ? p.successes : p.failures) += 1;
    p.score += score_delta;
  });
}

Result<std::optional<PeerRecord>> Store::get_peer(std::string_view peer_id) {
  NOLOCO_ASSIGN_OR_RETURN(auto use, impl_->use());
  NOLOCO_ASSIGN_OR_RETURN(auto v, impl_->get(impl_->peers, peer_id, "reading peer"));
  if (!v) return std::optional<PeerRecord>();
  NOLOCO_ASSIGN_OR_RETURN(PeerRecord p, decode_peer(as_bytes(*v)));
  return std::optional<PeerRecord>(std::move(p));
}

Status Store::remove_peer(std::string_view peer_id) {
  NOLOCO_ASSIGN_OR_RETURN(auto use, impl_->use_for_write("removing peer"));
  std::lock_guard lock(impl_->peer_mu);
  NOLOCO_ASSIGN_OR_RETURN(auto old, impl_->get(impl_->peers, peer_id, "reading peer"));
  if (!old) return Status::Ok();
  rocksdb::WriteBatch batch;
  batch.Delete(impl_->peers, slice(peer_id));
  NOLOCO_RETURN_IF_ERROR(impl_->write(batch, false, "removing peer"));
  --impl_->peer_count;
  return Status::Ok();
}

Result<std::vector<PeerRecord>> Store::list_peers() {
  NOLOCO_ASSIGN_OR_RETURN(auto use, impl_->use());
  return scan_all<PeerRecord>(*impl_, impl_->peers, decode_peer, "peer");
}

Result<PeerBookSummary> Store::peer_summary(size_t best_n) {
  NOLOCO_ASSIGN_OR_RETURN(auto use, impl_->use());
  PeerBookSummary s;
  NOLOCO_ASSIGN_OR_RETURN(auto peers, list_peers());
  NOLOCO_ASSIGN_OR_RETURN(auto bans, list_active_bans());
  s.peers = peers.size();
  s.active_bans = bans.size();
  std::sort(peers.begin(), peers.end(), [](const PeerRecord& a, const PeerRecord& b) { return a.score > b.score; });
  if (peers.size() > best_n) peers.resize(best_n);
  s.best = std::move(peers);
  return s;
}

Status Store::ban(std::string_view peer_id, std::string_view reason, int64_t duration_s) {
  NOLOCO_ASSIGN_OR_RETURN(auto use, impl_->use_for_write("banning"));
  NOLOCO_RETURN_IF_ERROR(check_peer_id(peer_id));
  if (duration_s < 0) return invalid_argument("negative ban duration");
  BanRecord b{std::string(peer_id), std::string(reason), impl_->now(), 0};
  if (duration_s > 0) b.expires_unix = b.banned_unix + duration_s;
  NOLOCO_ASSIGN_OR_RETURN(Bytes value, encode_ban(b));
  rocksdb::WriteBatch batch;
  batch.Put(impl_->bans, slice(peer_id), slice(value));
  return impl_->write(batch, false, "writing ban");
}

Status Store::unban(std::string_view peer_id) {
  NOLOCO_ASSIGN_OR_RETURN(auto use, impl_->use_for_write("unbanning"));
  rocksdb::WriteBatch batch;
  batch.Delete(impl_->bans, slice(peer_id));
  return impl_->write(batch, false, "removing ban");
}

Result<std::optional<BanRecord>> Store::active_ban(std::string_view peer_id) {
  NOLOCO_ASSIGN_OR_RETURN(auto use, impl_->use());
  NOLOCO_ASSIGN_OR_RETURN(auto v, impl_->get(impl_->bans, peer_id, "reading ban"));
  if (!v) return std::optional<BanRecord>();
  NOLOCO_ASSIGN_OR_RETURN(BanRecord b, decode_ban(as_bytes(*v)));
  if (b.expired_at(impl_->now())) {
    if (!read_only()) {
      rocksdb::WriteBatch batch;
      batch.Delete(impl_->bans, slice(peer_id));
      NOLOCO_RETURN_IF_ERROR(impl_->write(batch, false, "removing expired ban"));
    }
    return std::optional<BanRecord>();
  }
  return std::optional<BanRecord>(std::move(b));
}

Result<std::vector<BanRecord>> Store::list_active_bans() {
  NOLOCO_ASSIGN_OR_RETURN(auto use, impl_->use());
  NOLOCO_ASSIGN_OR_RETURN(auto all, scan_all<BanRecord>(*impl_, impl_->bans, decode_ban, "ban"));
  const int64_t now = impl_->now();
  std::erase_if(all, [&](const BanRecord& b) { return b.expired_at(now); });
  return all;
}

Result<size_t> Store::purge_expired_bans() {
  NOLOCO_ASSIGN_OR_RETURN(auto use, impl_->use_for_write("purging bans"));
  NOLOCO_ASSIGN_OR_RETURN(auto all, scan_all<BanRecord>(*impl_, impl_->bans, decode_ban, "ban"));
  const int64_t now = impl_->now();
  rocksdb::WriteBatch batch;
  size_t n = 0;
  for (const auto& b : all)
    if (b.expired_at(now)) {
      batch.Delete(impl_->bans, slice(b.peer_id));
      ++n;
    }
  if (n) NOLOCO_RETURN_IF_ERROR(impl_->write(batch, false, "purging expired bans"));
  return n;
}

}  // namespace noloco::storage
