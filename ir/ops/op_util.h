// Helpers shared by the op definitions in ir/ops/: attribute checks, broadcasting and
// index arithmetic for reference kernels. Internal to ir/.
#pragma once

#include <string>
#include <vector>

#include "ir/builder.h"
#include "ir/op_registry.h"

namespace kiln::ir::ops {

// Checks input `i` has rank `rank`; the error names the op, node and shapes.
Status CheckRank(const InferCtx& c, int i, int64_t rank);
Status CheckDType(const InferCtx& c, int i, DType dtype);
// Checks that attribute `key` is a list of `size` values, each >= `min`.
Status CheckIntList(const InferCtx& c, const std::string& key, size_t size, int64_t min);

// Fused activation (the `activation` string attribute of conv2d and dense, set by the
// fusion pass): checks it is "", "relu", "sigmoid", "tanh" or "clip" (bounds in the float
// attributes activation_min < activation_max, default 0 and 6: relu6); Apply runs it on a
// reference output in place.
Status CheckFusedActivation(const InferCtx& c);
void ApplyFusedActivation(const Attrs& attrs, RefTensor& dst);
// Fused ops have no gradient rule (fusion runs after autodiff): the error says so.
Status NoGradForFused(const std::string& op, const Attrs& attrs);

// NumPy broadcasting of two shapes (aligned at the trailing dims).
// Errors: InvalidArgument via `c` when a pair of dims is neither equal nor 1.
StatusOr<Shape> BroadcastShapes(const InferCtx& c, const Shape& a, const Shape& b);
// Row-major strides of `shape` (in elements).
std::vector<int64_t> Strides(const Shape& shape);
// For an index into `out_shape`, the index into `in_shape` broadcast to it.
int64_t BroadcastIndex(int64_t out_index, const Shape& out_shape, const Shape& in_shape);

// Axis normalized to [0, rank); -1 if out of range.
int64_t NormalizeAxis(int64_t axis, int64_t rank);

// Emits the fused-kernel statement "const <v>" (ir/fused_expr.h) with 17 significant
// digits, so the double value comes back exactly; returns its statement number.
int EmitConst(ElementwiseEmitter& e, double v);

}  // namespace kiln::ir::ops
