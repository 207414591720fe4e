// Batch separability: whether a graph computes every sample of its batch on its own, so that
// it can run as sub-batches on concurrent sessions (runtime/streams.h, Predictor's
// CompileOptions::streams) and give the same outputs.
//
// The check is a forward data-flow analysis over the schedule. A value is "batched" when
// its axis 0 is the batch axis of the graph inputs (every input must have the same batch N
// as axis 0); parameters and constants are not. An op with a batched operand keeps samples
// apart when it is:
//  - conv2d, pool2d, dense (batched src; weights, bias unbatched; a fused sum operand has
//    dst's shape), the activations, one_hot, argmax (axis 1), softmax_cross_entropy;
//  - softmax / log_softmax over an axis other than 0;
//  - reduce_sum / reduce_mean over axes that do not include 0;
//  - add, mul, fused_elementwise, broadcast_to: every batched operand has the output's
//    rank and batch (so broadcasting never runs along the batch axis);
//  - reshape keeping axis 0 (N, ...) -> (N, ...), e.g. flatten.
// Any other op with a batched operand (the backward ops, updates, losses reduced over the
// batch) mixes samples. Every graph output must be batched.
#pragma once

#include "base/status.h"
#include "ir/graph.h"

namespace kiln::passes {

// OK when `graph` is batch separable. Errors: FailedPrecondition naming the first node
// (op, name, operand shapes) that mixes samples, an input without the batch axis, or an
// output that is not batched.
Status CheckBatchSeparable(const ir::Graph& graph);

}  // namespace kiln::passes
