// Building, checking and mixing exchange payloads (node_payload.h).
#include "trainer/node/node_payload.h"

#include <cmath>
#include <cstdio>
#include <limits>
#include <vector>

#include "trainer/core/codec_stream.h"
#include "trainer/core/codec_torch.h"
#include "trainer/node/payload_spool.h"
#include "trainer/node/update_evidence.h"

namespace noloco::node {
namespace {

constexpr int64_t kChunk = static_cast<int64_t>(codec::kChunkValues);  // even: int4 chunks line up

double norm_of(const torch::Tensor& t) { return t.norm().item<double>(); }
double dot_of(const torch::Tensor& a, const torch::Tensor& b) { return torch::dot(a, b).item<double>(); }

// A flat tensor's values [begin, begin + out.size()) as fp32 on the CPU, into `out`.
void copy_chunk(const torch::Tensor& t, uint64_t begin, std::span<float> out) {
  torch::Tensor dst = torch::from_blob(out.data(), {static_cast<int64_t>(out.size())}, torch::kFloat32);
  dst.copy_(t.narrow(0, static_cast<int64_t>(begin), static_cast<int64_t>(out.size())));
}

Result<std::vector<Bytes>> encode_flat(const codec::ValueSource& src, int64_t numel, const PayloadSettings& s) {
  codec::EncodeOptions o = s.codec;
  o.source_dtype = codec::SourceDtype::kFloat32;
  return codec::encode_pieces(src, static_cast<uint64_t>(numel), {numel}, o, kExchangeChunkBytes);
}

// Readers of a contribution's messages, each checked to hold exactly our flat parameter vector.
class Chunks {
 public:
  static Result<Chunks> open(const std::vector<Bytes>& msgs, const std::vector<std::string>& names, int64_t numel,
                             const torch::Device& device) {
    Chunks c;
    c.device_ = device;
    for (size_t i = 0; i < msgs.size(); ++i) {
      codec::DecodeLimits lim;
      lim.max_elements = static_cast<uint64_t>(numel);
      lim.max_encoded_bytes = msgs[i].size();
      auto opened = codec::ChunkDecoder::open(msgs[i], lim);
      if (!opened.ok()) return opened.status().context(names[i]);
      std::unique_ptr<codec::ChunkDecoder> d = std::move(*opened);
      if (d->header().shape() != std::vector<int64_t>{numel})
        return invalid_argument(names[i] + ": message has " + std::to_string(d->header().element_count) +
                                " values, not our flat " + std::to_string(numel));
      c.decoders_.push_back(std::move(d));
    }
    c.names_ = names;
    return c;
  }
  // Tensor i's next k values, on the replica's device.
  Result<torch::Tensor> next(size_t i, int64_t k) {
    torch::Tensor buf = torch::empty({k}, torch::kFloat32);
    NOLOCO_RETURN_IF_ERROR(
        decoders_[i]->next(std::span<float>(buf.data_ptr<float>(), static_cast<size_t>(k))).context(names_[i]));
    return device_.is_cpu() ? buf : buf.to(device_);
  }

 private:
  std::vector<std::unique_ptr<codec::ChunkDecoder>> decoders_;
  std::vector<std::string> names_;
  torch::Device device_ = torch::kCPU;
};

}  // namespace

Result<WirePayload> build_payload(const trainer::Replica& r, const PayloadSettings& s) {
  try {
    torch::NoGradGuard ng;
    PayloadHeader h;
    h.run_id = s.run_id;
    h.sender = s.sender;
    h.outer_step = static_cast<uint64_t>(r.outer_step());
    h.inner_step = static_cast<uint64_t>(r.inner_step());
    h.form = s.form;
    const int64_t numel = r.phi().numel();
    h.numel = static_cast<uint64_t>(numel);
    const torch::Tensor theta = r.theta().detach(), phi = r.phi();
    std::vector<std::pair<std::string, codec::ValueSource>> sources;
    if (s.form == WireForm::kDeltaPhi) {
      sources.emplace_back("delta", [&](uint64_t b, std::span<float> out) {
        const auto k = static_cast<int64_t>(out.size());
        torch::from_blob(out.data(), {k}, torch::kFloat32)
            .copy_(theta.narrow(0, static_cast<int64_t>(b), k) - phi.narrow(0, static_cast<int64_t>(b), k));
      });
      sources.emplace_back("phi", [&](uint64_t b, std::span<float> out) { copy_chunk(phi, b, out); });
    } else {
      sources.emplace_back("theta", [&](uint64_t b, std::span<float> out) { copy_chunk(theta, b, out); });
    }
    if (!s.spool_dir.empty()) {
      NOLOCO_ASSIGN_OR_RETURN(std::shared_ptr<SpoolFile> file, SpoolFile::create(s.spool_dir));
      PayloadSpooler spool(std::move(file));
      for (auto& [name, src] : sources) {
        NOLOCO_ASSIGN_OR_RETURN(auto pieces, encode_flat(src, numel, s));
        NOLOCO_RETURN_IF_ERROR(spool.add_tensor(name, pieces));
      }
      return spool.finish(std::move(h));
    }
    std::vector<std::pair<std::string, std::vector<Bytes>>> tensors;
    for (auto& [name, src] : sources) {
      NOLOCO_ASSIGN_OR_RETURN(auto pieces, encode_flat(src, numel, s));
      tensors.emplace_back(name, std::move(pieces));
    }
    return frame_payload(std::move(h), std::move(tensors));
  } catch (const c10::Error& e) {
    return internal_error(std::string("building payload: ") + e.what_without_backtrace());
  }
}

Result<WirePayload> build_payload_or_in_memory(const trainer::Replica& r, const PayloadSettings& s,
                                               std::string* spool_error) {
  spool_error->clear();
  Result<WirePayload> built = build_payload(r, s);
  if (built.ok() || s.spool_dir.empty()) return built;
  *spool_error = built.status().to_string();
  PayloadSettings in_memory = s;
  in_memory.spool_dir.clear();
  return build_payload(r, in_memory);
}

PayloadStats stats_from_norms(double own_norm, double peer_norm, double dot, double phi_diff_norm, double phi_norm,
                              double floor) {
  PayloadStats s;
  const double scale = std::max(own_norm, floor * phi_norm);
  // Both norms are finite (decode checked); a zero scale only with φ = 0 and no update of ours.
  s.norm_ratio = scale > 0 ? peer_norm / scale : (peer_norm > 0 ? HUGE_VAL : 0.0);
  if (phi_diff_norm >= 0) s.phi_spread = scale > 0 ? phi_diff_norm / scale : 0.0;
  // Our own update is the reference direction, however small (the floor only keeps the ratios
  // finite); without one (nothing trained yet) or without theirs, the norm bounds alone apply.
  s.cosine = own_norm == 0 || peer_norm == 0 ? 1.0 : dot / (own_norm * peer_norm);
  return s;
}

PayloadStats compare_updates(const torch::Tensor& own, const torch::Tensor& peer, const torch::Tensor& phi_diff,
                             double phi_norm, double floor) {
  torch::NoGradGuard ng;
  return stats_from_norms(norm_of(own), norm_of(peer), dot_of(own, peer),
                          phi_diff.defined() ? norm_of(phi_diff) : -1.0, phi_norm, floor);
}

namespace {

std::string fmt(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.3g", v);
  return buf;
}

// Written so that a NaN statistic fails every test.
Status first_failure(const PayloadStats& s, const VerifyLimits& lim, WireForm form) {
  if (!(s.phi_spread <= lim.max_phi_spread))
    return invalid_argument("payload: slow weights are " + fmt(s.phi_spread) + "x our update away from ours (limit " +
                            fmt(lim.max_phi_spread) + "x)");
  const bool theta = form == WireForm::kTheta;
  const double max_ratio = theta ? lim.max_norm_ratio_theta : lim.max_norm_ratio_delta_phi;
  if (!(s.norm_ratio <= max_ratio))
    return invalid_argument("payload: update norm is " + fmt(s.norm_ratio) + "x ours (limit " + fmt(max_ratio) +
                            "x)");
  const double min_cos = theta ? lim.min_cosine_theta : lim.min_cosine_delta_phi;
  if (!(s.cosine >= min_cos))
    return invalid_argument("payload: update points away from ours (cosine " + fmt(s.cosine) + ", limit " +
                            fmt(min_cos) + ")");
  return Status::Ok();
}

}  // namespace

VerifyLimits stale_payload_limits() {
  constexpr double kNone = std::numeric_limits<double>::infinity();
  VerifyLimits lim;
  lim.max_phi_spread = kNone;
  lim.max_phi_distance = kNone;
  lim.min_cosine_delta_phi = -kNone;
  lim.min_cosine_theta = -kNone;
  lim.max_norm_ratio_theta = kNone;
  return lim;
}

Status judge_update(const PayloadStats& s, const VerifyLimits& lim, WireForm form) {
  Status st = first_failure(s, lim, form);
  if (st.ok()) return st;
  return invalid_argument(st.message() + " [cosine " + fmt(s.cosine) + ", norm ratio " + fmt(s.norm_ratio) +
                          ", phi spread " + fmt(s.phi_spread) + "]");
}

double refusal_weight(const PayloadStats& s, const VerifyLimits& lim, WireForm form) {
  // The same order as first_failure: the first bound that fails is the refusal's reason. The
  // slow-weight spread is no evidence of strength: honest spreads grow while a node trains alone
  // (29x measured under the eclipse flood, past the bound of 20), so it stays a suspect strike.
  if (!(s.phi_spread <= lim.max_phi_spread)) return kSuspectStrike;
  const double max_ratio = form == WireForm::kTheta ? lim.max_norm_ratio_theta : lim.max_norm_ratio_delta_phi;
  if (!(s.norm_ratio <= max_ratio)) return norm_refusal_weight(s.norm_ratio, max_ratio);
  return kSuspectStrike;
}

namespace {

// Sums over the chunks of what PayloadStats and the distance bound need.
struct UpdateSums {
  double own2 = 0, peer2 = 0, dot = 0, diff2 = 0, phi2 = 0;
  double mom2 = 0, dot_mom = 0;  // ‖δ_own‖², u_peer · δ_own
};

// Appends the values of `chunk` (starting at flat index `begin`) at the multiples of `stride`.
void append_sketch(const torch::Tensor& chunk, int64_t begin, int64_t stride, std::vector<float>& out) {
  const int64_t first = (begin + stride - 1) / stride * stride - begin;
  if (first >= chunk.numel()) return;
  const torch::Tensor v = chunk.slice(0, first, chunk.numel(), stride).to(torch::kCPU, torch::kFloat).contiguous();
  const float* p = v.data_ptr<float>();
  out.insert(out.end(), p, p + v.numel());
}

Result<UpdateSums> sum_updates(const trainer::Replica& self, Chunks& in, WireForm form, UpdateSketch* sketch) {
  const torch::Tensor theta = self.theta().detach(), phi = self.phi();
  const int64_t n = phi.numel();
  const int64_t stride = static_cast<int64_t>(sketch_stride(static_cast<uint64_t>(n)));
  UpdateSums s;
  for (int64_t b = 0; b < n; b += kChunk) {
    const int64_t k = std::min(kChunk, n - b);
    const torch::Tensor ph = phi.narrow(0, b, k);
    const torch::Tensor own = theta.narrow(0, b, k) - ph;
    NOLOCO_ASSIGN_OR_RETURN(torch::Tensor first, in.next(0, k));
    // delta_phi: u_peer = Δ_peer and φ_peer − φ_own; theta: u_peer = θ_peer − φ_own.
    if (sketch && form == WireForm::kDeltaPhi) append_sketch(first, b, stride, sketch->delta);
    const torch::Tensor peer = form == WireForm::kDeltaPhi ? first : first.sub_(ph);
    s.own2 += dot_of(own, own);
    s.peer2 += dot_of(peer, peer);
    s.dot += dot_of(own, peer);
    s.phi2 += dot_of(ph, ph);
    const torch::Tensor mom = self.delta().narrow(0, b, k);
    s.mom2 += dot_of(mom, mom);
    s.dot_mom += dot_of(mom, peer);
    if (form == WireForm::kDeltaPhi) {
      NOLOCO_ASSIGN_OR_RETURN(torch::Tensor peer_phi, in.next(1, k));
      if (sketch) append_sketch(peer_phi, b, stride, sketch->phi);
      peer_phi.sub_(ph);
      s.diff2 += dot_of(peer_phi, peer_phi);
    } else {
      s.diff2 += dot_of(peer, peer);
    }
  }
  return s;
}

}  // namespace

Result<PeerContribution> verify_payload(Payload&& p, const trainer::Replica& self, const ExchangeExpectations& expect,
                                        const VerifyLimits& lim, std::optional<PayloadStats>* seen,
                                        UpdateSketch* sketch) {
  try {
    torch::NoGradGuard ng;
    // The wire reader checked this already; checking again keeps this function safe on its own.
    NOLOCO_RETURN_IF_ERROR(check_header(p.header, expect));
    if (p.tensors.size() != p.header.tensors.size()) return corrupt("payload: tensor count differs from header");
    const int64_t numel = self.phi().numel();
    if (p.header.numel != static_cast<uint64_t>(numel))
      return invalid_argument("payload has " + std::to_string(p.header.numel) + " parameters, our model has " +
                              std::to_string(numel));
    const WireForm form = p.header.form;
    // check_header pinned the names to the form's, in order.
    NOLOCO_ASSIGN_OR_RETURN(Chunks in, Chunks::open(p.tensors, wire_form_tensor_names(form), numel, self.phi().device()));
    if (sketch) *sketch = UpdateSketch{p.header.outer_step, {}, {}};
    NOLOCO_ASSIGN_OR_RETURN(UpdateSums s, sum_updates(self, in, form, sketch));
    const double phi_norm = std::sqrt(s.phi2), dist = std::sqrt(s.diff2);
    PeerContribution c;
    c.sender = p.header.sender;
    c.outer_step = p.header.outer_step;
    c.form = form;
    c.stats = stats_from_norms(std::sqrt(s.own2), std::sqrt(s.peer2), s.dot,
                               form == WireForm::kDeltaPhi ? dist : -1.0, phi_norm, lim.delta_floor);
    const double mom_norm = std::sqrt(s.mom2), peer_norm = std::sqrt(s.peer2);
    c.stats.momentum_cosine = mom_norm > 0 && peer_norm > 0 ? s.dot_mom / (mom_norm * peer_norm) : 0.0;
    if (seen) *seen = c.stats;
    if (dist > lim.max_phi_distance * phi_norm)
      return invalid_argument(std::string(form == WireForm::kDeltaPhi ? "payload: slow weights are " : "payload: weights are ") +
                              std::to_string(dist) + " away from ours (limit " +
                              std::to_string(lim.max_phi_distance * phi_norm) + ")");
    NOLOCO_RETURN_IF_ERROR(judge_update(c.stats, lim, form));
    c.tensors = std::move(p.tensors);
    return c;
  } catch (const c10::Error& e) {
    return internal_error(std::string("checking payload: ") + e.what_without_backtrace());
  }
}

Status apply_outer_step(trainer::Replica& r, std::span<const PeerContribution> peers, const trainer::NolocoParams& p,
                        WireForm form) {
  try {
    torch::NoGradGuard ng;
    const int64_t n = r.phi().numel();
    const auto names = wire_form_tensor_names(form);
    std::vector<Chunks> in;
    for (const auto& c : peers) {
      if (c.form != form || c.tensors.size() != names.size())
        return internal_error("outer step: a contribution of another form");
      NOLOCO_ASSIGN_OR_RETURN(Chunks ch, Chunks::open(c.tensors, names, n, r.phi().device()));
      in.push_back(std::move(ch));
    }
    const double group = static_cast<double>(peers.size() + 1);
    torch::Tensor theta = r.theta().detach();
    for (int64_t b = 0; b < n; b += kChunk) {
      const int64_t k = std::min(kChunk, n - b);
      trainer::OuterView view{theta.narrow(0, b, k), r.phi().narrow(0, b, k), r.delta().narrow(0, b, k)};
      if (form == WireForm::kDeltaPhi) {
        torch::Tensor mean_delta = view.theta - view.phi;
        torch::Tensor mean_phi = view.phi.clone();
        for (auto& ch : in) {
          NOLOCO_ASSIGN_OR_RETURN(torch::Tensor d, ch.next(0, k));
          NOLOCO_ASSIGN_OR_RETURN(torch::Tensor ph, ch.next(1, k));
          mean_delta.add_(d);
          mean_phi.add_(ph);
        }
        mean_delta.div_(group);
        mean_phi.div_(group);
        trainer::noloco_apply(view, mean_delta, mean_phi, p);
      } else {
        torch::Tensor mean_theta = view.theta.clone();
        for (auto& ch : in) {
          NOLOCO_ASSIGN_OR_RETURN(torch::Tensor t, ch.next(0, k));
          mean_theta.add_(t);
        }
        mean_theta.div_(group);
        trainer::noloco_apply_theta(view, mean_theta, p.alpha, p.beta);
      }
    }
    r.count_outer_step();
    return Status::Ok();
  } catch (const c10::Error& e) {
    return internal_error(std::string("outer step: ") + e.what_without_backtrace());
  }
}

Result<Bytes> build_state_blob(const trainer::Replica& r) {
  codec::EncodeOptions o;
  o.mode = codec::Mode::kFp32;
  return codec::encode_tensor(r.phi(), o);
}

Status adopt_state(trainer::Replica& r, ByteView blob, uint64_t outer_step, uint64_t inner_step) {
  try {
    torch::NoGradGuard ng;
    const int64_t numel = r.phi().numel();
    if (inner_step > static_cast<uint64_t>(r.config().inner.schedule.total))
      return invalid_argument("state: inner step " + std::to_string(inner_step) + " is past the run's end");
    codec::DecodeLimits lim;
    lim.max_elements = static_cast<uint64_t>(numel);
    lim.max_encoded_bytes = blob.size();
    // decode_tensor_into checks the whole blob (sizes, checksum, every value finite) and the shape
    // before it writes φ's first value.
    NOLOCO_RETURN_IF_ERROR(codec::decode_tensor_into(blob, lim, r.phi()).context("state"));
    r.theta().copy_(r.phi());
    r.delta().zero_();
    r.set_counters(r.optimizer_step(), static_cast<int64_t>(inner_step), static_cast<int64_t>(outer_step));
    return Status::Ok();
  } catch (const c10::Error& e) {
    return internal_error(std::string("adopting state: ") + e.what_without_backtrace());
  }
}

}  // namespace noloco::node
