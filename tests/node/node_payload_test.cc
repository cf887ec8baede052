// The trainer side of an exchange (node_payload.h): two replicas that swap payloads over the
// wire format and each apply the step end up exactly where the in-process NoLoCo group step puts
// them; bad tensors are refused before anything changes.
#include "../trainer/torch_catch.h"

#include <unistd.h>

#include <cmath>
#include <filesystem>

#include "../trainer/test_corpus.h"
#include "trainer/core/codec_stream.h"
#include "trainer/core/outer.h"
#include "trainer/core/replica.h"
#include "trainer/node/exchange_wire.h"
#include "trainer/node/node_payload.h"

using namespace noloco;
using namespace noloco::node;

namespace {

trainer::ReplicaConfig config() {
  trainer::ReplicaConfig rc;
  rc.model = *trainer::model_preset("tiny");
  rc.model.context = 32;
  rc.batch = 4;
  rc.seed = 5;
  rc.inner.schedule = trainer::LrSchedule{3e-3, 2, 50, 0.1};
  return rc;
}

std::unique_ptr<trainer::Replica> make(const Bytes* train, int shard, const char* preset = "tiny") {
  trainer::ReplicaConfig rc = config();
  rc.model = *trainer::model_preset(preset);
  rc.model.context = 32;
  auto r = trainer::Replica::create(rc, train, shard, 2);
  REQUIRE(r.ok());
  return std::move(*r);
}

// What the receiver sees: our payload, sent through the exchange framing and reassembled.
Payload over_the_wire(const trainer::Replica& r, const std::string& sender, const ExchangeExpectations& e,
                      codec::EncodeOptions opts = {codec::Mode::kFp32}) {  // exact by default
  PayloadSettings s;
  s.codec = opts;
  s.form = e.form;
  s.run_id = e.run_id;
  s.sender = sender;
  auto p = build_payload(r, s);
  REQUIRE(p.ok());
  PayloadReader reader(e);
  REQUIRE(reader.feed(*p->joined()).ok());
  REQUIRE(reader.done());
  auto got = reader.take();
  REQUIRE(got.ok());
  return std::move(*got);
}

ExchangeExpectations expect_for(const trainer::Replica& r, const std::string& sender) {
  ExchangeExpectations e;
  e.run_id = "run-x";
  e.numel = static_cast<uint64_t>(r.phi().numel());
  e.max_tensor_bytes = e.numel * 4 + 4096;
  e.sender = sender;
  return e;
}

}  // namespace

TEST_CASE("node payload: a pair that swaps payloads and applies the step matches the NoLoCo group step",
          "[node][payload]") {
  const Bytes train = trainer::testing::synthetic_text(200000);
  auto a = make(&train, 0), b = make(&train, 1);
  auto ra = make(&train, 0), rb = make(&train, 1);  // reference pair, same data
  for (int i = 0; i < 3; ++i) {
    a->train_step();
    b->train_step();
    ra->train_step();
    rb->train_step();
  }
  const trainer::NolocoParams p{0.5, 0.7, 0.7};
  // Both payloads are taken before either side moves (as on the wire).
  Payload from_b = over_the_wire(*b, "B", expect_for(*a, "B"));
  Payload from_a = over_the_wire(*a, "A", expect_for(*b, "A"));
  auto cb = verify_payload(std::move(from_b), *a, expect_for(*a, "B"), VerifyLimits{});
  auto ca = verify_payload(std::move(from_a), *b, expect_for(*b, "A"), VerifyLimits{});
  REQUIRE(cb.ok());
  REQUIRE(ca.ok());
  REQUIRE(apply_outer_step(*a, std::vector<PeerContribution>{std::move(*cb)}, p, WireForm::kDeltaPhi).ok());
  REQUIRE(apply_outer_step(*b, std::vector<PeerContribution>{std::move(*ca)}, p, WireForm::kDeltaPhi).ok());

  trainer::OuterView va{ra->theta(), ra->phi(), ra->delta()}, vb{rb->theta(), rb->phi(), rb->delta()};
  trainer::OuterView* group[] = {&va, &vb};
  trainer::noloco_group_step(group, p);
  CHECK(torch::allclose(a->phi(), ra->phi(), 1e-6, 1e-7));
  CHECK(torch::allclose(b->phi(), rb->phi(), 1e-6, 1e-7));
  CHECK(torch::allclose(a->delta(), ra->delta(), 1e-6, 1e-7));
  CHECK(torch::equal(a->theta(), a->phi()));
  CHECK(a->outer_step() == 1);
  // A solo step (no contributions) moves by α·δ + β·Δ only: φ changes, the γ term is zero.
  auto before = a->phi().clone();
  a->train_step();
  REQUIRE(apply_outer_step(*a, {}, p, WireForm::kDeltaPhi).ok());
  CHECK_FALSE(torch::equal(before, a->phi()));
}

TEST_CASE("node payload: NaN, wrong size and far-away tensors are refused and change nothing", "[node][payload]") {
  const Bytes train = trainer::testing::synthetic_text(200000);
  auto a = make(&train, 0), b = make(&train, 1);
  for (int i = 0; i < 3; ++i) {
    a->train_step();
    b->train_step();
  }
  const auto e = expect_for(*a, "B");
  const torch::Tensor phi_before = a->phi().clone(), theta_before = a->theta().clone();

  SECTION("far-away slow weights") {
    torch::NoGradGuard ng;
    b->phi().mul_(4.0);  // a peer whose weights are nowhere near ours (Δ only 4x ours)
    b->theta().mul_(4.0);
    auto c = verify_payload(over_the_wire(*b, "B", e), *a, e, VerifyLimits{});
    REQUIRE_FALSE(c.ok());
    CHECK(c.status().message().find("away from ours") != std::string::npos);
  }
  SECTION("a huge pseudo-gradient") {
    torch::NoGradGuard ng;
    b->theta().add_(torch::ones_like(b->theta()) * 10.0);
    auto c = verify_payload(over_the_wire(*b, "B", e), *a, e, VerifyLimits{});
    REQUIRE_FALSE(c.ok());
    CHECK(c.status().message().find("norm") != std::string::npos);
  }
  SECTION("a tensor whose codec message says another size") {
    Payload p = over_the_wire(*b, "B", e);
    p.header.numel += 1;
    auto c = verify_payload(std::move(p), *a, e, VerifyLimits{});
    CHECK_FALSE(c.ok());
  }
  SECTION("a damaged codec message (hash fixed up by a forger)") {
    Payload p = over_the_wire(*b, "B", e);
    p.tensors[1][p.tensors[1].size() - 1] ^= 0x40;
    Payload forged = make_payload(p.header, {{"delta", p.tensors[0]}, {"phi", p.tensors[1]}});
    auto c = verify_payload(std::move(forged), *a, e, VerifyLimits{});
    CHECK_FALSE(c.ok());
  }
  CHECK(torch::equal(a->phi(), phi_before));
  CHECK(torch::equal(a->theta(), theta_before));
  CHECK(a->outer_step() == 0);
}

TEST_CASE("node payload: the state blob carries φ exactly and adopting it resets δ and takes the counters",
          "[node][payload]") {
  const Bytes train = trainer::testing::synthetic_text(200000);
  auto a = make(&train, 0), b = make(&train, 1);
  for (int i = 0; i < 4; ++i) a->train_step();
  trainer::OuterView va{a->theta(), a->phi(), a->delta()};
  trainer::OuterView* g[] = {&va};
  trainer::noloco_group_step(g, trainer::NolocoParams{});
  a->count_outer_step();
  auto blob = build_state_blob(*a);
  REQUIRE(blob.ok());
  REQUIRE(adopt_state(*b, *blob, 1, 4).ok());
  CHECK(torch::equal(b->phi(), a->phi()));
  CHECK(torch::equal(b->theta(), a->phi()));
  CHECK(b->delta().abs().sum().item<double>() == 0.0);
  CHECK(b->inner_step() == 4);
  CHECK(b->outer_step() == 1);
  // A blob for another model size is refused, and b is untouched.
  Bytes cut(blob->begin(), blob->end() - 4);
  CHECK_FALSE(adopt_state(*b, cut, 2, 8).ok());
  CHECK(b->inner_step() == 4);
}

TEST_CASE("node payload: every codec and form, checked and applied a chunk at a time, gives the step of the whole decoded tensors",
          "[node][payload]") {
  const Bytes train = trainer::testing::synthetic_text(200000);
  const trainer::NolocoParams p{0.5, 0.7, 0.7};
  for (WireForm form : {WireForm::kDeltaPhi, WireForm::kTheta}) {
    for (codec::Mode mode : {codec::Mode::kBf16, codec::Mode::kInt8, codec::Mode::kInt4}) {
      for (bool zstd : {false, true}) {
        CAPTURE(wire_form_name(form), codec::mode_name(mode), zstd);
        // "small" has 0.84M parameters: several chunks of codec::kChunkValues.
        auto a = make(&train, 0, "small"), b = make(&train, 1, "small");
        REQUIRE(a->phi().numel() > 3 * static_cast<int64_t>(codec::kChunkValues));
        for (int i = 0; i < 2; ++i) {
          a->train_step();
          b->train_step();
        }
        ExchangeExpectations e = expect_for(*a, "B");
        e.form = form;
        codec::EncodeOptions o{mode};
        o.zstd = zstd;
        Payload from_b = over_the_wire(*b, "B", e, o);
        // The reference: b's tensors decoded whole, the step on whole tensors.
        std::vector<torch::Tensor> whole;
        for (const Bytes& t : from_b.tensors) {
          auto d = codec::decode(t, codec::DecodeLimits{});
          REQUIRE(d.ok());
          whole.push_back(torch::tensor(d->values));
        }
        torch::Tensor theta = a->theta().detach().clone(), phi = a->phi().clone(), delta = a->delta().clone();
        trainer::OuterView ref{theta, phi, delta};
        if (form == WireForm::kDeltaPhi)
          trainer::noloco_apply(ref, (theta - phi + whole[0]) / 2, (phi + whole[1]) / 2, p);
        else
          trainer::noloco_apply_theta(ref, (theta + whole[0]) / 2, p.alpha, p.beta);

        auto c = verify_payload(std::move(from_b), *a, e, VerifyLimits{});
        REQUIRE(c.ok());
        REQUIRE(apply_outer_step(*a, std::vector<PeerContribution>{std::move(*c)}, p, form).ok());
        CHECK(torch::allclose(a->phi(), ref.phi, 1e-6, 1e-7));
        CHECK(torch::allclose(a->delta(), ref.delta, 1e-6, 1e-7));
        CHECK(torch::equal(a->theta(), a->phi()));
      }
    }
  }
}

TEST_CASE("node payload: a payload whose spool cannot be written is built in memory, byte for byte the same",
          "[node][payload]") {
  const Bytes train = trainer::testing::synthetic_text(200000);
  auto a = make(&train, 0);
  for (int i = 0; i < 2; ++i) a->train_step();
  PayloadSettings s;
  s.codec = {codec::Mode::kBf16};
  s.run_id = "run-x";
  s.sender = "a";
  auto in_memory = build_payload(*a, s);
  REQUIRE(in_memory.ok());

  // A folder that is not there stands for a full disk: SpoolFile::create fails either way.
  const auto dir = std::filesystem::temp_directory_path() / ("noloco-spool-" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  s.spool_dir = dir.string();
  std::string why = "unset";
  auto fallback = build_payload_or_in_memory(*a, s, &why);
  REQUIRE(fallback.ok());
  CHECK_FALSE(why.empty());
  CHECK(*fallback->joined() == *in_memory->joined());

  // A folder that works: spooled, no error, the same bytes.
  std::filesystem::create_directories(dir);
  auto spooled = build_payload_or_in_memory(*a, s, &why);
  REQUIRE(spooled.ok());
  CHECK(why.empty());
  CHECK(*spooled->joined() == *in_memory->joined());
  std::filesystem::remove_all(dir);
}
