// Outer optimizers: the checks of docs/algorithm.md §7 (all but the codec ones).
#include "torch_catch.h"

#include <set>

#include "test_corpus.h"
#include "trainer/core/outer.h"
#include "trainer/core/replica.h"
#include "trainer/core/simulate.h"

using namespace noloco;
using namespace noloco::trainer;

namespace {

ReplicaConfig small_config(InnerOptimizer opt = InnerOptimizer::kAdam) {
  ReplicaConfig rc;
  rc.model = *model_preset("tiny");
  rc.model.context = 32;
  rc.batch = 4;
  rc.seed = 11;
  rc.inner.optimizer = opt;
  rc.inner.schedule = LrSchedule{1e-3, 2, 50, 0.1};
  return rc;
}

std::vector<std::unique_ptr<Replica>> make_replicas(const ReplicaConfig& rc, const Bytes* train, int n) {
  std::vector<std::unique_ptr<Replica>> out;
  for (int i = 0; i < n; ++i) {
    auto r = Replica::create(rc, train, i, n);
    REQUIRE(r.ok());
    out.push_back(std::move(*r));
  }
  return out;
}

std::vector<OuterView> views_of(std::vector<std::unique_ptr<Replica>>& rs) {
  std::vector<OuterView> v;
  for (auto& r : rs) v.push_back({r->theta(), r->phi(), r->delta()});
  return v;
}

std::vector<OuterView*> ptrs(std::vector<OuterView>& vs) {
  std::vector<OuterView*> p;
  for (auto& v : vs) p.push_back(&v);
  return p;
}

OuterView random_view(int64_t n, double phi_shift) {
  return {torch::randn({n}), torch::randn({n}) + phi_shift, torch::randn({n}) * 0.1};
}

}  // namespace

TEST_CASE("NoLoCo with one group of all replicas equals heavy-ball DiLoCo", "[outer]") {
  const Bytes train = testing::synthetic_text(60000);
  const ReplicaConfig rc = small_config();
  auto a = make_replicas(rc, &train, 4), b = make_replicas(rc, &train, 4);
  auto va = views_of(a), vb = views_of(b);
  const NolocoParams p{0.5, 0.7, 0.7};
  for (int outer = 0; outer < 3; ++outer) {
    for (int s = 0; s < 3; ++s) {
      for (auto& r : a) r->train_step();
      for (auto& r : b) r->train_step();
    }
    noloco_group_step(ptrs(va), p);
    diloco_heavy_ball_step(ptrs(vb), p.alpha, p.beta);
  }
  for (size_t i = 0; i < a.size(); ++i) {
    CHECK(torch::allclose(a[i]->theta(), b[i]->theta(), 1e-5, 1e-7));
    CHECK(torch::allclose(a[i]->phi(), b[i]->phi(), 1e-5, 1e-7));
    CHECK(torch::allclose(a[i]->delta(), b[i]->delta(), 1e-5, 1e-7));
  }
  // And the outer steps did something.
  CHECK(a[0]->delta().abs().sum().item<double>() > 0);
}

TEST_CASE("heavy-ball DiLoCo with H=1, inner SGD, alpha=0, beta=1 equals synchronous SGD", "[outer]") {
  const Bytes train = testing::synthetic_text(60000);
  ReplicaConfig rc = small_config(InnerOptimizer::kSgd);
  rc.inner.clip = 0;  // clipping each replica's gradient is not clipping the mean
  rc.inner.schedule = LrSchedule{0.05, 0, 10, 1.0};
  const int n = 4;
  auto reps = make_replicas(rc, &train, n);
  auto views = views_of(reps);
  auto sync = Replica::create(rc, &train, 0, 1);
  REQUIRE(sync.ok());
  std::vector<ShardReader> readers;
  for (int i = 0; i < n; ++i) {
    auto r = ShardReader::create(&train, i, n, rc.model.context + 1, rc.batch, rc.seed);
    REQUIRE(r.ok());
    readers.push_back(*r);
  }
  const int64_t seq = rc.model.context + 1;
  Bytes buf(static_cast<size_t>(n * rc.batch * seq));
  for (int step = 0; step < 5; ++step) {
    for (auto& r : reps) r->train_step();
    diloco_heavy_ball_step(ptrs(views), 0.0, 1.0);
    for (int i = 0; i < n; ++i) readers[static_cast<size_t>(i)].next_batch(buf.data() + i * rc.batch * seq);
    (*sync)->train_step_on(bytes_to_tokens(buf.data(), n * rc.batch, seq, torch::kCPU));
  }
  for (auto& r : reps) CHECK(torch::allclose(r->theta(), (*sync)->theta(), 1e-4, 1e-6));
  CHECK_FALSE(torch::equal((*sync)->theta(), (*sync)->phi()));  // sync really trained
}

TEST_CASE("gamma terms cancel within a group, population mean of delta is alpha*mean delta + beta*mean Delta",
          "[outer]") {
  torch::manual_seed(5);
  const int n = 6;
  const int64_t numel = 1000;
  std::vector<OuterView> vs;
  for (int i = 0; i < n; ++i) vs.push_back(random_view(numel, i));
  std::vector<torch::Tensor> old_delta, old_phi, deltas;
  for (auto& v : vs) {
    old_delta.push_back(v.delta.clone());
    old_phi.push_back(v.phi.clone());
    deltas.push_back(v.theta - v.phi);
  }
  const NolocoParams p{0.5, 0.7, 0.7};
  const auto groups = noloco_groups(n, 2, 99, 0);
  std::vector<torch::Tensor> group_mean_delta(n);
  for (const auto& g : groups) {
    std::vector<torch::Tensor> gd;
    for (int i : g) gd.push_back(deltas[static_cast<size_t>(i)]);
    torch::Tensor md = mean_of(gd);
    std::vector<OuterView*> members;
    for (int i : g) {
      members.push_back(&vs[static_cast<size_t>(i)]);
      group_mean_delta[static_cast<size_t>(i)] = md;
    }
    noloco_group_step(members, p);
  }
  for (const auto& g : groups) {
    torch::Tensor gamma_sum = torch::zeros({numel});
    for (int i : g) {
      const size_t k = static_cast<size_t>(i);
      gamma_sum += vs[k].delta - p.alpha * old_delta[k] - p.beta * group_mean_delta[k];
    }
    CHECK(gamma_sum.abs().max().item<double>() < 1e-5);
    // Each member's own γ term is not zero (the φ differ), so the cancellation is real.
    const size_t k = static_cast<size_t>(g[0]);
    CHECK((vs[k].delta - p.alpha * old_delta[k] - p.beta * group_mean_delta[k]).abs().max().item<double>() > 0.1);
  }
  std::vector<torch::Tensor> new_delta, new_phi;
  for (auto& v : vs) {
    new_delta.push_back(v.delta);
    new_phi.push_back(v.phi);
  }
  torch::Tensor want = p.alpha * mean_of(old_delta) + p.beta * mean_of(deltas);
  CHECK(torch::allclose(mean_of(new_delta), want, 1e-5, 1e-5));
  CHECK(torch::allclose(mean_of(new_phi), mean_of(old_phi) + want, 1e-5, 1e-5));
}

TEST_CASE("after an outer step theta equals phi and the inner optimizer state is untouched", "[outer]") {
  const Bytes train = testing::synthetic_text(60000);
  auto reps = make_replicas(small_config(), &train, 2);
  auto views = views_of(reps);
  for (int method = 0; method < 4; ++method) {
    for (auto& r : reps)
      for (int s = 0; s < 2; ++s) r->train_step();
    std::vector<torch::Tensor> m, v;
    std::vector<int64_t> t;
    for (auto& r : reps) {
      m.push_back(r->adam_m().clone());
      v.push_back(r->adam_v().clone());
      t.push_back(r->optimizer_step());
      CHECK_FALSE(torch::equal(r->theta(), r->phi()));
    }
    switch (method) {
      case 0: noloco_group_step(ptrs(views), {0.5, 0.7, 0.7}); break;
      case 1: diloco_heavy_ball_step(ptrs(views), 0.3, 0.7); break;
      case 2: diloco_nesterov_step(ptrs(views), 0.9, 0.7); break;
      case 3: {
        torch::Tensor mt = mean_of(std::vector<torch::Tensor>{views[0].theta, views[1].theta});
        for (auto& vw : views) noloco_apply_theta(vw, mt, 0.5, 0.7);
        break;
      }
    }
    for (size_t i = 0; i < reps.size(); ++i) {
      CHECK(torch::equal(reps[i]->theta(), reps[i]->phi()));
      CHECK(torch::equal(reps[i]->adam_m(), m[i]));
      CHECK(torch::equal(reps[i]->adam_v(), v[i]));
      CHECK(reps[i]->optimizer_step() == t[i]);
      // The model's parameters see the new weights (θ is the model's own buffer).
      CHECK(reps[i]->model().parameters()[0].data_ptr() == reps[i]->theta().data_ptr());
    }
  }
}

TEST_CASE("the theta-only wire form equals the (Delta, phi) form when gamma == beta", "[outer]") {
  torch::manual_seed(6);
  OuterView a = random_view(500, 0), b = random_view(500, 1);
  OuterView a2{a.theta.clone(), a.phi.clone(), a.delta.clone()};
  OuterView b2{b.theta.clone(), b.phi.clone(), b.delta.clone()};
  std::vector<OuterView*> g{&a, &b};
  noloco_group_step(g, {0.5, 0.7, 0.7});
  torch::Tensor mean_theta = (a2.theta + b2.theta) / 2;
  noloco_apply_theta(a2, mean_theta, 0.5, 0.7);
  noloco_apply_theta(b2, mean_theta, 0.5, 0.7);
  CHECK(torch::allclose(a.phi, a2.phi, 1e-5, 1e-6));
  CHECK(torch::allclose(b.delta, b2.delta, 1e-5, 1e-6));
}

TEST_CASE("Nesterov DiLoCo matches a hand computation", "[outer]") {
  OuterView r{torch::tensor({1.0f, 2.0f}), torch::tensor({0.0f, 0.0f}), torch::tensor({0.5f, 0.0f})};
  torch::Tensor mean_theta = torch::tensor({1.0f, -1.0f});
  nesterov_apply(r, mean_theta, 0.9, 0.7);
  // g = φ − mean θ = (−1, 1); buf = 0.9·(0.5, 0) + g = (−0.55, 1); φ = −0.7·(g + 0.9·buf)
  CHECK(r.delta[0].item<float>() == Approx(-0.55));
  CHECK(r.delta[1].item<float>() == Approx(1.0));
  CHECK(r.phi[0].item<float>() == Approx(-0.7 * (-1 + 0.9 * -0.55)));
  CHECK(r.phi[1].item<float>() == Approx(-0.7 * (1 + 0.9)));
  CHECK(torch::equal(r.theta, r.phi));
}

TEST_CASE("NoLoCo pairing is a seeded random perfect matching", "[outer]") {
  const auto g = noloco_groups(8, 2, 1, 0);
  REQUIRE(g.size() == 4);
  std::set<int> seen;
  for (const auto& grp : g) {
    CHECK(grp.size() == 2);
    seen.insert(grp.begin(), grp.end());
  }
  CHECK(seen.size() == 8);
  CHECK(noloco_groups(8, 2, 1, 0) == g);
  bool changes = false;
  for (int s = 1; s < 6; ++s) changes = changes || noloco_groups(8, 2, 1, s) != g;
  CHECK(changes);
  const auto odd = noloco_groups(5, 2, 1, 0);
  CHECK(odd.size() == 3);
  CHECK(odd.back().size() == 1);
}

TEST_CASE("parameters outside alpha < gamma < sqrt(2 + alpha^2) are warned about", "[outer]") {
  CHECK(noloco_param_warning({0.5, 0.7, 0.7}).empty());
  CHECK_FALSE(noloco_param_warning({0.5, 0.7, 0.3}).empty());
  CHECK_FALSE(noloco_param_warning({0.5, 0.7, 2.0}).empty());
  CHECK_FALSE(noloco_param_warning({0.5, 0.7, 0.0}).empty());
}
