// Simplification passes: common-subexpression elimination and constant folding.
#pragma once

#include <cstdint>

#include "passes/pass.h"

namespace kiln::passes {

// Common-subexpression elimination: a node with the same op, the same inputs and the same
// attributes as an earlier node is replaced by it (its outputs' readers read the earlier
// node's outputs) and removed. All kiln ops are pure; in-place updates are expressed as
// graph updates, not side effects, so every op qualifies.
class CommonSubexpressionElimination final : public Pass {
 public:
  std::string_view Name() const override { return "cse"; }
  StatusOr<bool> Run(ir::Graph& graph) override;
};

// Constant folding: a node whose inputs are all constants (or that has no inputs, e.g.
// fill) is evaluated at compile time with its op's reference kernel (ir/op_registry.h, in
// double precision, rounded to the output dtype) and replaced by a constant. Repeats to a
// fixed point, so computations on constants fold entirely. Results above
// `max_bytes_per_constant` are left as nodes (they would bloat the executable and the
// artifact more than they save).
class ConstantFolding final : public Pass {
 public:
  explicit ConstantFolding(int64_t max_bytes_per_constant = 1 << 22) : max_bytes_(max_bytes_per_constant) {}
  std::string_view Name() const override { return "constant_folding"; }
  StatusOr<bool> Run(ir::Graph& graph) override;

 private:
  int64_t max_bytes_;
};

}  // namespace kiln::passes
