// Elementwise fusion (DESIGN.md passes/): maximal groups of elementwise IR ops, with an
// optional terminal reduce_sum / reduce_mean, become one `fused_elementwise` node holding
// the expression as kernel IR text (ir/fused_expr.h, attribute `expr`), which codegen/llvm
// JIT-compiles into one vectorized loop nest.
//
// Fusible ops: those whose op facts give their fused-kernel statements
// (ir::OpDef::elementwise): add, sub, mul, div, maximum, minimum, greater_equal (NumPy
// broadcasting); relu, sigmoid, tanh, leaky_relu, elu, selu, silu, hard_sigmoid,
// hard_swish, softplus, softsign, clip, exp, log, sqrt, abs, neg and all their _backward
// ops (gelu is not: the kernel IR has no erf); broadcast_to, and fill (inlined as a
// constant); reduce_sum / reduce_mean only as a group's root. Groups are grown backwards from a root (reverse schedule order): a producer joins when
// it is fusible, all of its output's readers are already in the group, and its output is not
// a graph output or update (an intermediate with a reader outside the group ends the group,
// so no work is duplicated). A producer whose output has fewer elements than the iteration
// space (a value that is broadcast, e.g. a bias) stays outside, except broadcast_to and fill,
// which cost nothing to recompute, so nothing expensive is evaluated more than once per
// element. The root node is rewritten in place into the fused node (its output value, type
// and schedule position stay), and the other members become dead and are removed; the
// schedule stays valid because every member precedes the root and its external inputs
// precede the members. Groups of one compute node, groups over more than 16 inputs and
// non-f32 values are left alone. Must run after autodiff (fused nodes have no gradient).
// Not fused (yet): sgd_update (two outputs) and softmax/loss ops.
#pragma once

#include "passes/pass.h"

namespace kiln::passes {

class ElementwiseFusion final : public Pass {
 public:
  std::string_view Name() const override { return "fuse_elementwise"; }
  // Errors: none beyond the verifier's (groups that cannot be expressed are skipped).
  StatusOr<bool> Run(ir::Graph& graph) override;
};

}  // namespace kiln::passes
