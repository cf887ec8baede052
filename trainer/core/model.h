// The model's shape, without torch: a byte-level decoder-only transformer (GPT style).
// Everything that only needs sizes (the CLI, benchmarks, storage, a Python twin) includes this
// header; the torch implementation lives in gpt.h/gpt.cc and is private to trainer/core.
//
// Architecture (fixed; tools/bench has a Python copy that must stay identical):
//   tokens are bytes (vocab 256); x = wte[tok] + wpe[pos]
//   n_layer blocks: x = x + attn(LN1(x)); x = x + mlp(LN2(x))
//     LayerNorm: weight and bias, eps 1e-5
//     attn: qkv = Linear(d, 3d, no bias); n_head heads; softmax(q k^T / sqrt(head_dim) + causal
//           mask) v; out = Linear(d, d, no bias)
//     mlp:  Linear(d, 4d, no bias) -> GELU (exact erf form) -> Linear(4d, d, no bias)
//   final LayerNorm; logits = x wte^T (tied embedding). No dropout.
// Init: every Linear and both embeddings N(0, 0.02); the two residual output projections (attn out,
// mlp out) N(0, 0.02 / sqrt(2 n_layer)); LayerNorm weight 1, bias 0.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace noloco::trainer {

struct ModelConfig {
  std::string name = "custom";
  int64_t vocab_size = 256;  // bytes; token ids must be < vocab_size
  int64_t d_model = 64;
  int64_t n_layer = 2;
  int64_t n_head = 4;
  int64_t context = 64;  // maximum sequence length (size of the position embedding)

  int64_t head_dim() const { return n_head > 0 ? d_model / n_head : 0; }
  // d_model divisible by n_head, every size positive and below sane caps.
  Status validate() const;
};

// Named presets: "tiny" (d 64, 2 layers, 4 heads, ctx 64), "small" (d 128, 4 layers, 4 heads,
// ctx 128), "medium" (d 256, 6 layers, 8 heads, ctx 256), "gpt-125m" (d 768, 12 layers,
// 12 heads, ctx 1024).
Result<ModelConfig> model_preset(std::string_view name);
std::vector<std::string> model_preset_names();

// Number of trainable scalars, in the order the model stores them (see ParameterInfo).
int64_t parameter_count(const ModelConfig& config);

// One parameter tensor: its name and shape. The model keeps all parameters in one flat fp32
// buffer in exactly this order, so offsets here are offsets into that buffer.
struct ParameterInfo {
  std::string name;            // e.g. "wte", "h.0.ln1.weight", "h.0.attn.qkv", "ln_f.bias"
  std::vector<int64_t> shape;  // Linear weights are [out, in] as in torch
  int64_t offset = 0;          // in elements, into the flat buffer
  int64_t numel = 0;
};
std::vector<ParameterInfo> parameter_layout(const ModelConfig& config);

}  // namespace noloco::trainer
