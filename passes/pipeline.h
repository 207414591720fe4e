// Optimization levels as named pass pipelines (run after autodiff and the optimizer update
// have been added to a training graph).
//   -O0  dce                                   (nothing that changes the math)
//   -O1  constant_folding, cse, dce
//   -O2  -O1, then fuse_sum, fuse_activation, dce (default; the lowering also picks oneDNN
//                                               blocked layouts and plans memory at -O2:
//                                               codegen::LowerOptionsFor)
#pragma once

#include <string>
#include <vector>

#include "passes/pass.h"

namespace kiln::passes {

// Adds the passes of `level` (0, 1 or 2; larger values count as 2) to `pm`.
void AddOptimizationPasses(PassManager& pm, int level);

// The pass names of `level` in order (for --help texts and tests).
std::vector<std::string> OptimizationPassNames(int level);

}  // namespace kiln::passes
