// Building, checking and mixing exchange payloads (node_payload.h).
#include "trainer/node/node_payload.h"

#include <cmath>
#include <cstdio>
#include <vector>

#include "trainer/core/codec_torch.h"

namespace noloco::node {
namespace {

Result<torch::Tensor> decode_flat(const Bytes& msg, int64_t numel, const torch::Device& device, const char* name) {
  codec::DecodeLimits lim;
  lim.max_elements = static_cast<uint64_t>(numel);
  lim.max_encoded_bytes = msg.size();
  torch::Tensor out = torch::empty({numel}, torch::kFloat32);
  NOLOCO_RETURN_IF_ERROR(codec::decode_tensor_into(msg, lim, out).context(name));
  if (!torch::isfinite(out).all().item<bool>()) return corrupt(std::string(name) + ": non-finite values");
  return out.to(device);
}

double norm_of(const torch::Tensor& t) { return t.norm().item<double>(); }

}  // namespace

Result<Payload> build_payload(const trainer::Replica& r, const PayloadSettings& s) {
  try {
    torch::NoGradGuard ng;
    PayloadHeader h;
    h.run_id = s.run_id;
    h.sender = s.sender;
    h.outer_step = static_cast<uint64_t>(r.outer_step());
    h.inner_step = static_cast<uint64_t>(r.inner_step());
    h.form = s.form;
    h.numel = static_cast<uint64_t>(r.phi().numel());
    std::vector<std::pair<std::string, Bytes>> tensors;
    if (s.form == WireForm::kDeltaPhi) {
      NOLOCO_ASSIGN_OR_RETURN(Bytes d, codec::encode_tensor(r.theta() - r.phi(), s.codec));
      NOLOCO_ASSIGN_OR_RETURN(Bytes p, codec::encode_tensor(r.phi(), s.codec));
      tensors.emplace_back("delta", std::move(d));
      tensors.emplace_back("phi", std::move(p));
    } else {
      NOLOCO_ASSIGN_OR_RETURN(Bytes t, codec::encode_tensor(r.theta(), s.codec));
      tensors.emplace_back("theta", std::move(t));
    }
    return make_payload(std::move(h), std::move(tensors));
  } catch (const c10::Error& e) {
    return internal_error(std::string("building payload: ") + e.what_without_backtrace());
  }
}

PayloadStats compare_updates(const torch::Tensor& own, const torch::Tensor& peer, const torch::Tensor& phi_diff,
                             double phi_norm, double floor) {
  torch::NoGradGuard ng;
  PayloadStats s;
  const double own_norm = norm_of(own);
  const double peer_norm = norm_of(peer);
  const double scale = std::max(own_norm, floor * phi_norm);
  // Both norms are finite (decode checked); a zero scale only with φ = 0 and no update of ours.
  s.norm_ratio = scale > 0 ? peer_norm / scale : (peer_norm > 0 ? HUGE_VAL : 0.0);
  if (phi_diff.defined()) s.phi_spread = scale > 0 ? norm_of(phi_diff) / scale : 0.0;
  // Our own update is the reference direction, however small (the floor only keeps the ratios
  // finite); without one (nothing trained yet) or without theirs, the norm bounds alone apply.
  if (own_norm == 0 || peer_norm == 0) {
    s.cosine = 1.0;
    return s;
  }
  s.cosine = torch::dot(own, peer).item<double>() / (own_norm * peer_norm);
  return s;
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

Status judge_update(const PayloadStats& s, const VerifyLimits& lim, WireForm form) {
  Status st = first_failure(s, lim, form);
  if (st.ok()) return st;
  return invalid_argument(st.message() + " [cosine " + fmt(s.cosine) + ", norm ratio " + fmt(s.norm_ratio) +
                          ", phi spread " + fmt(s.phi_spread) + "]");
}

Result<PeerContribution> verify_payload(const Payload& p, const trainer::Replica& self,
                                        const ExchangeExpectations& expect, const VerifyLimits& lim) {
  try {
    torch::NoGradGuard ng;
    // The wire reader checked this already; checking again keeps this function safe on its own.
    NOLOCO_RETURN_IF_ERROR(check_header(p.header, expect));
    if (p.tensors.size() != p.header.tensors.size()) return corrupt("payload: tensor count differs from header");
    const int64_t numel = self.phi().numel();
    if (p.header.numel != static_cast<uint64_t>(numel))
      return invalid_argument("payload has " + std::to_string(p.header.numel) + " parameters, our model has " +
                              std::to_string(numel));
    PeerContribution c;
    c.sender = p.header.sender;
    c.outer_step = p.header.outer_step;
    const torch::Device dev = self.phi().device();
    const double phi_norm = norm_of(self.phi());
    for (size_t i = 0; i < p.tensors.size(); ++i) {
      const std::string& name = p.header.tensors[i].name;
      NOLOCO_ASSIGN_OR_RETURN(torch::Tensor t, decode_flat(p.tensors[i], numel, dev, name.c_str()));
      if (name == "delta") c.delta = t;
      else if (name == "phi") c.phi = t;
      else if (name == "theta") c.theta = t;
      else return corrupt("payload: unknown tensor '" + name + "'");
    }
    const torch::Tensor own = self.theta() - self.phi();
    if (p.header.form == WireForm::kDeltaPhi) {
      if (!c.delta.defined() || !c.phi.defined()) return corrupt("payload: delta or phi missing");
      c.stats = compare_updates(own, c.delta, c.phi - self.phi(), phi_norm, lim.delta_floor);
      const double dist = norm_of(c.phi - self.phi());
      if (dist > lim.max_phi_distance * phi_norm)
        return invalid_argument("payload: slow weights are " + std::to_string(dist) +
                                " away from ours (limit " + std::to_string(lim.max_phi_distance * phi_norm) + ")");
    } else {
      if (!c.theta.defined()) return corrupt("payload: theta missing");
      c.stats = compare_updates(own, c.theta - self.phi(), torch::Tensor(), phi_norm, lim.delta_floor);
      const double dist = norm_of(c.theta - self.phi());
      if (dist > lim.max_phi_distance * phi_norm)
        return invalid_argument("payload: weights are " + std::to_string(dist) + " away from ours (limit " +
                                std::to_string(lim.max_phi_distance * phi_norm) + ")");
    }
    NOLOCO_RETURN_IF_ERROR(judge_update(c.stats, lim, p.header.form));
    return c;
  } catch (const c10::Error& e) {
    return internal_error(std::string("checking payload: ") + e.what_without_backtrace());
  }
}

void apply_outer_step(trainer::Replica& r, std::span<const PeerContribution> peers, const trainer::NolocoParams& p,
                      WireForm form) {
  torch::NoGradGuard ng;
  trainer::OuterView view{r.theta(), r.phi(), r.delta()};
  const double n = static_cast<double>(peers.size() + 1);
  if (form == WireForm::kDeltaPhi) {
    torch::Tensor mean_delta = r.theta() - r.phi();
    torch::Tensor mean_phi = r.phi().clone();
    for (const auto& c : peers) {
      mean_delta.add_(c.delta);
      mean_phi.add_(c.phi);
    }
    mean_delta.div_(n);
    mean_phi.div_(n);
    trainer::noloco_apply(view, mean_delta, mean_phi, p);
  } else {
    torch::Tensor mean_theta = r.theta().clone();
    for (const auto& c : peers) mean_theta.add_(c.theta);
    mean_theta.div_(n);
    trainer::noloco_apply_theta(view, mean_theta, p.alpha, p.beta);
  }
  r.count_outer_step();
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
    NOLOCO_ASSIGN_OR_RETURN(torch::Tensor phi, decode_flat(Bytes(blob.begin(), blob.end()), numel,
                                                           r.phi().device(), "state"));
    if (inner_step > static_cast<uint64_t>(r.config().inner.schedule.total))
      return invalid_argument("state: inner step " + std::to_string(inner_step) + " is past the run's end");
    r.phi().copy_(phi);
    r.theta().copy_(phi);
    r.delta().zero_();
    r.set_counters(r.optimizer_step(), static_cast<int64_t>(inner_step), static_cast<int64_t>(outer_step));
    return Status::Ok();
  } catch (const c10::Error& e) {
    return internal_error(std::string("adopting state: ") + e.what_without_backtrace());
  }
}

}  // namespace noloco::node
