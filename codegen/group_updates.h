// Lowering pass 3, group_updates: runs of optimizer updates (step kinds with is_update in
// runtime/step_kinds.h: sgd_update, adam_update) with the same kind, attributes and scalar
// hyper-parameter operands (lr, rescale_grad) become one "<kind>_group" step
// (runtime::SplitGroup): one step per optimizer instead of one per parameter. An update may
// be delayed past a step that neither reads what it writes nor writes what it reads, but
// only updates of parameters up to 256 KiB are grouped: delaying an update keeps its
// gradient alive, and the few microseconds a step costs are not worth holding a large
// gradient longer (passes/schedule.h puts each update right after its gradient).
#pragma once

#include <cstdint>

#include "runtime/step_program.h"

namespace kiln::codegen {

// Largest parameter (bytes) whose update GroupUpdates may delay into a group.
inline constexpr int64_t kGroupMaxBytes = 256 * 1024;

// Rewrites program.steps in place (before plan_buffers: buffers are compared by virtual
// index). Never fails.
void GroupUpdates(runtime::StepProgram& program);

}  // namespace kiln::codegen
