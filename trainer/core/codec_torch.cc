// torch adapter for the tensor codec: dtype/device/stride handling only; the format is codec.cc's.
#include "trainer/core/codec_torch.h"

#include <torch/torch.h>

#include <exception>
#include <memory>
#include <span>
#include <string>
#include <vector>

namespace noloco::codec {
namespace {

Result<SourceDtype> source_dtype_of(const at::Tensor& t) {
  switch (t.scalar_type()) {
    case at::kFloat: return SourceDtype::kFloat32;
    case at::kBFloat16: return SourceDtype::kBFloat16;
    case at::kHalf: return SourceDtype::kFloat16;
    default: return invalid_argument(std::string("codec cannot encode dtype ") + c10::toString(t.scalar_type()));
  }
}

at::ScalarType scalar_type_of(SourceDtype d) {
  switch (d) {
    case SourceDtype::kFloat32: return at::kFloat;
    case SourceDtype::kBFloat16: return at::kBFloat16;
    case SourceDtype::kFloat16: return at::kHalf;
  }
  return at::kFloat;
}

// The tensor as contiguous fp32 on the CPU (a no-op view when it already is).
at::Tensor as_cpu_f32(const at::Tensor& t) {
  return t.detach().to(at::kCPU, at::kFloat).contiguous();
}

std::span<const float> values_of(const at::Tensor& cpu_f32) {
  return {cpu_f32.data_ptr<float>(), static_cast<size_t>(cpu_f32.numel())};
}

Status from_exception(const char* where, const std::exception& e) {
  return internal_error(std::string(where) + ": " + e.what());
}

}  // namespace

Result<Bytes> encode_tensor(const at::Tensor& t, EncodeOptions options) {
  try {
    if (!t.defined()) return invalid_argument("encode_tensor: undefined tensor");
    NOLOCO_ASSIGN_OR_RETURN(options.source_dtype, source_dtype_of(t));
    at::Tensor x = as_cpu_f32(t);
    return encode(values_of(x), t.sizes().vec(), options);
  } catch (const std::exception& e) {
    return from_exception("encode_tensor", e);
  }
}

Result<Bytes> encode_tensor_with_feedback(const at::Tensor& t, EncodeOptions options, at::Tensor& residual) {
  try {
    if (!t.defined() || !residual.defined()) return invalid_argument("encode_tensor_with_feedback: undefined tensor");
    NOLOCO_ASSIGN_OR_RETURN(options.source_dtype, source_dtype_of(t));
    if (residual.scalar_type() != at::kFloat || !residual.device().is_cpu() || !residual.is_contiguous() ||
        residual.numel() != t.numel())
      return invalid_argument("residual must be a contiguous float32 CPU tensor with as many elements as the input");
    at::Tensor x = as_cpu_f32(t);
    std::span<float> r(residual.data_ptr<float>(), static_cast<size_t>(residual.numel()));
    return encode_with_feedback(values_of(x), t.sizes().vec(), options, r);
  } catch (const std::exception& e) {
    return from_exception("encode_tensor_with_feedback", e);
  }
}

Result<at::Tensor> decode_tensor(ByteView in, const DecodeLimits& limits) {
  try {
    NOLOCO_ASSIGN_OR_RETURN(Decoded d, decode(in, limits));
    // Hand the verified vector to torch without copying; the deleter frees it with the tensor.
    auto owned = std::make_unique<std::vector<float>>(std::move(d.values));
    std::vector<float>* raw = owned.get();
    at::Tensor f32 = torch::from_blob(
        raw->data(), d.header.shape(), [raw](void*) { delete raw; }, torch::TensorOptions().dtype(at::kFloat));
    owned.release();  // the tensor's storage owns it now
    const at::ScalarType want = scalar_type_of(d.header.source_dtype);
    return want == at::kFloat ? f32 : f32.to(want);
  } catch (const std::exception& e) {
    return from_exception("decode_tensor", e);
  }
}

Status decode_tensor_into(ByteView in, const DecodeLimits& limits, at::Tensor& out) {
  try {
    torch::NoGradGuard no_grad;  // writing a parameter in place is not part of any graph
    if (!out.defined() || !at::isFloatingType(out.scalar_type()))
      return invalid_argument("decode_tensor_into: output must be a floating-point tensor");
    NOLOCO_ASSIGN_OR_RETURN(Header h, parse_header(in, limits));
    if (h.shape() != out.sizes().vec())
      return invalid_argument("decode_tensor_into: message shape " + c10::str(at::IntArrayRef(h.shape())) +
                              " does not match the tensor's " + c10::str(out.sizes()));
    if (out.scalar_type() == at::kFloat && out.device().is_cpu() && out.is_contiguous()) {
      // decode_into verifies the whole message before writing its first value.
      return decode_into(in, limits, std::span<float>(out.data_ptr<float>(), static_cast<size_t>(out.numel())));
    }
    NOLOCO_ASSIGN_OR_RETURN(Decoded d, decode(in, limits));
    at::Tensor src = torch::from_blob(d.values.data(), d.header.shape(), torch::TensorOptions().dtype(at::kFloat));
    out.copy_(src);  // copy_ converts dtype and device; src is only read during the call
    return Status::Ok();
  } catch (const std::exception& e) {
    return from_exception("decode_tensor_into", e);
  }
}

}  // namespace noloco::codec
