// Scheduling passes: reorder nodes without changing what they compute.
#pragma once

#include "passes/pass.h"

namespace kiln::passes {

// Moves every optimizer update (a node whose output replaces a parameter or optimizer
// state: sgd_update, adam_update) to just after the last node it depends on: the producers
// of its inputs (the gradient) and every other reader of the values it updates (the forward
// and backward-data nodes that read the weight). The autodiff pass appends all updates
// after the whole backward pass, which keeps every parameter's gradient alive until the end
// of the step; updated as soon as possible, each gradient dies right after its update, so
// the peak memory of a training step no longer holds all gradients at once (as frameworks
// that run the optimizer inside backward, e.g. PyTorch's optimizer-in-backward hooks).
// Other nodes keep their relative order; updates anchored at the same node keep theirs.
// The lowering may still group small updates into one step (codegen::LowerOptions::
// group_updates) where that does not hold large gradients longer.
class ScheduleUpdatesEarly final : public Pass {
 public:
  std::string_view Name() const override { return "schedule_updates"; }
  StatusOr<bool> Run(ir::Graph& graph) override;
};

}  // namespace kiln::passes
