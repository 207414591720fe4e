#include "compiler/compile.h"

#include <chrono>

#include "ir/text.h"
#include "passes/batch_separable.h"
#include "passes/data_parallel.h"
#include "passes/pass.h"
#include "passes/pipeline.h"

namespace kiln::compiler {

StatusOr<CompiledModule> Compile(std::unique_ptr<ir::Graph> graph, const CompileRequest& req) {
  auto start = std::chrono::steady_clock::now();
  if (req.opt_level < 0 || req.opt_level > 2) {
    return InvalidArgument("compile: opt_level " + std::to_string(req.opt_level) + " is not 0, 1 or 2");
  }
  if (req.optimizer.name != "sgd" && req.optimizer.name != "adam") {
    return InvalidArgument("compile: optimizer '" + req.optimizer.name + "' is not supported (kiln has sgd, adam)");
  }
  CompiledModule m;
  ASSIGN_OR_RETURN(m.target, FindCompileTarget(req.target));
  TargetRequest treq{req.opt_level, req.mode, req.fuse_elementwise, req.llvm_kernels};

  passes::PassManager pm(passes::PassManagerOptions{req.dump_ir_after, req.dump, req.after_pass});
  auto opt_sgd = req.optimizer.sgd;
  if (req.mode == Mode::kStreamUpdate) {
    if (req.optimizer.name == "adam") {
      pm.Add(std::make_unique<passes::DataParallelUpdate>(req.streams, req.optimizer.adam));
    } else {
      pm.Add(std::make_unique<passes::DataParallelUpdate>(req.streams, opt_sgd));
    }
  } else if (req.mode == Mode::kGradientsOnly) {
    pm.Add(passes::BuildTrainingGraph::GradientsOnly(req.loss_output));
  } else if (req.mode == Mode::kTraining) {
    if (req.optimizer.name == "adam") {
      pm.Add(std::make_unique<passes::BuildTrainingGraph>(req.loss_output, req.optimizer.adam, req.output_gradients));
    } else {
      pm.Add(std::make_unique<passes::BuildTrainingGraph>(req.loss_output, req.optimizer.sgd, req.output_gradients));
    }
  }
  passes::OptimizationOptions opt;
  opt.target = m.target;
  opt.fold_batch_norm = req.mode == Mode::kInference && req.constant_params;
  passes::AddOptimizationPasses(pm, req.opt_level, opt);
  m.target->AddExtraPasses(pm, treq);
  RETURN_IF_ERROR(pm.Run(*graph));
  if (req.require_batch_separable) RETURN_IF_ERROR(passes::CheckBatchSeparable(*graph));
  m.ir_text = ir::PrintGraph(*graph);

  codegen::LowerOptions lower = m.target->DefaultLowerOptions(treq);
  lower.constant_params = req.constant_params;
  lower.resident_params = lower.resident_params && req.resident_params;
  lower.after_pass = req.after_lowering_pass;
  const runtime::StepFactory& steps = m.target->Steps(treq);
  ASSIGN_OR_RETURN(m.program, codegen::LowerToProgram(*graph, steps, lower, &m.stats));
  if (req.instantiate) {
    auto exe = runtime::Instantiate(m.program, steps);
    if (!exe.ok()) return exe.status().WithContext("lowering \"" + graph->name() + "\"");
    m.executable = std::move(exe).value();
    m.executable->SetTarget(&m.target->runtime_target());
  }
  m.stats.compile_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return m;
}

}  // namespace kiln::compiler
