// Device choice (device_choice.h).
#include "trainer/node/device_choice.h"

#include <torch/torch.h>

namespace noloco::node {

Result<std::string> choose_device(const std::string& requested, const DeviceFacts& facts) {
  const bool gpu = facts.torch_has_cuda && facts.cuda_devices > 0;
  if (requested == "auto") return std::string(gpu ? "cuda" : "cpu");
  if (requested == "cpu") return std::string("cpu");
  if (requested == "cuda") {
    if (!facts.torch_has_cuda)
      return invalid_argument("--device cuda: this noloco's libtorch has no CUDA (use --device cpu or auto)");
    if (facts.cuda_devices <= 0) return invalid_argument("--device cuda: no CUDA GPU is visible (use --device cpu or auto)");
    return std::string("cuda");
  }
  return invalid_argument("--device '" + requested + "': give auto, cpu or cuda");
}

DeviceFacts probe_device_facts() {
  DeviceFacts f;
  f.torch_has_cuda = torch::cuda::is_available();  // false for a CPU-only libtorch or a missing driver
  f.cuda_devices = f.torch_has_cuda ? static_cast<int>(torch::cuda::device_count()) : 0;
  return f;
}

}  // namespace noloco::node
