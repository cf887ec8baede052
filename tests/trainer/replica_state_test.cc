// Export -> import -> continue is bit-identical; bad state is refused and never half-applied.
#include "torch_catch.h"

#include <cstring>
#include <limits>

#include "test_corpus.h"
#include "trainer/core/outer.h"
#include "trainer/core/replica.h"
#include "trainer/core/replica_state.h"

using namespace noloco;
using namespace noloco::trainer;

namespace {

ReplicaConfig config() {
  ReplicaConfig rc;
  rc.model = *model_preset("tiny");
  rc.model.context = 32;
  rc.batch = 4;
  rc.seed = 21;
  rc.inner.schedule = LrSchedule{2e-3, 3, 20, 0.1};
  return rc;
}

// A few inner steps, a solo outer step (group of one), a few more.
void advance(Replica& r) {
  for (int i = 0; i < 3; ++i) r.train_step();
  OuterView v{r.theta(), r.phi(), r.delta()};
  std::vector<OuterView*> g{&v};
  noloco_group_step(g, {0.5, 0.7, 0.7});
  r.count_outer_step();
  for (int i = 0; i < 2; ++i) r.train_step();
}

std::unique_ptr<Replica> make(const Bytes& train, const ReplicaConfig& rc = config()) {
  auto r = Replica::create(rc, &train, 1, 2);
  REQUIRE(r.ok());
  return std::move(*r);
}

Bytes& blob(std::vector<NamedBlob>& blobs, const std::string& name) {
  for (auto& b : blobs)
    if (b.name == name) return b.bytes;
  FAIL("no blob " << name);
  static Bytes none;
  return none;
}

}  // namespace

TEST_CASE("export, import and continue gives bit-identical weights", "[state]") {
  const Bytes train = testing::synthetic_text(40000);
  auto a = make(train);
  advance(*a);
  auto saved = export_state(*a);
  REQUIRE(saved.ok());
  advance(*a);  // uninterrupted run

  auto b = make(train);  // a fresh process: same config, fresh weights
  CHECK_FALSE(torch::equal(a->theta(), b->theta()));
  REQUIRE(import_state(*b, *saved).ok());
  advance(*b);

  CHECK(torch::equal(a->theta(), b->theta()));
  CHECK(torch::equal(a->phi(), b->phi()));
  CHECK(torch::equal(a->delta(), b->delta()));
  CHECK(torch::equal(a->adam_m(), b->adam_m()));
  CHECK(torch::equal(a->adam_v(), b->adam_v()));
  CHECK(a->inner_step() == b->inner_step());
  CHECK(a->outer_step() == b->outer_step());
  CHECK(a->optimizer_step() == b->optimizer_step());
  CHECK(a->reader().cursor() == b->reader().cursor());
  CHECK(a->inner_step() == 10);
  CHECK(a->outer_step() == 2);
}

TEST_CASE("bad replica state is refused and nothing is applied", "[state]") {
  const Bytes train = testing::synthetic_text(40000);
  auto src = make(train);
  advance(*src);
  auto good = export_state(*src);
  REQUIRE(good.ok());
  auto dst = make(train);
  const torch::Tensor before = dst->theta().clone();
  const int64_t steps_before = dst->inner_step();

  auto expect_refused = [&](std::vector<NamedBlob> blobs, const char* what) {
    INFO(what);
    const Status st = import_state(*dst, blobs);
    CHECK_FALSE(st.ok());
    CHECK(torch::equal(dst->theta(), before));
    CHECK(dst->inner_step() == steps_before);
  };

  {
    auto b = *good;
    blob(b, "theta").resize(blob(b, "theta").size() - 4);
    expect_refused(b, "truncated theta");
  }
  {
    auto b = *good;
    const float nan = std::numeric_limits<float>::quiet_NaN();
    std::memcpy(blob(b, "delta").data() + 40, &nan, 4);
    expect_refused(b, "NaN in delta");
  }
  {
    auto b = *good;
    const float neg = -1.0f;
    std::memcpy(blob(b, "adam.v").data(), &neg, 4);
    expect_refused(b, "negative second moment");
  }
  {
    auto b = *good;
    b.erase(b.begin() + 2);
    expect_refused(b, "missing blob");
  }
  {
    auto b = *good;
    b.push_back(b[0]);
    expect_refused(b, "duplicate blob");
  }
  {
    auto b = *good;
    Bytes& d = blob(b, "data");
    d.resize(16);
    put_u64_le(d, uint64_t{1} << 40);
    expect_refused(b, "cursor out of range");
  }
  {
    auto b = *good;
    blob(b, "counters").resize(8);
    expect_refused(b, "short counters");
  }
  {
    ReplicaConfig other = config();
    other.inner.schedule.peak = 1e-2;
    auto diff = make(train, other);
    auto b = export_state(*diff);
    REQUIRE(b.ok());
    const Status st = import_state(*dst, *b);
    CHECK_FALSE(st.ok());
    CHECK(st.message().find("inner.lr") != std::string::npos);
    CHECK(torch::equal(dst->theta(), before));
  }
  CHECK(import_state(*dst, *good).ok());
  CHECK(torch::equal(dst->theta(), src->theta()));
}
