// torch adapter of the tensor codec: dtypes, strides, shapes, and refusal without writing.
#include "torch_catch.h"

#include "trainer/core/codec_torch.h"

using namespace noloco;
using namespace noloco::codec;

namespace {
DecodeLimits limits() { return {uint64_t{1} << 20, uint64_t{1} << 24}; }
}  // namespace

TEST_CASE("torch: a bf16 tensor sent in bf16 mode comes back bit-exact and as bf16", "[codec]") {
  torch::manual_seed(1);
  at::Tensor t = torch::randn({4, 33}).to(at::kBFloat16);
  EncodeOptions opt;
  opt.mode = Mode::kBf16;
  opt.source_dtype = SourceDtype::kFloat32;  // overwritten from the tensor
  auto msg = encode_tensor(t, opt);
  REQUIRE(msg.ok());
  auto h = parse_header(*msg, limits());
  REQUIRE(h.ok());
  CHECK(h->source_dtype == SourceDtype::kBFloat16);
  auto back = decode_tensor(*msg, limits());
  REQUIRE(back.ok());
  CHECK(back->scalar_type() == at::kBFloat16);
  CHECK(back->sizes().vec() == std::vector<int64_t>{4, 33});
  CHECK(torch::equal(*back, t));
}

TEST_CASE("torch: fp32 non-contiguous and fp16 tensors round trip", "[codec]") {
  torch::manual_seed(2);
  at::Tensor base = torch::randn({8, 6});
  at::Tensor t = base.t();  // non-contiguous view
  REQUIRE_FALSE(t.is_contiguous());
  EncodeOptions opt;
  opt.mode = Mode::kFp32;
  opt.zstd = true;
  auto back = decode_tensor(*encode_tensor(t, opt), limits());
  REQUIRE(back.ok());
  CHECK(torch::equal(*back, t));

  at::Tensor half = torch::randn({5, 7}).to(at::kHalf);
  auto hb = decode_tensor(*encode_tensor(half, opt), limits());
  REQUIRE(hb.ok());
  CHECK(hb->scalar_type() == at::kHalf);
  CHECK(torch::equal(*hb, half));

  at::Tensor scalar = torch::tensor(3.5f).reshape({});
  auto sb = decode_tensor(*encode_tensor(scalar, opt), limits());
  REQUIRE(sb.ok());
  CHECK(sb->dim() == 0);
  CHECK(sb->item<float>() == 3.5f);
}

TEST_CASE("torch: int8 decode matches the span codec and stays within the bound", "[codec]") {
  torch::manual_seed(3);
  at::Tensor t = torch::randn({3, 100}) * 0.01;
  EncodeOptions opt;
  opt.mode = Mode::kInt8;
  opt.block_size = 64;
  auto msg = encode_tensor(t, opt);
  REQUIRE(msg.ok());
  auto back = decode_tensor(*msg, limits());
  REQUIRE(back.ok());
  auto ref = decode(*msg, limits());
  REQUIRE(ref.ok());
  const float* p = back->data_ptr<float>();
  for (size_t i = 0; i < ref->values.size(); ++i) REQUIRE(p[i] == ref->values[i]);
  const double amax = t.abs().max().item<double>();  // one bound for all blocks: the loosest
  CHECK((*back - t).abs().max().item<double>() <= error_bound(Mode::kInt8, 0, amax));
}

TEST_CASE("torch: decode_tensor_into checks shape and dtype and writes only verified messages", "[codec]") {
  at::Tensor t = torch::arange(12, torch::kFloat).reshape({3, 4});
  EncodeOptions opt;
  opt.mode = Mode::kBf16;
  Bytes msg = *encode_tensor(t, opt);

  at::Tensor out = torch::full({3, 4}, 7.0f);
  REQUIRE(decode_tensor_into(msg, limits(), out).ok());
  CHECK(torch::equal(out, t));  // small integers are exact in bf16

  at::Tensor as_double = torch::zeros({3, 4}, torch::kDouble);
  REQUIRE(decode_tensor_into(msg, limits(), as_double).ok());
  CHECK(torch::equal(as_double, t.to(torch::kDouble)));

  at::Tensor wrong = torch::full({4, 3}, 7.0f);
  CHECK(decode_tensor_into(msg, limits(), wrong).code() == StatusCode::kInvalidArgument);
  CHECK(torch::all(wrong == 7.0f).item<bool>());

  at::Tensor ints = torch::zeros({3, 4}, torch::kInt);
  CHECK(decode_tensor_into(msg, limits(), ints).code() == StatusCode::kInvalidArgument);

  Bytes bad = msg;
  bad.back() ^= 0x40;
  at::Tensor param = torch::full({3, 4}, 7.0f).set_requires_grad(true);
  CHECK(decode_tensor_into(bad, limits(), param).code() == StatusCode::kCorrupt);
  CHECK(torch::all(param == 7.0f).item<bool>());
  at::Tensor strided = torch::full({4, 3}, 7.0f).t();
  CHECK(decode_tensor_into(bad, limits(), strided).code() == StatusCode::kCorrupt);
  CHECK(torch::all(strided == 7.0f).item<bool>());
  REQUIRE(decode_tensor_into(msg, limits(), strided).ok());
  CHECK(torch::equal(strided, t));
}

TEST_CASE("torch: unsupported dtypes and bad residuals are refused, NaN is refused", "[codec]") {
  EncodeOptions opt;
  CHECK(encode_tensor(torch::zeros({3}, torch::kInt), opt).status().code() == StatusCode::kInvalidArgument);
  CHECK(encode_tensor(torch::zeros({3}, torch::kDouble), opt).status().code() == StatusCode::kInvalidArgument);
  CHECK(encode_tensor(at::Tensor(), opt).status().code() == StatusCode::kInvalidArgument);
  at::Tensor nan = torch::zeros({3});
  nan[1] = std::nanf("");
  CHECK(encode_tensor(nan, opt).status().code() == StatusCode::kInvalidArgument);

  at::Tensor x = torch::randn({10});
  at::Tensor r = torch::zeros({9});
  CHECK(encode_tensor_with_feedback(x, opt, r).status().code() == StatusCode::kInvalidArgument);
  r = torch::zeros({10});
  opt.mode = Mode::kInt4;
  auto msg = encode_tensor_with_feedback(x, opt, r);
  REQUIRE(msg.ok());
  auto sent = decode_tensor(*msg, limits());
  REQUIRE(sent.ok());
  CHECK(torch::equal(r, x - *sent));
}
