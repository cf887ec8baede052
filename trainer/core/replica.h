// One replica's training state: model (θ = its weights), inner optimizer, slow weights φ, outer
// momentum δ, counters and data cursor. Private to trainer/ (exposes torch tensors); the
// torch-free views are simulate.h and replica_state.h.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <memory>
#include <string>

#include "common/status.h"
#include "trainer/core/data.h"
#include "trainer/core/gpt.h"
#include "trainer/core/memory_budget.h"
#include "trainer/core/model.h"
#include "trainer/core/schedule.h"

namespace noloco::trainer {

enum class InnerOptimizer { kAdam, kSgd };

struct InnerConfig {
  InnerOptimizer optimizer = InnerOptimizer::kAdam;
  LrSchedule schedule;
  double beta1 = 0.9, beta2 = 0.999, eps = 1e-8;
  double weight_decay = 0.0;  // decoupled (AdamW style) when > 0
  double clip = 1.0;          // global gradient-norm clip; <= 0 disables
};

struct ReplicaConfig {
  ModelConfig model;
  InnerConfig inner;
  int64_t batch = 16;  // sequences of context+1 bytes per inner step
  uint64_t seed = 1;   // model init (identical for every replica of a run) and data offsets
  // When nonzero, the data offsets come from this instead of `seed` (a p2p node derives it from
  // its peer id, so nodes that do not know each other's index still read different data).
  uint64_t data_seed = 0;
  std::string device = "cpu";
  Status validate() const;
};

// Parses "cpu" or "cuda[:N]"; fails clearly when CUDA is asked for but not available.
Result<torch::Device> parse_device(const std::string& name);

class Replica {
 public:
  // Values per chunk of the inner Adam update (see memory_budget.h).
  static constexpr int64_t kAdamChunk = kAdamChunkValues;

  // `train` must outlive the replica; shard/num_shards pick its part of the training stream.
  static Result<std::unique_ptr<Replica>> create(const ReplicaConfig& config, const Bytes* train,
                                                 int shard, int num_shards);

  // One inner step on this replica's own shard. Returns the training loss (before the update).
  float train_step();
  // One inner step on the given [rows, context+1] int64 batch (for sync data parallel).
  float train_step_on(const torch::Tensor& seq);
  // Reads the next batch of this replica's shard as an int64 tensor on the model's device.
  torch::Tensor next_batch();

  // Mean validation loss over [rows, context+1] windows, evaluated `chunk` rows at a time.
  double eval_loss(const torch::Tensor& windows, int64_t chunk) const;

  const ReplicaConfig& config() const { return config_; }
  Gpt& model() { return *model_; }
  const Gpt& model() const { return *model_; }
  torch::Tensor& theta() { return model_->flat(); }  // fast weights: the model itself
  torch::Tensor& phi() { return phi_; }
  torch::Tensor& delta() { return delta_; }
  torch::Tensor& adam_m() { return m_; }
  torch::Tensor& adam_v() { return v_; }
  const torch::Tensor& theta() const { return model_->flat(); }
  const torch::Tensor& phi() const { return phi_; }
  const torch::Tensor& delta() const { return delta_; }
  const torch::Tensor& adam_m() const { return m_; }
  const torch::Tensor& adam_v() const { return v_; }

  int64_t optimizer_step() const { return opt_step_; }  // Adam's t (bias correction)
  int64_t inner_step() const { return inner_step_; }
  int64_t outer_step() const { return outer_step_; }
  double last_lr() const { return last_lr_; }
  ShardReader& reader() { return reader_; }
  const ShardReader& reader() const { return reader_; }

  // Outer steps call this after updating φ/δ/θ.
  void count_outer_step() { ++outer_step_; }
  // Used by import_state only.
  void set_counters(int64_t opt_step, int64_t inner_step, int64_t outer_step) {
    opt_step_ = opt_step;
    inner_step_ = inner_step;
    outer_step_ = outer_step;
  }

 private:
  Replica(const ReplicaConfig& config, torch::Device device, ShardReader reader);
  void inner_update();
  void adam_update(double lr);  // one Adam step on θ from flat_grad(); opt_step_ already counted

  ReplicaConfig config_;
  torch::Device device_;
  std::unique_ptr<Gpt> model_;
  torch::Tensor phi_, delta_, m_, v_;
  int64_t opt_step_ = 0, inner_step_ = 0, outer_step_ = 0;
  double last_lr_ = 0.0;
  ShardReader reader_;
  Bytes batch_buf_;
  torch::Tensor adam_denom_;  // [min(numel, kAdamChunk)] scratch of adam_update, reused every step
};

}  // namespace noloco::trainer
