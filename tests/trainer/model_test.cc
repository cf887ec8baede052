// The byte-level GPT: presets, parameter layout, seeded init, causal masking.
#include "torch_catch.h"

#include "trainer/core/gpt.h"
#include "trainer/core/model.h"

using namespace noloco::trainer;

TEST_CASE("presets have the documented shapes and parameter counts", "[model]") {
  auto tiny = model_preset("tiny");
  REQUIRE(tiny.ok());
  CHECK(tiny->d_model == 64);
  CHECK(tiny->n_layer == 2);
  CHECK(tiny->n_head == 4);
  CHECK(tiny->context == 64);
  // 256·64 + 64·64 + 2·(12·64² + 4·64) + 2·64
  CHECK(parameter_count(*tiny) == 119424);
  auto big = model_preset("gpt-125m");
  REQUIRE(big.ok());
  CHECK(big->d_model == 768);
  CHECK(big->context == 1024);
  CHECK_FALSE(model_preset("huge").ok());
  for (const auto& name : model_preset_names()) {
    auto c = model_preset(name);
    REQUIRE(c.ok());
    CHECK(c->validate().ok());
    const auto layout = parameter_layout(*c);
    CHECK(layout.back().offset + layout.back().numel == parameter_count(*c));
  }
  ModelConfig bad = *tiny;
  bad.n_head = 3;
  CHECK_FALSE(bad.validate().ok());
}

TEST_CASE("same seed gives identical weights, init follows the recipe", "[model]") {
  auto c = *model_preset("tiny");
  Gpt a(c, 7, torch::kCPU), b(c, 7, torch::kCPU), other(c, 8, torch::kCPU);
  CHECK(a.numel() == parameter_count(c));
  CHECK(torch::equal(a.flat(), b.flat()));
  CHECK_FALSE(torch::equal(a.flat(), other.flat()));
  const auto layout = parameter_layout(c);
  for (size_t i = 0; i < layout.size(); ++i) {
    const auto& p = layout[i];
    torch::Tensor t = a.flat().narrow(0, p.offset, p.numel);
    if (p.name.find("ln") != std::string::npos) {
      const double want = p.name.ends_with("weight") ? 1.0 : 0.0;
      CHECK(torch::all(t == want).item<bool>());
    } else {
      const double want = (p.name.ends_with("attn.out") || p.name.ends_with("mlp.proj"))
                              ? 0.02 / std::sqrt(2.0 * c.n_layer)
                              : 0.02;
      CHECK(t.std().item<double>() == Approx(want).epsilon(0.1));
    }
    // Parameters are views of the flat buffer, in layout order.
    CHECK(a.parameters()[i].data_ptr() == t.data_ptr());
  }
}

TEST_CASE("attention is causal: later tokens never change earlier logits", "[model]") {
  auto c = *model_preset("tiny");
  Gpt m(c, 3, torch::kCPU);
  torch::NoGradGuard no_grad;
  torch::Tensor x = torch::randint(0, 256, {2, 32}, torch::kInt64);
  torch::Tensor y = x.clone();
  y.narrow(1, 20, 12).fill_(65);  // change positions 20..31
  torch::Tensor lx = m.logits(x), ly = m.logits(y);
  CHECK(torch::allclose(lx.narrow(1, 0, 20), ly.narrow(1, 0, 20), 0, 0));
  CHECK_FALSE(torch::allclose(lx.narrow(1, 20, 12), ly.narrow(1, 20, 12)));
  CHECK(lx.size(2) == 256);
}

TEST_CASE("initial loss is near ln(256) and gradients land in the flat buffer", "[model]") {
  auto c = *model_preset("tiny");
  Gpt m(c, 1, torch::kCPU);
  torch::Tensor seq = torch::randint(0, 256, {4, 65}, torch::kInt64);
  torch::Tensor loss = m.loss(seq);
  CHECK(loss.item<double>() == Approx(std::log(256.0)).epsilon(0.02));
  m.zero_grad();
  m.backward(loss);
  CHECK(m.flat_grad().abs().sum().item<double>() > 0);
  for (size_t i = 0; i < m.parameters().size(); ++i) {
    CHECK(m.parameters()[i].grad().data_ptr() != nullptr);
  }
  // A second backward accumulates into the same buffer: doubling every gradient.
  torch::Tensor g1 = m.flat_grad().clone();
  m.backward(m.loss(seq));
  CHECK(torch::allclose(m.flat_grad(), 2 * g1, 1e-5, 1e-7));
}
