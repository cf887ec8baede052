// Memory of one training step (see memory_budget.h and docs/memory.md for the derivation).
#include "trainer/core/memory_budget.h"

#include <algorithm>

namespace noloco::trainer {

MemoryBudget training_memory_budget(const ModelConfig& c, int64_t batch) {
  constexpr int64_t kF = 4;                      // bytes per fp32 value
  const int64_t p = parameter_count(c);
  const int64_t bt = batch * c.context;          // tokens per step
  const int64_t btd = bt * c.d_model;            // one [B, T, d] activation
  const int64_t att = batch * c.n_head * c.context * c.context;  // one [B, heads, T, T] score matrix
  const int64_t btv = bt * c.vocab_size;         // one [B, T, vocab] logits tensor

  MemoryBudget m;
  m.theta = p * kF;
  m.grad = p * kF;
  m.adam = 2 * p * kF;
  m.adam_scratch = std::min(p, kAdamChunkValues) * kF;
  m.outer = 2 * p * kF;
  // Kept per block for the backward pass: LN1 input, LN1 output, q, k, v (contiguous copies
  // made for the batched matmuls), attention output, LN2 input, LN2 output (1 each, [B, T, d]);
  // MLP hidden before and after GELU (4 each, [B, T, 4d]); 16 [B, T, d] in all, and the softmax
  // output [B, heads, T, T]. Outside the blocks: embedding sum, final LN input and output
  // ([B, T, d] each), logits and their log-softmax ([B, T, vocab] each).
  m.activations = (c.n_layer * (16 * btd + att) + 3 * btd + 2 * btv) * kF;
  // Backward of one block at a time: the gradient of the score matrix twice (softmax's input and
  // output), the gradients flowing through the MLP ([B, T, 4d] twice) and of the logits.
  m.backward = (2 * att + 8 * btd + btv) * kF;
  m.runtime = (int64_t{16} << 20) + m.step_peak() / 5;
  return m;
}

}  // namespace noloco::trainer
