// How much memory one replica's training step needs, from the model shape and batch alone
// (torch-free). docs/memory.md derives each term; tests/trainer/memory_budget_test.cc fails when
// measured peak memory of training at the `small` preset grows past total().
#pragma once

#include <cstdint>

#include "trainer/core/model.h"

namespace noloco::trainer {

// The inner Adam update works on this many values at a time (1 Mi floats, 4 MiB) with one
// chunk-sized scratch buffer: large enough that per-op overhead vanishes, small enough for the
// last-level cache across the update's passes, and no model-sized temporary.
inline constexpr int64_t kAdamChunkValues = int64_t{1} << 20;

// Bytes, fp32 everywhere (4 bytes a value).
struct MemoryBudget {
  int64_t theta = 0;         // θ: the model's flat weights
  int64_t grad = 0;          // flat gradient buffer (kept across steps, zeroed each step)
  int64_t adam = 0;          // Adam's first and second moments (2 × params)
  int64_t adam_scratch = 0;  // one Adam chunk (kAdamChunkValues, or params if fewer)
  int64_t outer = 0;         // φ and outer momentum δ (2 × params): the NoLoCo/DiLoCo state
  int64_t activations = 0;   // what autograd keeps from the forward pass for the backward pass
  int64_t backward = 0;      // largest transient of the backward pass on top of activations
  // Not derived but fitted to measured peaks (docs/memory.md): heap blocks freed in sizes the
  // next request cannot reuse, BLAS packing buffers, autograd's graph. 16 MiB + step_peak() / 5.
  int64_t runtime = 0;
  int64_t step_peak() const { return activations + backward; }  // freed again after each step
  int64_t total() const { return theta + grad + adam + adam_scratch + outer + step_peak() + runtime; }
};

// Estimate for a replica of `config` training on `batch` sequences of config.context tokens
// (the element counts are listed in docs/memory.md).
MemoryBudget training_memory_budget(const ModelConfig& config, int64_t batch);

}  // namespace noloco::trainer
