// torch::Tensor <-> tensor codec (codec.h). Only trainer/ includes this; the header itself stays
// torch-free (at::Tensor is forward-declared), callers include <torch/torch.h> themselves.
//
// Every function catches c10::Error / std::exception and returns a Status: no exception leaves.
#pragma once

#include "trainer/core/codec.h"

namespace at {
class Tensor;
}

namespace noloco::codec {

// Encodes a float32, bfloat16 or float16 tensor of any device, layout or strides (it is copied
// to contiguous fp32 on the CPU first). options.source_dtype is overwritten with t's dtype.
Result<Bytes> encode_tensor(const at::Tensor& t, EncodeOptions options);

// Error feedback on tensors: `residual` must be a contiguous float32 CPU tensor with t.numel()
// elements (start it at zeros); see codec::encode_with_feedback.
Result<Bytes> encode_tensor_with_feedback(const at::Tensor& t, EncodeOptions options, at::Tensor& residual);

// Decodes into a new CPU tensor with the message's shape and source dtype. Nothing is allocated
// for the result before the message has been fully verified.
Result<at::Tensor> decode_tensor(ByteView in, const DecodeLimits& limits);

// Decodes into an existing floating-point tensor (any device/dtype) whose shape must equal the
// message's; `out` is written only after the whole message has been verified.
Status decode_tensor_into(ByteView in, const DecodeLimits& limits, at::Tensor& out);

}  // namespace noloco::codec
