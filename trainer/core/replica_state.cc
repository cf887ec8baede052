// Replica state <-> named byte blobs (see replica_state.h). Floats are little-endian fp32.
#include "trainer/core/replica_state.h"

#include <bit>
#include <cmath>
#include <cstring>
#include <map>
#include <sstream>

#include "trainer/core/replica.h"

namespace noloco::trainer {
namespace {

static_assert(std::endian::native == std::endian::little,
              "replica state stores raw little-endian fp32; add byte swapping for this host");

constexpr uint64_t kMaxCounter = uint64_t{1} << 62;

Bytes tensor_bytes(const torch::Tensor& t) {
  torch::Tensor c = t.detach().to(torch::kCPU).contiguous();
  Bytes out(static_cast<size_t>(c.numel()) * sizeof(float));
  std::memcpy(out.data(), c.data_ptr<float>(), out.size());
  return out;
}

// A view of the tensor's own memory when it already is CPU contiguous fp32; else a copy.
BlobSource tensor_source(std::string name, const torch::Tensor& t) {
  if (t.device().is_cpu() && t.is_contiguous() && t.scalar_type() == torch::kFloat32) {
    const auto* p = static_cast<const uint8_t*>(t.data_ptr());
    static const uint8_t kEmpty = 0;  // a non-null view of an empty tensor, so data() picks it
    return {std::move(name), {}, ByteView(p ? p : &kEmpty, static_cast<size_t>(t.numel()) * sizeof(float))};
  }
  return {std::move(name), tensor_bytes(t), {}};
}

Bytes u64s(std::initializer_list<uint64_t> vs) {
  Bytes out;
  for (uint64_t v : vs) put_u64_le(out, v);
  return out;
}

// Checks a float blob: exact size, all finite, and (for Adam's v) non-negative.
Status check_floats(const std::string& name, const Bytes& b, int64_t numel, bool nonneg) {
  if (b.size() != static_cast<size_t>(numel) * sizeof(float))
    return corrupt(name + ": " + std::to_string(b.size()) + " bytes, expected " +
                   std::to_string(numel * 4));
  for (size_t i = 0; i < b.size(); i += 4) {
    float f;
    std::memcpy(&f, b.data() + i, 4);
    if (!std::isfinite(f)) return corrupt(name + ": non-finite value at element " + std::to_string(i / 4));
    if (nonneg && f < 0) return corrupt(name + ": negative value at element " + std::to_string(i / 4));
  }
  return Status::Ok();
}

void load_floats(torch::Tensor& dst, const Bytes& b) {
  torch::Tensor src = torch::from_blob(const_cast<uint8_t*>(b.data()), {dst.numel()}, torch::kFloat32);
  dst.copy_(src);
}

}  // namespace

std::string describe_config(const Replica& replica) {
  const ReplicaConfig& c = replica.config();
  std::ostringstream s;
  s.precision(17);
  s << "format=" << kReplicaStateFormat << "\n"
    << "model.vocab_size=" << c.model.vocab_size << "\n"
    << "model.d_model=" << c.model.d_model << "\n"
    << "model.n_layer=" << c.model.n_layer << "\n"
    << "model.n_head=" << c.model.n_head << "\n"
    << "model.context=" << c.model.context << "\n"
    << "inner.optimizer=" << (c.inner.optimizer == InnerOptimizer::kAdam ? "adam" : "sgd") << "\n"
    << "inner.lr=" << c.inner.schedule.peak << "\n"
    << "inner.warmup=" << c.inner.schedule.warmup << "\n"
    << "inner.total=" << c.inner.schedule.total << "\n"
    << "inner.final_ratio=" << c.inner.schedule.final_ratio << "\n"
    << "inner.beta1=" << c.inner.beta1 << "\n"
    << "inner.beta2=" << c.inner.beta2 << "\n"
    << "inner.eps=" << c.inner.eps << "\n"
    << "inner.weight_decay=" << c.inner.weight_decay << "\n"
    << "inner.clip=" << c.inner.clip << "\n"
    << "batch=" << c.batch << "\n"
    << "seed=" << c.seed << "\n";
  // Only when set, so configs (and checkpoints) written before the field existed stay equal.
  if (c.data_seed != 0) s << "data_seed=" << c.data_seed << "\n";
  return s.str();
}

Result<std::vector<NamedBlob>> export_state(const Replica& r) {
  NOLOCO_ASSIGN_OR_RETURN(std::vector<BlobSource> sources, view_state(r));
  std::vector<NamedBlob> out;
  for (BlobSource& s : sources) {
    if (s.view.data() != nullptr) s.bytes.assign(s.view.begin(), s.view.end());
    out.push_back({std::move(s.name), std::move(s.bytes)});
  }
  return out;
}

Result<std::vector<BlobSource>> view_state(const Replica& r) {
  try {
    std::vector<BlobSource> out;
    out.push_back({"config", to_bytes(describe_config(r)), {}});
    out.push_back(tensor_source("theta", r.theta()));
    out.push_back(tensor_source("phi", r.phi()));
    out.push_back(tensor_source("delta", r.delta()));
    out.push_back(tensor_source("adam.m", r.adam_m()));
    out.push_back(tensor_source("adam.v", r.adam_v()));
    out.push_back({"counters", u64s({static_cast<uint64_t>(r.optimizer_step()),
                                     static_cast<uint64_t>(r.inner_step()),
                                     static_cast<uint64_t>(r.outer_step())}), {}});
    // Every random draw (init, data offsets, pairings) is a pure function of the seed and the
    // counters above, so the seed is the whole RNG state.
    out.push_back({"rng", u64s({r.config().seed}), {}});
    out.push_back({"data", u64s({static_cast<uint64_t>(r.reader().shard_begin()),
                                 static_cast<uint64_t>(r.reader().shard_end()),
                                 static_cast<uint64_t>(r.reader().cursor())}), {}});
    return out;
  } catch (const c10::Error& e) {
    return internal_error(std::string("export_state: ") + e.what_without_backtrace());
  }
}

Status import_state(Replica& r, std::span<const NamedBlob> blobs) {
  std::map<std::string, const Bytes*> by_name;
  for (const auto& b : blobs) {
    if (!by_name.emplace(b.name, &b.bytes).second) return corrupt("duplicate blob '" + b.name + "'");
  }
  static const char* kNames[] = {"config", "theta", "phi", "delta", "adam.m",
                                 "adam.v", "counters", "rng", "data"};
  for (const char* n : kNames)
    if (!by_name.count(n)) return corrupt(std::string("missing blob '") + n + "'");
  if (by_name.size() != std::size(kNames)) return corrupt("unexpected extra blobs in replica state");

  const std::string mine = describe_config(r);
  const std::string theirs = to_string(*by_name["config"]);
  if (mine != theirs) {
    // Name the first differing line so the user sees which setting changed.
    std::istringstream a(mine), b(theirs);
    std::string la, lb;
    while (std::getline(a, la) && std::getline(b, lb) && la == lb) {
    }
    return invalid_argument("replica state was saved with a different config (saved '" + lb +
                            "', running '" + la + "')");
  }
  const int64_t n = r.theta().numel();
  NOLOCO_RETURN_IF_ERROR(check_floats("theta", *by_name["theta"], n, false));
  NOLOCO_RETURN_IF_ERROR(check_floats("phi", *by_name["phi"], n, false));
  NOLOCO_RETURN_IF_ERROR(check_floats("delta", *by_name["delta"], n, false));
  NOLOCO_RETURN_IF_ERROR(check_floats("adam.m", *by_name["adam.m"], n, false));
  NOLOCO_RETURN_IF_ERROR(check_floats("adam.v", *by_name["adam.v"], n, true));

  const Bytes& counters = *by_name["counters"];
  if (counters.size() != 24) return corrupt("counters: expected 24 bytes");
  const uint64_t opt = get_u64_le(counters.data()), inner = get_u64_le(counters.data() + 8),
                 outer = get_u64_le(counters.data() + 16);
  if (opt > kMaxCounter || inner > kMaxCounter || outer > kMaxCounter || opt > inner)
    return corrupt("counters out of range");
  const Bytes& rng = *by_name["rng"];
  if (rng.size() != 8 || get_u64_le(rng.data()) != r.config().seed)
    return corrupt("rng: seed does not match the config");
  const Bytes& data = *by_name["data"];
  if (data.size() != 24) return corrupt("data: expected 24 bytes");
  if (get_u64_le(data.data()) != static_cast<uint64_t>(r.reader().shard_begin()) ||
      get_u64_le(data.data() + 8) != static_cast<uint64_t>(r.reader().shard_end()))
    return invalid_argument("data: saved shard differs from this replica's shard (different corpus or replica count)");
  const uint64_t cursor = get_u64_le(data.data() + 16);
  if (cursor > kMaxCounter) return corrupt("data: cursor out of range");
  ShardReader probe = r.reader();
  NOLOCO_RETURN_IF_ERROR(probe.set_cursor(static_cast<int64_t>(cursor)));

  // Everything checked: apply.
  try {
    torch::NoGradGuard no_grad;
    load_floats(r.theta(), *by_name["theta"]);
    load_floats(r.phi(), *by_name["phi"]);
    load_floats(r.delta(), *by_name["delta"]);
    load_floats(r.adam_m(), *by_name["adam.m"]);
    load_floats(r.adam_v(), *by_name["adam.v"]);
  } catch (const c10::Error& e) {
    return internal_error(std::string("import_state: ") + e.what_without_backtrace());
  }
  r.set_counters(static_cast<int64_t>(opt), static_cast<int64_t>(inner), static_cast<int64_t>(outer));
  r.reader() = probe;
  return Status::Ok();
}

}  // namespace noloco::trainer
