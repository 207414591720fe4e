// Lowering: a verified IR graph becomes a runtime::Executable (DESIGN.md codegen/).
//
// Each node becomes one step built by a backend's StepFactory (oneDNN primitives are
// created here, at compile time, never per run). Values get buffers: graph inputs, outputs,
// parameters/state and constants are bound buffers; intermediates are slices of one arena
// (64-byte aligned). Updates of parameters are done in place when the producing op allows
// it (sgd_update writes the weight it reads), else by a copy step at the end. Reshape is
// free: its output aliases its input.
//
// LowerOptions (the -O2 pipeline turns both on):
//  - blocked_layouts: the backend picks each step's operand layouts (StepFactory::
//    ChooseLayouts, e.g. oneDNN's nChw16c for convolutions); a "reorder" step is inserted
//    where a consumer needs another layout than its producer wrote (one per value and
//    layout), and graph inputs, outputs and parameters stay dense row-major.
//  - plan_memory: liveness over the step schedule; outputs of ops marked inplace_on_input0
//    reuse their input's buffer when that input dies at the step; offsets by best fit
//    (codegen/memory_plan.h). Off: every buffer gets its own slice.
#pragma once

#include <memory>

#include "codegen/memory_plan.h"
#include "ir/graph.h"
#include "runtime/executable.h"
#include "runtime/step.h"

namespace kiln::codegen {

struct LowerOptions {
  bool blocked_layouts = false;
  bool plan_memory = false;
  // Max pooling in training graphs: the forward step writes oneDNN's workspace and the
  // backward step reads it (needs blocked_layouts), instead of the backward finding each
  // window's maximum again. Off at -O2: with oneDNN 2.6 the workspace-writing forward is
  // ~10x slower than the native backward saves (bench/README.md).
  bool pool_workspace = false;
  // Parameters that the graph does not update are constant for the executable's sessions
  // (inference, serving): their reorders into blocked layouts become prepack steps run
  // once per session (runtime::Executable::prepack_steps), not every run.
  bool constant_params = false;
  // Training graphs: a parameter or optimizer state that the graph updates and whose first
  // reader wants it in a blocked layout lives in that layout in the session's arena between
  // runs (a "resident" copy): a prepack step reorders it in once, the steps read and update
  // only that copy (the update kinds follow the weight's layout), and write-back steps
  // reorder it out to the dense bound buffer when the caller asks (runtime::Session::
  // WriteBack). So weights are not reordered every step. A parameter some step reads in
  // dense form before any blocked reader stays dense-homed as without this option.
  bool resident_params = false;
  // Consecutive optimizer updates (sgd_update, adam_update) with the same attributes and
  // hyper-parameter inputs become one "<kind>_group" step (runtime::SplitGroup). Updates of
  // parameters up to 256 KiB may be delayed past independent steps to join a group; larger
  // ones stay where the schedule put them (their gradients die sooner).
  bool group_updates = false;
};

struct LowerStats {
  int64_t arena_bytes = 0;  // what a session allocates: the planned arena plus resident parameters
  int num_steps = 0;
  double compile_seconds = 0;  // creating every step (oneDNN primitive creation included)
  MemoryReport memory;         // arena vs naive vs lower bound (bytes)
};

// Lowers `graph` with `factory` (e.g. codegen::cpu::CpuSteps()). Inputs follow the order
// the graph declares them; outputs the order of graph.outputs(); parameters and state are
// bound by name. Errors: the verifier's error; Unimplemented naming the node and op the
// backend cannot run; errors from the factory with the node named.
StatusOr<std::shared_ptr<runtime::Executable>> Lower(const ir::Graph& graph, const runtime::StepFactory& factory,
                                                     LowerStats* stats = nullptr, const LowerOptions& options = {});

// The StepDesc of one node with the given operand buffers (attribute conventions in
// codegen/cpu/kernels_cpu.h: ints/floats/strings copied from the IR attributes).
runtime::StepDesc MakeStepDesc(const ir::Node& node, std::vector<runtime::TensorRef> inputs,
                               std::vector<runtime::TensorRef> outputs);

}  // namespace kiln::codegen
