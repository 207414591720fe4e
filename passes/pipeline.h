// Optimization levels as named pass pipelines (run after autodiff and the optimizer update
// have been added to a training graph).
//   -O0  dce                                   (nothing that changes the math)
//   -O1  constant_folding, cse, dce
//   -O2  -O1, then fuse_sum, fuse_activation, dce, schedule_updates (default; the lowering
//                                               also picks oneDNN blocked layouts and plans
//                                               memory at -O2: codegen::LowerOptionsFor);
//        fold_batch_norm first for constant-parameter inference (OptimizationOptions)
#pragma once

#include <string>
#include <vector>

#include "passes/pass.h"

namespace kiln::passes {

// Adds the passes of `level` (0, 1 or 2; larger values count as 2) to `pm`.
void AddOptimizationPasses(PassManager& pm, int level);

// Opt-in passes on top of a level (all off by default, so the pipelines above are unchanged).
struct OptimizationOptions {
  // At -O2: fuse_elementwise (passes/elementwise_fusion.h) after fuse_activation, then dce.
  // The graph then has fused_elementwise nodes, which need the LLVM step factory
  // (codegen/llvm/llvm_steps.h: LlvmCpuSteps()) to lower.
  bool fuse_elementwise = false;
  // At -O2: fold_batch_norm (passes/fold_batch_norm.h) first, so conv + batch_norm (+ add)
  // (+ relu) becomes one convolution. Only for inference graphs whose parameters are
  // constant for the executable (compiler::CompileRequest::constant_params).
  bool fold_batch_norm = false;
  // The target the graph is compiled for: fusion passes ask it which post-ops it has
  // (null: the CPU target's set). Must outlive the pass manager.
  const TargetCapabilities* target = nullptr;
};
void AddOptimizationPasses(PassManager& pm, int level, const OptimizationOptions& options);

// The pass names of `level` in order (for --help texts and tests).
std::vector<std::string> OptimizationPassNames(int level);

}  // namespace kiln::passes
