// Graphviz DOT export of a graph at any stage (IR after a pass) and of a lowered
// executable (steps with their operand layouts and arena offsets). Render with
// `dot -Tsvg graph.dot -o graph.svg`.
#pragma once

#include <string>

#include "ir/graph.h"
#include "runtime/executable.h"

namespace kiln::codegen {

// One box per node ("name\nop" plus a fused activation, e.g. "conv0\nconv2d + relu"), one
// ellipse per graph argument (inputs, parameters, state, constants), one edge per value
// read, labelled with its type ("f32[4,6,24,24]NCHW"); graph outputs and updates as
// double-bordered sinks.
std::string GraphToDot(const ir::Graph& graph);

// One box per step in schedule order ("#3 conv2d\nconv0"), edges from the step that last
// wrote a buffer region to the steps that read it, labelled with the operand
// ("arena+4096 f32[256,6,24,24] acdb"); bound inputs, parameters and constants as ellipses.
std::string ExecutableToDot(const runtime::Executable& exe);

}  // namespace kiln::codegen
