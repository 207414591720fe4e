// Lowering pass 1, select_steps: a verified IR graph becomes a dense StepProgram
// (runtime/step_program.h), one step per node, before any target decision.
//
//  - Graph inputs, parameters/state and constants are bound buffers (kInput, kParam,
//    kConstant) in the order the graph declares them; every intermediate value gets its
//    own virtual arena buffer, dense row-major.
//  - Graph outputs produced by a node are written straight into the caller's buffer
//    (kOutput); an output that is a graph argument or a free reshape is copied at the end
//    ("copy" steps, which assign_layouts turns into a plain copy or a reorder).
//  - An update whose producer overwrites the parameter in place (the step-kind table's
//    in-place pairs of update kinds: sgd_update, adam_update) writes the parameter's bound
//    buffer; other updates are copied back at the end.
//  - reshape is free: its output is a view of its input's buffer with new dims, unless the
//    output is bound (then it is a copy step).
//  - Max pooling in training graphs (`pool_workspace`): the forward step gets a second
//    output, the workspace, which the backward step of the same window reads.
// The "copy" kind exists only between select_steps and assign_layouts.
#pragma once

#include <vector>

#include "base/status.h"
#include "ir/graph.h"
#include "runtime/step_program.h"

namespace kiln::codegen {

struct SelectOptions {
  // Forward max pooling of a training graph writes oneDNN's workspace for its backward
  // step (codegen::LowerOptions::pool_workspace with blocked layouts).
  bool pool_workspace = false;
  // ... for pools whose source has at least this many channels (axis 1). oneDNN's pooling
  // kernels vectorize over channels; with few channels the native backward, which finds
  // each window's maximum again, is faster (LeNet's 6 and 16; bench/README.md).
  int64_t pool_workspace_min_channels = 0;
};

// Errors: the verifier's error.
StatusOr<runtime::StepProgram> SelectSteps(const ir::Graph& graph, const SelectOptions& options = {});

// The StepDesc of one node with the given operand buffers: kind = op, node name, and the
// IR attributes copied by type (int -> ints[k] = {v}, int list -> ints[k], float ->
// floats[k], string -> strings[k]; runtime/step_kinds.h lists each kind's attributes).
runtime::StepDesc MakeStepDesc(const ir::Node& node, std::vector<runtime::TensorRef> inputs,
                               std::vector<runtime::TensorRef> outputs);

}  // namespace kiln::codegen
