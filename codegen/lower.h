// Lowering: a verified IR graph becomes a runtime::StepProgram (plain data, printable) and
// then an Executable (DESIGN.md codegen/). The lowering is a pipeline of step-level passes,
// each in its own file with a before/after test (tests/codegen/lowering_passes_test.cc):
//
//   select_steps   (codegen/select_steps.h)   IR -> dense program, one step per node
//   assign_layouts (codegen/assign_layouts.h) target layouts, reorders, prepack, residency
//   hoist_constants (codegen/hoist_constants.h) constant_params: parameter-only steps to prepack
//   group_updates  (codegen/group_updates.h)  optimizer updates as one step per optimizer
//   plan_buffers   (codegen/plan_buffers.h)   liveness, in-place reuse, offsets, report
//
// Instantiate (runtime/step_program.h) then builds the steps with the target's
// StepFactory (oneDNN primitives are created then, at compile time, never per run).
//
// LowerOptions (the -O2 pipeline turns blocked_layouts, plan_memory, group_updates on,
// and resident_params for training):
//  - blocked_layouts: the target picks each step's operand layouts (StepFactory::
//    ChooseLayouts, e.g. oneDNN's nChw16c for convolutions); a "reorder" step is inserted
//    where a consumer needs another layout than its producer wrote, and graph inputs,
//    outputs and parameters stay dense row-major.
//  - plan_memory: liveness over the step schedule; outputs of kinds that may reuse their
//    input (runtime/step_kinds.h) reuse input 0's buffer when it dies at the step; offsets
//    by best fit (codegen/memory_plan.h). Off: every buffer gets its own slice.
#pragma once

#include <memory>

#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "codegen/memory_plan.h"
#include "codegen/select_steps.h"
#include "ir/graph.h"
#include "runtime/executable.h"
#include "runtime/step.h"
#include "runtime/step_program.h"

namespace kiln::codegen {

struct LowerOptions {
  bool blocked_layouts = false;
  bool plan_memory = false;
  // Max pooling in training graphs: the forward step writes oneDNN's workspace and the
  // backward step reads it (needs blocked_layouts), instead of the backward finding each
  // window's maximum again, for pools of at least pool_workspace_min_channels channels.
  // With few channels the native backward wins (LeNet; bench/README.md).
  bool pool_workspace = false;
  int64_t pool_workspace_min_channels = 0;
  // Parameters that the graph does not update are constant for the executable's sessions
  // (inference, serving): their reorders into blocked layouts become prepack steps run
  // once per session (runtime::Executable::prepack_steps), not every run, and so do the
  // steps that compute only from them (hoist_constants, e.g. folded batch norms).
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
  // Called after every lowering pass with its name and the program (e.g. kiln_opt
  // --print-program-after); the program is planned only after "plan_buffers".
  std::function<void(std::string_view pass, const runtime::StepProgram& program)> after_pass;
  // Recorded in the program (StepProgram::target), e.g. "cpu".
  std::string target = "cpu";
};

struct LowerStats {
  int64_t arena_bytes = 0;  // what a session allocates: the planned arena plus resident parameters
  int num_steps = 0;
  double compile_seconds = 0;  // creating every step (oneDNN primitive creation included)
  MemoryReport memory;         // arena vs naive vs lower bound (bytes)
};

// The lowering passes in pipeline order: select_steps, assign_layouts, hoist_constants
// (with constant_params), group_updates (when enabled), plan_buffers.
std::vector<std::string> LoweringPassNames(const LowerOptions& options = {});

// Runs the lowering pipeline: `graph` to a planned StepProgram, with `factory` (the
// target's steps, e.g. backends::cpu::CpuSteps()) answering layout and scratch queries.
// Inputs follow the order the graph declares them; outputs the order of graph.outputs();
// parameters and state are bound by name. `stats` gets the report (no compile time).
// Errors: the verifier's error; the target's errors naming the step ("choosing layouts
// for conv2d "conv0": ...").
StatusOr<runtime::StepProgram> LowerToProgram(const ir::Graph& graph, const runtime::StepFactory& factory,
                                              const LowerOptions& options = {}, LowerStats* stats = nullptr);

// LowerToProgram, then runtime::Instantiate with the same factory. Errors: as
// LowerToProgram; Unimplemented naming the node and kind the target cannot run; other
// factory errors with the step named.
StatusOr<std::shared_ptr<runtime::Executable>> Lower(const ir::Graph& graph, const runtime::StepFactory& factory,
                                                     LowerStats* stats = nullptr, const LowerOptions& options = {});

}  // namespace kiln::codegen
