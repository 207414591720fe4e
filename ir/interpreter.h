// The reference interpreter: runs a graph node by node with each op's reference kernel in
// double precision. It is the oracle for lowering tests and finite-difference checks.
#pragma once

#include <map>
#include <string>

#include "base/tensor.h"
#include "ir/graph.h"
#include "ir/op_registry.h"

namespace kiln::ir {

// Values by id. Fill it with every input, parameter and state before Run.
using RefEnv = std::map<ValueId, RefTensor>;

// Runs every node in schedule order, adding their outputs to `env`. When `apply_updates`
// is true the graph's updates are then applied (env[target] = env[new value]).
// Errors: InvalidArgument if an argument is missing or has the wrong shape, or an error from
// a reference kernel (e.g. a label out of range), with the node named.
Status RunReference(const Graph& graph, RefEnv& env, bool apply_updates = false);

// Conversions between host tensors (f32 or s32) and reference tensors.
RefTensor ToRef(const Tensor& t);
Tensor FromRef(const RefTensor& r, DType dtype);

}  // namespace kiln::ir
