// The byte-level GPT in libtorch (architecture in model.h). Private to trainer/: it exposes
// torch tensors. All parameters live in one contiguous fp32 buffer `flat()` (order and offsets
// from parameter_layout()), and their gradients in `flat_grad()`, so optimizers, outer steps,
// codecs and checkpoints work on two flat tensors instead of dozens of small ones.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <vector>

#include "trainer/core/model.h"

namespace noloco::trainer {

class Gpt {
 public:
  // Weights drawn from a CPU generator seeded with `seed`, then moved to `device`: the same seed
  // gives the same weights on every machine and device.
  Gpt(const ModelConfig& config, uint64_t seed, torch::Device device);
  Gpt(const Gpt&) = delete;
  Gpt& operator=(const Gpt&) = delete;

  const ModelConfig& config() const { return config_; }
  torch::Device device() const { return flat_.device(); }
  int64_t numel() const { return flat_.numel(); }

  // [numel] fp32; the parameters are views into it. Modify in place under NoGradGuard only.
  torch::Tensor& flat() { return flat_; }
  const torch::Tensor& flat() const { return flat_; }
  torch::Tensor& flat_grad() { return flat_grad_; }
  const std::vector<torch::Tensor>& parameters() const { return params_; }

  // tokens: [B, T] int64 with T <= context. Returns logits [B, T, vocab].
  torch::Tensor logits(const torch::Tensor& tokens) const;
  // seq: [B, T+1] int64; predicts seq[:, 1:] from seq[:, :-1]. Mean cross-entropy in nats.
  torch::Tensor loss(const torch::Tensor& seq) const;

  // Zero the gradient buffer (keeps each parameter's .grad() a view into flat_grad()).
  void zero_grad();
  // loss.backward(), then make sure every gradient landed in flat_grad().
  void backward(const torch::Tensor& loss);

 private:
  ModelConfig config_;
  torch::Tensor flat_;
  torch::Tensor flat_grad_;
  std::vector<torch::Tensor> params_;      // views of flat_, requires_grad
  std::vector<torch::Tensor> grad_views_;  // views of flat_grad_
  torch::Tensor causal_mask_;              // [context, context]: 0 on/below diagonal, -inf above
};

// Converts a byte buffer of `rows` sequences of `len` bytes into an int64 [rows, len] tensor.
torch::Tensor bytes_to_tokens(const uint8_t* data, int64_t rows, int64_t len, torch::Device device);

}  // namespace noloco::trainer
