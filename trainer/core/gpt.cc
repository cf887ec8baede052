// Forward pass of the byte-level GPT, written with plain tensor ops (libtorch 1.13 has no fused
// attention). See model.h for the architecture; parameter order is parameter_layout().
#include "trainer/core/gpt.h"

#include <cmath>
#include <limits>

namespace noloco::trainer {
namespace {

// Indices into params_ for one transformer block (8 tensors per block, after wte and wpe).
struct Block {
  const torch::Tensor& ln1_w;
  const torch::Tensor& ln1_b;
  const torch::Tensor& qkv;
  const torch::Tensor& out;
  const torch::Tensor& ln2_w;
  const torch::Tensor& ln2_b;
  const torch::Tensor& fc;
  const torch::Tensor& proj;
};

constexpr double kLnEps = 1e-5;

}  // namespace

Gpt::Gpt(const ModelConfig& config, uint64_t seed, torch::Device device) : config_(config) {
  const auto layout = parameter_layout(config);
  const int64_t total = parameter_count(config);
  torch::NoGradGuard no_grad;
  auto cpu = torch::TensorOptions().dtype(torch::kFloat32).device(torch::kCPU);
  torch::Tensor init = torch::empty({total}, cpu);
  auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  const double std_all = 0.02;
  const double std_resid = 0.02 / std::sqrt(2.0 * static_cast<double>(config.n_layer));
  for (const auto& p : layout) {
    torch::Tensor slice = init.narrow(0, p.offset, p.numel);
    const bool is_ln = p.name.find("ln") != std::string::npos;
    const bool is_resid_out = p.name.ends_with("attn.out") || p.name.ends_with("mlp.proj");
    if (is_ln) {
      slice.fill_(p.name.ends_with("weight") ? 1.0 : 0.0);
    } else {
      slice.normal_(0.0, is_resid_out ? std_resid : std_all, gen);
    }
  }
  flat_ = init.to(device);
  flat_grad_ = torch::zeros_like(flat_);
  for (const auto& p : layout) {
    torch::Tensor v = flat_.narrow(0, p.offset, p.numel).view(p.shape);
    v.requires_grad_(true);
    torch::Tensor g = flat_grad_.narrow(0, p.offset, p.numel).view(p.shape);
    v.mutable_grad() = g;
    params_.push_back(v);
    grad_views_.push_back(g);
  }
  auto fopt = torch::TensorOptions().dtype(torch::kFloat32).device(device);
  causal_mask_ = torch::triu(
      torch::full({config.context, config.context}, -std::numeric_limits<float>::infinity(), fopt),
      1);
}

torch::Tensor Gpt::logits(const torch::Tensor& tokens) const {
  const int64_t B = tokens.size(0), T = tokens.size(1);
  const int64_t d = config_.d_model, nh = config_.n_head, hd = config_.head_dim();
  TORCH_CHECK(T <= config_.context, "sequence longer than the model context");
  const torch::Tensor& wte = params_[0];
  const torch::Tensor& wpe = params_[1];
  torch::Tensor x = torch::embedding(wte, tokens) + wpe.narrow(0, 0, T);
  const torch::Tensor mask = causal_mask_.narrow(0, 0, T).narrow(1, 0, T);
  const double scale = 1.0 / std::sqrt(static_cast<double>(hd));
  for (int64_t l = 0; l < config_.n_layer; ++l) {
    const size_t base = 2 + static_cast<size_t>(l) * 8;
    Block b{params_[base], params_[base + 1], params_[base + 2], params_[base + 3],
            params_[base + 4], params_[base + 5], params_[base + 6], params_[base + 7]};
    torch::Tensor h = torch::layer_norm(x, {d}, b.ln1_w, b.ln1_b, kLnEps);
    torch::Tensor qkv = torch::linear(h, b.qkv);  // [B, T, 3d]
    auto parts = qkv.split(d, -1);
    auto heads = [&](const torch::Tensor& t) { return t.view({B, T, nh, hd}).transpose(1, 2); };
    torch::Tensor q = heads(parts[0]), k = heads(parts[1]), v = heads(parts[2]);
    // [B, nh, T, T], the largest activation. Scaled and masked in place: the same arithmetic as
    // (q kᵀ) * scale + mask, without two more B·nh·T² temporaries (neither backward needs them).
    torch::Tensor att = torch::matmul(q, k.transpose(-2, -1)).mul_(scale).add_(mask);
    att = torch::softmax(att, -1);
    torch::Tensor y = torch::matmul(att, v).transpose(1, 2).reshape({B, T, d});
    x = x + torch::linear(y, b.out);
    h = torch::layer_norm(x, {d}, b.ln2_w, b.ln2_b, kLnEps);
    x = x + torch::linear(torch::gelu(torch::linear(h, b.fc)), b.proj);
  }
  const size_t f = 2 + static_cast<size_t>(config_.n_layer) * 8;
  x = torch::layer_norm(x, {d}, params_[f], params_[f + 1], kLnEps);
  return torch::linear(x, wte);  // tied embedding: [B, T, vocab]
}

torch::Tensor Gpt::loss(const torch::Tensor& seq) const {
  const int64_t T = seq.size(1) - 1;
  torch::Tensor input = seq.narrow(1, 0, T);
  torch::Tensor target = seq.narrow(1, 1, T);
  torch::Tensor lg = logits(input);
  return torch::nn::functional::cross_entropy(lg.reshape({-1, config_.vocab_size}),
                                              target.reshape({-1}));
}

void Gpt::zero_grad() {
  torch::NoGradGuard no_grad;
  flat_grad_.zero_();
}

void Gpt::backward(const torch::Tensor& loss) {
  loss.backward();
  // Autograd accumulates in place into an existing .grad(); if it ever replaced one (e.g. a
  // future torch), copy it back so flat_grad() stays the truth.
  torch::NoGradGuard no_grad;
  for (size_t i = 0; i < params_.size(); ++i) {
    const torch::Tensor& g = params_[i].grad();
    if (!g.defined() || g.data_ptr() != grad_views_[i].data_ptr()) {
      if (g.defined()) grad_views_[i].copy_(g);
      params_[i].mutable_grad() = grad_views_[i];
    }
  }
}

torch::Tensor bytes_to_tokens(const uint8_t* data, int64_t rows, int64_t len, torch::Device device) {
  torch::Tensor t = torch::from_blob(const_cast<uint8_t*>(data), {rows, len}, torch::kUInt8)
                        .to(torch::kInt64);
  return device.is_cpu() ? t : t.to(device);
}

}  // namespace noloco::trainer
