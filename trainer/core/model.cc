// Model shapes and presets (torch-free).
#include "trainer/core/model.h"

#include <array>

namespace noloco::trainer {
namespace {

struct Preset {
  const char* name;
  int64_t d_model, n_layer, n_head, context;
};
constexpr std::array<Preset, 4> kPresets{{
    {"tiny", 64, 2, 4, 64},
    {"small", 128, 4, 4, 128},
    {"medium", 256, 6, 8, 256},
    {"gpt-125m", 768, 12, 12, 1024},
}};

}  // namespace

Status ModelConfig::validate() const {
  // Caps keep a hostile config (from a manifest or checkpoint) from asking for absurd memory.
  if (vocab_size != 256) return invalid_argument("vocab_size must be 256 (byte-level model)");
  if (d_model <= 0 || d_model > 16384) return invalid_argument("d_model must be in 1..16384");
  if (n_layer <= 0 || n_layer > 256) return invalid_argument("n_layer must be in 1..256");
  if (n_head <= 0 || n_head > d_model) return invalid_argument("n_head must be in 1..d_model");
  if (d_model % n_head != 0) return invalid_argument("d_model must be divisible by n_head");
  if (context <= 0 || context > 65536) return invalid_argument("context must be in 1..65536");
  return Status::Ok();
}

Result<ModelConfig> model_preset(std::string_view name) {
  for (const auto& p : kPresets) {
    if (name == p.name) {
      ModelConfig c;
      c.name = p.name;
      c.d_model = p.d_model;
      c.n_layer = p.n_layer;
      c.n_head = p.n_head;
      c.context = p.context;
      return c;
    }
  }
  std::string known;
  for (const auto& p : kPresets) known += std::string(known.empty() ? "" : ", ") + p.name;
  return invalid_argument("unknown model preset '" + std::string(name) + "' (known: " + known + ")");
}

std::vector<std::string> model_preset_names() {
  std::vector<std::string> out;
  for (const auto& p : kPresets) out.emplace_back(p.name);
  return out;
}

std::vector<ParameterInfo> parameter_layout(const ModelConfig& c) {
  std::vector<ParameterInfo> out;
  int64_t offset = 0;
  auto add = [&](std::string name, std::vector<int64_t> shape) {
    int64_t n = 1;
    for (int64_t s : shape) n *= s;
    out.push_back({std::move(name), std::move(shape), offset, n});
    offset += n;
  };
  const int64_t d = c.d_model;
  add("wte", {c.vocab_size, d});
  add("wpe", {c.context, d});
  for (int64_t l = 0; l < c.n_layer; ++l) {
    const std::string p = "h." + std::to_string(l) + ".";
    add(p + "ln1.weight", {d});
    add(p + "ln1.bias", {d});
    add(p + "attn.qkv", {3 * d, d});
    add(p + "attn.out", {d, d});
    add(p + "ln2.weight", {d});
    add(p + "ln2.bias", {d});
    add(p + "mlp.fc", {4 * d, d});
    add(p + "mlp.proj", {d, 4 * d});
  }
  add("ln_f.weight", {d});
  add("ln_f.bias", {d});
  return out;
}

int64_t parameter_count(const ModelConfig& c) {
  // wte + wpe + per layer (2 LayerNorms, qkv, out, fc, proj) + final LayerNorm.
  const int64_t d = c.d_model;
  return c.vocab_size * d + c.context * d + c.n_layer * (12 * d * d + 4 * d) + 2 * d;
}

}  // namespace noloco::trainer
