// The IR text form: printed by dumps and tests, parsed back (PrintGraph(ParseGraph(s)) == s).
//
//   graph lenet {
//     input %data : f32[4,1,28,28]NCHW
//     param %0.weight : f32[6,1,5,5]OIHW
//     const %c : f32[2]N = [0.5, 1.5]
//     %conv0 = conv2d[conv0](%data, %0.weight, %0.bias) {dilation=[1,1], ...} : f32[4,6,24,24]NCHW
//     output loss = %loss
//     update %0.weight <- %0.weight_sgd
//   }
// A multi-output node lists its outputs: `%a, %b = op[name](...) {...} : type, type`.
#pragma once

#include <string>
#include <string_view>

#include "base/status.h"
#include "ir/graph.h"

namespace kiln::ir {

std::string PrintGraph(const Graph& graph);

// Parses the text form, re-running shape inference on every node (a stored type that
// disagrees is an error). Errors: InvalidArgument with the line number and the problem.
StatusOr<Graph> ParseGraph(std::string_view text);

}  // namespace kiln::ir
