// Which torch device a node trains on when the user does not say (`noloco join --device auto`):
// a CUDA GPU when this build's libtorch has CUDA and one is present, else the CPU. The rule is a
// pure function of the facts, so it is tested without a GPU; the facts come from torch.
// Torch-free header for the CLI.
#pragma once

#include <string>

#include "common/status.h"

namespace noloco::node {

struct DeviceFacts {
  bool torch_has_cuda = false;  // this libtorch was built with CUDA and its runtime loads
  int cuda_devices = 0;         // GPUs torch sees
};

// requested: "auto", "cpu" or "cuda". auto -> "cuda" when both facts allow it, else "cpu".
// "cuda" without a usable GPU, or any other word, is kInvalidArgument saying why.
Result<std::string> choose_device(const std::string& requested, const DeviceFacts& facts);

// The facts of this process (asks torch; cheap, no GPU memory allocated).
DeviceFacts probe_device_facts();

}  // namespace noloco::node
