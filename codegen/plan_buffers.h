// Lowering pass 4, plan_buffers: places the program's virtual buffers in one arena.
//  - Liveness: a buffer is live from the first to the last step that reads or writes it
//    (its scratch included), in step order; pinned buffers (prepacked or resident
//    parameters) live for the whole session.
//  - In-place reuse (`plan_memory`): output 0 of a kind whose table entry allows it
//    (runtime/step_kinds.h OutputReusesInput0: activations, their backward, updates) takes
//    over input 0's buffer when that buffer dies at the step, has the same size and layout,
//    and no other operand of the step reads it.
//  - Offsets: best fit by size (codegen/memory_plan.h) with `plan_memory`, else every buffer
//    its own slot; pinned buffers go after the planned region. Every arena TensorRef of
//    every step (prepack and write-back included) is rewritten to its offset (index 0).
//  - The MemoryReport: planned arena, naive total, lower bound, buffers, in-place outputs,
//    reorders (steps of kind reorder plus prepack steps) and resident bytes.
// The plan is checked (CheckPlan) before it is applied.
#pragma once

#include "base/status.h"
#include "runtime/step_program.h"

namespace kiln::codegen {

inline constexpr int64_t kArenaAlignmentBytes = 64;

struct PlanOptions {
  bool plan_memory = false;
};

// Errors: FailedPrecondition for a program already planned; Internal when the plan
// fails its check (a planner bug), naming the two overlapping buffers.
Status PlanBuffers(runtime::StepProgram& program, const PlanOptions& options);

}  // namespace kiln::codegen
