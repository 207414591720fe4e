// The IR verifier: checks the invariants every pass must keep.
#pragma once

#include "base/status.h"
#include "ir/graph.h"

namespace kiln::ir {

// Checks that: every node's op exists and its attributes pass the op's checks; every input
// is defined earlier in the schedule (topological order) or is a graph argument; every
// stored output type equals what shape inference computes now; each value has exactly one
// producer; outputs and updates refer to live values; each update's target is a parameter or
// state with the same type as its new value and no node reads the target after the node
// producing the new value (so the in-place write is safe).
// Errors: InvalidArgument naming the node, the op and the shapes.
Status Verify(const Graph& graph);

}  // namespace kiln::ir
