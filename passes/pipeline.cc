#include "passes/pipeline.h"

#include "passes/elementwise_fusion.h"
#include "passes/fold_batch_norm.h"
#include "passes/fusion.h"
#include "passes/schedule.h"
#include "passes/simplify.h"

namespace kiln::passes {

namespace {

void AddLevelPasses(PassManager& pm, int level, const TargetCapabilities* target, bool fold_batch_norm) {
  if (level >= 1) {
    pm.Add(std::make_unique<ConstantFolding>());
    pm.Add(std::make_unique<CommonSubexpressionElimination>());
  }
  pm.Add(std::make_unique<DeadCodeElimination>());
  if (level >= 2) {
    if (fold_batch_norm) pm.Add(std::make_unique<FoldBatchNorm>());
    pm.Add(std::make_unique<FuseSum>(target));
    pm.Add(std::make_unique<FuseActivation>(target));
    pm.Add(std::make_unique<DeadCodeElimination>());
    pm.Add(std::make_unique<ScheduleUpdatesEarly>());
  }
}

}  // namespace

void AddOptimizationPasses(PassManager& pm, int level) { AddLevelPasses(pm, level, nullptr, false); }

void AddOptimizationPasses(PassManager& pm, int level, const OptimizationOptions& options) {
  AddLevelPasses(pm, level, options.target, options.fold_batch_norm);
  if (level >= 2 && options.fuse_elementwise) {
    pm.Add(std::make_unique<ElementwiseFusion>());
    pm.Add(std::make_unique<DeadCodeElimination>());
  }
}

std::vector<std::string> OptimizationPassNames(int level) {
  PassManager pm;
  AddOptimizationPasses(pm, level);
  return pm.PassNames();
}

}  // namespace kiln::passes
