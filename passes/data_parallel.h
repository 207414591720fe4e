// The data-parallel update (training streams, graph::CompileOptions::streams): K streams
// each compute their rows' gradients "grad:<param>" (BuildTrainingGraph::GradientsOnly);
// the update graph sums the K gradients of every parameter and applies the optimizer once,
// as Gluon's Trainer.step after split_and_load sums the devices' gradients (allreduce on
// one host). With float summation the result equals the whole batch's gradient up to
// summation order, because the forward pass and the loss are batch separable
// (passes/batch_separable.h; the caller checks).
#pragma once

#include <optional>

#include "passes/autodiff.h"
#include "passes/pass.h"

namespace kiln::passes {

// Pass "data_parallel_update": for every parameter the graph declares (in declaration
// order) adds the inputs "grad<k>:<param>" for k = 0..streams-1 (dense f32, the
// parameter's shape and logical layout), their sum (a chain of add nodes named
// "<param>_grad_sum"), and the optimizer's update of the parameter in place
// (AppendSgdUpdate / AppendAdamUpdate: inputs "lr", "rescale_grad"). The graph must hold
// nothing else yet. Errors: InvalidArgument for streams < 1 or a graph with nodes.
class DataParallelUpdate final : public Pass {
 public:
  DataParallelUpdate(int streams, SgdOptions sgd) : streams_(streams), sgd_(sgd) {}
  DataParallelUpdate(int streams, AdamOptions adam) : streams_(streams), adam_(adam) {}
  std::string_view Name() const override { return "data_parallel_update"; }
  StatusOr<bool> Run(ir::Graph& graph) override;

 private:
  int streams_;
  SgdOptions sgd_;
  std::optional<AdamOptions> adam_;
};

}  // namespace kiln::passes
