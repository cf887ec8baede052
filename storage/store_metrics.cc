// Metrics history: one record per outer step, keyed by the step (big-endian) for range reads.
#include <algorithm>

#include "storage/keys.h"
#include "storage/store_impl.h"

namespace noloco::storage {

namespace {
rocksdb::Slice slice(std::string_view s) { return {s.data(), s.size()}; }
ByteView view(const rocksdb::Slice& s) { return {reinterpret_cast<const uint8_t*>(s.data()), s.size()}; }

Result<MetricsRecord> decode_at(const rocksdb::Iterator& it) {
  auto r = decode_metrics(view(it.value()));
  if (!r.ok()) return r.status().context("metrics key " + it.key().ToString(true));
  auto step = parse_be64(it.key().ToStringView());
  if (!step || *step != r->outer_step) return corrupt("metrics key " + it.key().ToString(true) + " does not match its record");
  return r;
}
}  // namespace

Status Store::put_metrics(const MetricsRecord& record) {
  NOLOCO_ASSIGN_OR_RETURN(auto use, impl_->use_for_write("writing metrics"));
  NOLOCO_ASSIGN_OR_RETURN(Bytes value, encode_metrics(record));
  rocksdb::WriteBatch batch;
  batch.Put(impl_->metrics, slice(metrics_key(record.outer_step)),
            rocksdb::Slice(reinterpret_cast<const char*>(value.data()), value.size()));
  return impl_->write(batch, false, "writing metrics");
}

Result<std::vector<MetricsRecord>> Store::metrics_range(uint64_t from, uint64_t to, size_t limit) {
  NOLOCO_ASSIGN_OR_RETURN(auto use, impl_->use());
  std::vector<MetricsRecord> out;
  if (from > to) return out;
  std::unique_ptr<rocksdb::Iterator> it(impl_->db->NewIterator(rocksdb::ReadOptions(), impl_->metrics));
  const std::string end = metrics_key(to);
  for (it->Seek(slice(metrics_key(from))); it->Valid() && out.size() < limit; it->Next()) {
    if (it->key().compare(slice(end)) > 0) break;
    NOLOCO_ASSIGN_OR_RETURN(MetricsRecord r, decode_at(*it));
    out.push_back(std::move(r));
  }
  NOLOCO_RETURN_IF_ERROR(from_rocks(it->status(), "reading metrics"));
  return out;
}

Result<std::vector<MetricsRecord>> Store::recent_metrics(size_t n) {
  NOLOCO_ASSIGN_OR_RETURN(auto use, impl_->use());
  std::vector<MetricsRecord> out;
  std::unique_ptr<rocksdb::Iterator> it(impl_->db->NewIterator(rocksdb::ReadOptions(), impl_->metrics));
  for (it->SeekToLast(); it->Valid() && out.size() < n; it->Prev()) {
    NOLOCO_ASSIGN_OR_RETURN(MetricsRecord r, decode_at(*it));
    out.push_back(std::move(r));
  }
  NOLOCO_RETURN_IF_ERROR(from_rocks(it->status(), "reading metrics"));
  std::reverse(out.begin(), out.end());
  return out;
}

Status Store::prune_metrics_before(uint64_t outer_step) {
  NOLOCO_ASSIGN_OR_RETURN(auto use, impl_->use_for_write("pruning metrics"));
  rocksdb::WriteBatch batch;
  const std::string begin = metrics_key(0), end = metrics_key(outer_step);
  batch.DeleteRange(impl_->metrics, slice(begin), slice(end));
  return impl_->write(batch, false, "pruning metrics");
}

}  // namespace noloco::storage
