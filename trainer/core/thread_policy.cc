#include "trainer/core/thread_policy.h"

#include <torch/torch.h>

#include "common/log.h"

namespace noloco::trainer {

int default_threads(int64_t params) { return params < kOneThreadBelowParams ? 1 : 0; }

void apply_default_threads(const ModelConfig& model) {
  const int64_t params = parameter_count(model);
  const int t = default_threads(params);
  if (t == 0) return;
  torch::set_num_threads(t);
  NLOG_INFO("torch threads: {} (a model of {} parameters trains as fast or faster on one thread; --threads N to choose)",
            t, params);
}

}  // namespace noloco::trainer
