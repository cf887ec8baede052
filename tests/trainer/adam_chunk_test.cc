// The inner Adam update runs chunk by chunk over the flat buffers (Replica::kAdamChunk values at a
// time, no model-sized temporaries); it must give exactly the whole-buffer update.
#include <cmath>

#include "test_corpus.h"
#include "torch_catch.h"
#include "trainer/core/replica.h"

using namespace noloco::trainer;

TEST_CASE("inner Adam by chunks equals the whole-buffer update on a model larger than one chunk", "[replica]") {
  torch::set_num_threads(2);
  ReplicaConfig rc;
  rc.model.d_model = 256;  // 2.4 M parameters: two chunks and a partial third
  rc.model.n_layer = 3;
  rc.model.n_head = 4;
  rc.model.context = 16;
  rc.batch = 2;
  rc.inner.schedule.peak = 1e-3;
  rc.inner.schedule.warmup = 0;
  rc.inner.weight_decay = 0.01;
  const noloco::Bytes corpus = testing::synthetic_text(1 << 16);
  auto made = Replica::create(rc, &corpus, 0, 1);
  REQUIRE(made.ok());
  Replica& r = **made;
  REQUIRE(r.theta().numel() > 2 * Replica::kAdamChunk);
  r.train_step();  // non-zero moments for the step we check

  const torch::Tensor theta0 = r.theta().detach().clone(), m0 = r.adam_m().clone(), v0 = r.adam_v().clone();
  const double lr = rc.inner.schedule.at(r.inner_step());
  r.train_step();
  torch::NoGradGuard no_grad;
  const torch::Tensor g = r.model().flat_grad();  // clipped gradient of the step just taken
  const auto& c = rc.inner;
  const double bc1 = 1.0 - std::pow(c.beta1, 2.0), bc2 = 1.0 - std::pow(c.beta2, 2.0);
  const torch::Tensor m = m0.mul(c.beta1).add_(g, 1.0 - c.beta1);
  const torch::Tensor v = v0.mul(c.beta2).addcmul_(g, g, 1.0 - c.beta2);
  const torch::Tensor denom = (v.sqrt() / std::sqrt(bc2)).add_(c.eps);
  const torch::Tensor theta = theta0.mul(1.0 - lr * c.weight_decay).addcdiv_(m, denom, -lr / bc1);
  CHECK(torch::equal(r.adam_m(), m));
  CHECK(torch::equal(r.adam_v(), v));
  CHECK(torch::equal(r.theta(), theta));
  CHECK(!torch::equal(r.theta(), theta0));
}
