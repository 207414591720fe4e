#include "passes/pipeline.h"

#include "passes/elementwise_fusion.h"
#include "passes/fusion.h"
#include "passes/schedule.h"
#include "passes/simplify.h"

namespace kiln::passes {

void AddOptimizationPasses(PassManager& pm, int level) {
  if (level >= 1) {
    pm.Add(std::make_unique<ConstantFolding>());
    pm.Add(std::make_unique<CommonSubexpressionElimination>());
  }
  pm.Add(std::make_unique<DeadCodeElimination>());
  if (level >= 2) {
    pm.Add(std::make_unique<FuseSum>());
    pm.Add(std::make_unique<FuseActivation>());
    pm.Add(std::make_unique<DeadCodeElimination>());
    pm.Add(std::make_unique<ScheduleUpdatesEarly>());
  }
}

void AddOptimizationPasses(PassManager& pm, int level, const OptimizationOptions& options) {
  AddOptimizationPasses(pm, level);
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
