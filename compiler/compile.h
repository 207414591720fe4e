// The compiler driver: the one place a compile is assembled (DESIGN.md compiler/). A
// CompileRequest names the mode, the optimizer, the optimization level, the target and
// the dumps; Compile runs autodiff (training modes), the level's IR passes and the
// target's extra passes, the lowering passes (codegen/lower.h), and instantiates the
// executable. graph/ (TrainStep, Predictor, CompileGraph), aot/ (artifact export),
// kiln_opt and kiln_bench all compile through it.
//
//   compiler::CompileRequest req;
//   req.mode = compiler::Mode::kTraining;
//   req.optimizer = compiler::Optimizer::Sgd({.momentum = 0.9});
//   ASSIGN_OR_RETURN(compiler::CompiledModule m, compiler::Compile(std::move(graph), req));
//   // m.program (printable StepProgram), m.executable, m.ir_text, m.stats
#pragma once

#include <functional>
#include <memory>
#include <ostream>
#include <string>
#include <string_view>

#include "base/status.h"
#include "codegen/lower.h"
#include "compiler/target.h"
#include "ir/graph.h"
#include "passes/autodiff.h"
#include "runtime/executable.h"
#include "runtime/step_program.h"

namespace kiln::compiler {

// The optimizer autodiff appends in Mode::kTraining (passes/autodiff.h).
struct Optimizer {
  std::string name = "sgd";  // "sgd" | "adam"
  passes::SgdOptions sgd;
  passes::AdamOptions adam;
  static Optimizer Sgd(passes::SgdOptions o) { return {"sgd", o, {}}; }
  static Optimizer Adam(passes::AdamOptions o) { return {"adam", {}, o}; }
};

struct CompileRequest {
  Mode mode = Mode::kInference;
  std::string loss_output = "loss";  // training modes: the graph output to differentiate
  Optimizer optimizer;
  // Mode::kStreamUpdate: the number of streams whose gradients the update sums.
  int streams = 1;
  // kTraining: every parameter's gradient also becomes an output "grad:<param>".
  bool output_gradients = false;
  int opt_level = 2;           // passes/pipeline.h; 0, 1 or 2
  std::string target = "cpu";  // compiler/target.h
  bool fuse_elementwise = false;
  bool llvm_kernels = false;
  // Parameters the graph does not update are constant for the sessions (prepacked once).
  bool constant_params = false;
  // Updated parameters stay in the steps' layouts between runs (at the target's levels).
  bool resident_params = false;
  // Fail with FailedPrecondition "not batch separable: ..." (passes/batch_separable.h)
  // when the optimized graph mixes the samples of its batch.
  bool require_batch_separable = false;
  // Build the executable (off: program only, e.g. artifact export).
  bool instantiate = true;
  // Dumps: the IR after a pass ("all" for every pass) to `dump`; callbacks after every IR
  // pass and every lowering pass.
  std::string dump_ir_after;
  std::ostream* dump = nullptr;
  std::function<void(std::string_view pass, const ir::Graph& graph)> after_pass;
  std::function<void(std::string_view pass, const runtime::StepProgram& program)> after_lowering_pass;
};

struct CompiledModule {
  const Target* target = nullptr;
  runtime::StepProgram program;                    // planned
  std::shared_ptr<runtime::Executable> executable;  // null unless request.instantiate
  std::string ir_text;                              // the optimized IR (ir/text.h form)
  codegen::LowerStats stats;                        // memory report, steps, compile time
};

// Compiles `graph`. Errors: NotFound for an unknown target; InvalidArgument for an
// optimizer other than sgd/adam or opt_level outside [0, 2]; the passes' errors ("after
// pass <name>"); FailedPrecondition when require_batch_separable fails; lowering errors
// naming the step.
StatusOr<CompiledModule> Compile(std::unique_ptr<ir::Graph> graph, const CompileRequest& request);

}  // namespace kiln::compiler
