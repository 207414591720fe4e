// Lowering pass 2, assign_layouts: the target decides every step's operand layouts
// (StepFactory::ChooseLayouts, e.g. oneDNN's nChw16c for convolutions) and the pass makes
// the program consistent with them (runtime/step_program.h):
//  - a "reorder" step where a consumer needs another layout than its producer wrote, one per
//    buffer, dims and layout (a parameter written by an update gets new reorders after it);
//  - graph inputs, outputs and bound parameters stay dense: a blocked result bound for them
//    goes to the arena first and is reordered into them after its step ("<node>.to_dense");
//  - constant parameters (`constant_params`): their reorders become prepack steps, run once
//    per session into pinned buffers;
//  - resident parameters (`resident_params`): a parameter the program updates whose first
//    reader wants a blocked layout lives in that layout in a pinned buffer between runs:
//    one prepack reorder fills it, the steps read and update only it (update kinds follow
//    the weight's layout), a write-back reorder copies it out (runtime::Session::WriteBack);
//  - free reshapes (views with other dims) read a dense form of their buffer;
//  - "copy" steps become a plain copy ("reshape") between dense buffers, else a reorder;
//  - every step's arena scratch (StepFactory::ScratchBytes) gets a buffer.
// The virtual buffers are renumbered in the order the pass creates them.
#pragma once

#include "base/status.h"
#include "runtime/step.h"
#include "runtime/step_program.h"

namespace kiln::codegen {

struct LayoutOptions {
  // Off: every operand dense (the -O0/-O1 lowering); reorders and scratch still apply.
  bool blocked_layouts = false;
  bool constant_params = false;
  bool resident_params = false;
};

// Rewrites `program` (the output of SelectSteps) in place. Errors: the target's
// ChooseLayouts / ScratchBytes errors with the step named ("choosing layouts for conv2d
// "conv0""); FailedPrecondition for a program that already has layouts.
Status AssignLayouts(runtime::StepProgram& program, const runtime::StepFactory& target_steps,
                     const LayoutOptions& options);

}  // namespace kiln::codegen
