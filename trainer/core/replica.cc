// Inner loop of one replica: forward, backward, gradient clip, Adam (or SGD) on the flat buffer.
#include "trainer/core/replica.h"

#include <algorithm>
#include <cmath>

#include "trainer/core/heap_policy.h"
#include "trainer/core/memory_budget.h"

namespace noloco::trainer {

Status ReplicaConfig::validate() const {
  NOLOCO_RETURN_IF_ERROR(model.validate());
  if (batch <= 0 || batch > 65536) return invalid_argument("batch must be in 1..65536");
  const auto& s = inner.schedule;
  if (!(s.peak > 0.0) || !std::isfinite(s.peak)) return invalid_argument("lr must be positive");
  if (s.warmup < 0 || s.total < 0) return invalid_argument("warmup and steps must be >= 0");
  if (!(s.final_ratio >= 0.0 && s.final_ratio <= 1.0))
    return invalid_argument("final lr ratio must be in [0, 1]");
  if (!(inner.beta1 >= 0 && inner.beta1 < 1 && inner.beta2 >= 0 && inner.beta2 < 1))
    return invalid_argument("Adam betas must be in [0, 1)");
  if (!(inner.eps > 0)) return invalid_argument("Adam eps must be positive");
  if (!(inner.weight_decay >= 0)) return invalid_argument("weight decay must be >= 0");
  return Status::Ok();
}

Result<torch::Device> parse_device(const std::string& name) {
  if (name == "cpu") return torch::Device(torch::kCPU);
  if (name == "cuda" || name.starts_with("cuda:")) {
    if (!torch::cuda::is_available())
      return unsupported("--device " + name +
                         ": CUDA is not available (no GPU, or libtorch built without CUDA)");
    try {
      torch::Device d(name);
      if (d.index() >= static_cast<int>(torch::cuda::device_count()))
        return invalid_argument("--device " + name + ": no such CUDA device");
      return d;
    } catch (const c10::Error&) {
      return invalid_argument("bad device name '" + name + "'");
    }
  }
  return invalid_argument("unknown device '" + name + "' (use cpu or cuda)");
}

Replica::Replica(const ReplicaConfig& config, torch::Device device, ShardReader reader)
    : config_(config), device_(device), reader_(std::move(reader)) {
  model_ = std::make_unique<Gpt>(config.model, config.seed, device);
  torch::NoGradGuard no_grad;
  phi_ = model_->flat().clone();
  delta_ = torch::zeros_like(phi_);
  m_ = torch::zeros_like(phi_);
  v_ = torch::zeros_like(phi_);
  batch_buf_.resize(static_cast<size_t>(config.batch * (config.model.context + 1)));
  keep_freed_heap_for_step(training_memory_budget(config.model, config.batch).step_peak());
}

Result<std::unique_ptr<Replica>> Replica::create(const ReplicaConfig& config, const Bytes* train,
                                                 int shard, int num_shards) {
  NOLOCO_RETURN_IF_ERROR(config.validate());
  NOLOCO_ASSIGN_OR_RETURN(torch::Device device, parse_device(config.device));
  NOLOCO_ASSIGN_OR_RETURN(ShardReader reader,
                          ShardReader::create(train, shard, num_shards, config.model.context + 1,
                                              config.batch,
                                              config.data_seed != 0 ? config.data_seed : config.seed));
  try {
    return std::unique_ptr<Replica>(new Replica(config, device, std::move(reader)));
  } catch (const c10::Error& e) {
    return internal_error(std::string("creating replica: ") + e.what_without_backtrace());
  }
}

torch::Tensor Replica::next_batch() {
  reader_.next_batch(batch_buf_.data());
  return bytes_to_tokens(batch_buf_.data(), config_.batch, config_.model.context + 1, device_);
}

float Replica::train_step() { return train_step_on(next_batch()); }

float Replica::train_step_on(const torch::Tensor& seq) {
  model_->zero_grad();
  torch::Tensor loss = model_->loss(seq);
  model_->backward(loss);
  inner_update();
  return loss.item<float>();
}

void Replica::inner_update() {
  torch::NoGradGuard no_grad;
  torch::Tensor& p = model_->flat();
  torch::Tensor& g = model_->flat_grad();
  const InnerConfig& c = config_.inner;
  if (c.clip > 0) {
    // As torch.nn.utils.clip_grad_norm_: scale by clip / (norm + 1e-6) when that is below 1.
    // Kept on the device (no host sync).
    torch::Tensor coef = (c.clip / (g.norm() + 1e-6)).clamp_max(1.0);
    g.mul_(coef);
  }
  const double lr = c.schedule.at(inner_step_);
  last_lr_ = lr;
  if (c.optimizer == InnerOptimizer::kSgd) {
    if (c.weight_decay > 0) p.mul_(1.0 - lr * c.weight_decay);
    p.add_(g, -lr);
  } else {
    ++opt_step_;
    adam_update(lr);
  }
  ++inner_step_;
}

void Replica::adam_update(double lr) {
  const InnerConfig& c = config_.inner;
  torch::Tensor& p = model_->flat();
  torch::Tensor& g = model_->flat_grad();
  const double bc1 = 1.0 - std::pow(c.beta1, static_cast<double>(opt_step_));
  const double bc2 = 1.0 - std::pow(c.beta2, static_cast<double>(opt_step_));
  // Chunk by chunk with one reused chunk-sized buffer for the denominator: the whole-buffer form
  // (v.sqrt() / sqrt(bc2)) allocated two model-sized temporaries every step (688 MB at gpt-125m,
  // mmapped and faulted in again each time), and a chunk stays in cache across the five passes.
  // (memory_budget.h's kAdamChunkValues sets the chunk.)
  // Element for element the arithmetic is the one of torch.optim.Adam.
  const int64_t n = p.numel();
  const int64_t chunk = std::min<int64_t>(n, kAdamChunk);
  if (!adam_denom_.defined() || adam_denom_.numel() != chunk) adam_denom_ = torch::empty({chunk}, p.options());
  for (int64_t off = 0; off < n; off += chunk) {
    const int64_t len = std::min(chunk, n - off);
    torch::Tensor pc = p.narrow(0, off, len), gc = g.narrow(0, off, len);
    torch::Tensor mc = m_.narrow(0, off, len), vc = v_.narrow(0, off, len);
    torch::Tensor denom = adam_denom_.narrow(0, 0, len);
    if (c.weight_decay > 0) pc.mul_(1.0 - lr * c.weight_decay);
    mc.mul_(c.beta1).add_(gc, 1.0 - c.beta1);
    vc.mul_(c.beta2).addcmul_(gc, gc, 1.0 - c.beta2);
    torch::sqrt_out(denom, vc).div_(std::sqrt(bc2)).add_(c.eps);
    pc.addcdiv_(mc, denom, -lr / bc1);
  }
}

double Replica::eval_loss(const torch::Tensor& windows, int64_t chunk) const {
  torch::NoGradGuard no_grad;
  const int64_t rows = windows.size(0);
  double sum = 0.0;
  for (int64_t r = 0; r < rows; r += chunk) {
    const int64_t n = std::min(chunk, rows - r);
    sum += model_->loss(windows.narrow(0, r, n)).item<double>() * static_cast<double>(n);
  }
  return sum / static_cast<double>(rows);
}

}  // namespace noloco::trainer
