// Lowering pass 3 (with constant parameters), hoist_constants: steps that compute only from
// constant parameters and constants run once per session, as prepack steps, instead of
// every run (loop-invariant code motion across runs; what torch.jit.freeze and ONNX
// Runtime's constant-initializer folding do at load time). E.g. the folded weights and
// biases of passes/fold_batch_norm.h and their reorders into the convolutions' layouts.
//  - A step is hoisted when it writes only arena buffers (no graph output, no parameter)
//    and reads only constant parameters (ParamInfo neither state nor updated), constants,
//    and buffers that prepack steps or hoisted steps wrote. Steps stay in order; hoisted
//    ones follow the existing prepack steps.
//  - A buffer a hoisted step writes that a remaining step (or write-back step) reads
//    becomes pinned (lives for the session, after the planned region). The others, and the
//    hoisted steps' scratch, are needed only while the prepack steps run: plan_buffers
//    places them in the transient region, which the run's steps reuse afterwards.
// So a session computes each hoisted value once, and again only when a bound parameter
// changes (runtime::Session re-runs the prepack steps then).
#pragma once

#include "runtime/step_program.h"

namespace kiln::codegen {

// Rewrites `program` (after assign_layouts, before plan_buffers). Returns the number of
// steps hoisted.
int HoistConstants(runtime::StepProgram& program);

}  // namespace kiln::codegen
