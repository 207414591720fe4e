// The compile-side half of a target (DESIGN.md backends/): what the IR passes and the
// lowering need to know about a backend, registered by name like its runtime half
// (runtime/target.h). The driver (compiler/compile.h) looks the target up by the request's
// name and asks it:
//  - which post-ops it fuses and which IR ops it has steps for (passes::TargetCapabilities,
//    read by the fusion passes through passes::OptimizationOptions::target);
//  - its default lowering options per optimization level and mode;
//  - its extra IR passes (CPU: elementwise fusion into LLVM-generated kernels);
//  - the StepFactory the lowering and Instantiate use for a request (CPU: oneDNN and native
//    loops, or the same with LLVM JIT kernels where they win).
// Adding a target: a runtime half in backends/<name>/ and one Target here registered with
// RegisterCompileTarget (docs/architecture.md).
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "codegen/lower.h"
#include "passes/pass.h"
#include "runtime/step.h"
#include "runtime/target.h"

namespace kiln::compiler {

// What autodiff adds to the traced graph before the optimization passes.
enum class Mode {
  kInference,      // nothing: forward graphs, and graphs that carry their own updates
  kTraining,       // backward and the optimizer's update of every parameter, in place
  kGradientsOnly,  // backward; each gradient becomes an output "grad:<param>"
  // A graph of parameters only becomes the data-parallel update: the streams' gradients
  // summed and the optimizer applied once (passes/data_parallel.h).
  kStreamUpdate,
};
const char* ModeName(Mode mode);

// The target-dependent choices of one compile (a subset of CompileRequest).
struct TargetRequest {
  int opt_level = 2;
  Mode mode = Mode::kInference;
  bool fuse_elementwise = false;  // elementwise chains into generated kernels
  bool llvm_kernels = false;      // generated kernels also for the optimizer updates
};

class Target : public passes::TargetCapabilities {
 public:
  // The runtime half (its steps, device and ISA).
  virtual const runtime::Target& runtime_target() const = 0;
  // The step factory to lower and instantiate a request with.
  virtual const runtime::StepFactory& Steps(const TargetRequest& request) const = 0;
  // Lowering options of an optimization level and mode (the request's constant and
  // resident parameter choices are applied on top by the driver).
  virtual codegen::LowerOptions DefaultLowerOptions(const TargetRequest& request) const = 0;
  // IR passes the target adds after the level's pipeline (passes/pipeline.h).
  virtual void AddExtraPasses(passes::PassManager& pm, const TargetRequest& request) const = 0;
  std::string_view TargetName() const override { return runtime_target().name(); }
};

// Adds `target` (living for the process) under its name; false if the name is taken.
bool RegisterCompileTarget(const Target* target);
// The compile target named `name` ("cpu"). Errors: NotFound listing the known targets,
// e.g. "no compile target 'rocm' (targets: cpu, cuda)".
StatusOr<const Target*> FindCompileTarget(std::string_view name);
std::vector<std::string> CompileTargetNames();

// The CPU target: oneDNN post-ops (eltwise relu/sigmoid/tanh on conv2d and dense, sum on
// conv2d, relu on pooling backward), the -O levels of passes/pipeline.h and
// codegen/lower.h, elementwise fusion and LLVM update kernels on request.
const Target& CpuCompileTarget();
// The cuda target (compiler/target.cc): dense NCHW layouts, memory plan, no post-ops; its
// GPU kernels are not written yet (backends/cuda/cuda_target.h), not tested on a GPU.
const Target& CudaCompileTarget();

}  // namespace kiln::compiler
