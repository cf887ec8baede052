// Everything `noloco run` opens before its first step (node_run.h): the store and the run it
// belongs to, the corpus and the replica (resumed from the newest valid checkpoint), the network
// and the checkpoint writer. Torch header: trainer/node .cc files only.
#pragma once

#include <torch/torch.h>

#include <memory>
#include <string>

#include "common/status.h"
#include "storage/checkpoint_writer.h"
#include "storage/store.h"
#include "trainer/core/codec.h"
#include "trainer/core/data.h"
#include "trainer/core/gpt.h"
#include "trainer/core/outer.h"
#include "trainer/core/replica.h"
#include "trainer/node/node_network.h"
#include "trainer/node/node_payload.h"
#include "trainer/node/node_run.h"
#include "trainer/node/run_manifest.h"

namespace noloco::node {

struct NodeParts {
  std::unique_ptr<storage::Store> store;
  RunManifest manifest;
  std::string run_id, manifest_json, run_config;
  trainer::ModelConfig model;
  trainer::CorpusSplit split;  // the replica reads its training part: declared before it, so it outlives it
  std::unique_ptr<trainer::Replica> replica;
  torch::Tensor eval_set;
  int64_t eval_windows = 0;
  WireForm form = WireForm::kDeltaPhi;
  PayloadSettings payload;
  trainer::NolocoParams params;
  ExchangeExpectations expect;
  uint64_t numel = 0;
  bool can_look = false;   // --join or a peer book: somewhere to look for the swarm
  uint64_t seed = 0;       // the node core's partner choice
  std::unique_ptr<NodeNetwork> net;
  std::unique_ptr<storage::CheckpointWriter> writer;
  NodeSummary summary;

  double eval() const;
};

// Opens the store, resolves the run, loads corpus and replica (resuming when the store has a
// checkpoint) and starts the network. Reports the listening address through `sinks`.
Result<std::unique_ptr<NodeParts>> open_node(const NodeOptions& options, const NodeSinks& sinks);

}  // namespace noloco::node
