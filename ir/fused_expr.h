// The kernel IR of fused elementwise kernels: an expression DAG over dense row-major f32
// tensors with NumPy broadcasting and an optional terminal reduction. The elementwise-fusion
// pass (passes/elementwise_fusion.h) builds one per `fused_elementwise` IR node and stores it
// as that node's string attribute `expr`; codegen/llvm lowers it to LLVM IR (CPU JIT, PTX).
// No LLVM here: the IR op's reference kernel evaluates it with EvaluateExpr.
//
// Text form (statements separated by ';', spaces around tokens optional):
//   iter D0,D1,...        the iteration shape (empty list: a scalar); must come first
//   in K                  value = input K broadcast (NumPy rules, aligned at the trailing
//                         dims) to the iteration shape
//   const X               a constant (printed with 17 significant digits)
//   neg|exp|log|relu|sigmoid|tanh|abs|sqrt A
//   add|sub|mul|div|max|min A B
//   select_lt|select_le|select_gt|select_ge|select_eq|select_ne A B C D
//                         (A cmp B) ? C : D
//   reduce sum|mean|max A0,A1,... [keepdims]
//                         optional and last: reduces the root over the listed axes of the
//                         iteration shape (sorted, distinct). The mean of zero elements is
//                         NaN (NumPy); the max of zero elements is -inf.
// Value statements are numbered 0, 1, ... in order; operands name earlier values; the last
// value statement is the root. Example, the bias gradient through a ReLU (relu_backward
// then reduce_sum over the batch), input 0 = diff_dst [64,10], input 1 = dst [64,10]:
//   "iter 64,10; in 0; in 1; const 0; select_gt 1 2 0 2; reduce sum 0"   -> output [10]
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "base/tensor.h"

namespace kiln::ir::fused {

enum class Op : uint8_t {
  kInput, kConst,
  kNeg, kExp, kLog, kRelu, kSigmoid, kTanh, kAbs, kSqrt,
  kAdd, kSub, kMul, kDiv, kMax, kMin,
  kSelect,
};
enum class Cmp : uint8_t { kLt, kLe, kGt, kGe, kEq, kNe };
enum class Reduce : uint8_t { kNone, kSum, kMean, kMax };

// Number of operands of `op` (0 for input/const, 1 unary, 2 binary, 4 select).
int Arity(Op op);
// Text name ("add", "select_gt", ...); `cmp` is used for kSelect only.
std::string OpName(Op op, Cmp cmp = Cmp::kLt);

struct ExprNode {
  Op op = Op::kConst;
  int64_t input = 0;      // kInput: the input index
  double value = 0;       // kConst
  Cmp cmp = Cmp::kLt;     // kSelect
  std::vector<int> args;  // earlier node indices, Arity(op) of them
};

struct Expr {
  Shape iter;                   // iteration shape
  std::vector<Shape> inputs;    // input shapes (each broadcastable to `iter`); not in the text
  std::vector<ExprNode> nodes;  // topological; the root is nodes.back()
  Reduce reduce = Reduce::kNone;
  std::vector<int64_t> axes;    // reduced axes of `iter`, sorted, distinct
  bool keepdims = false;

  // The output shape: `iter` without the reduced axes (size 1 with keepdims). The output
  // has NumElements(OutputShape()) elements in row-major order either way.
  Shape OutputShape() const;
  // Number of inputs the text references (1 + the largest K of `in K`, 0 if none).
  int NumReferencedInputs() const;
};

// Parses `text` (the form above) with the given input shapes. Errors: InvalidArgument naming
// the statement for unknown ops, bad operand numbers, an input index without a shape, an
// input shape that does not broadcast to `iter`, or axes out of range / unsorted.
StatusOr<Expr> ParseExpr(std::string_view text, std::vector<Shape> input_shapes);
// The text form; ParseExpr(PrintExpr(e), e.inputs) gives back `e`.
std::string PrintExpr(const Expr& e);
// Structural hash of the DAG, the iteration shape, the reduction and the input shapes
// (FNV-1a 64 over a canonical encoding): the kernel cache key.
uint64_t HashExpr(const Expr& e);
// The reference: evaluates `e` in double precision with plain loops. `inputs[k]` holds
// NumElements(e.inputs[k]) values (row-major). Returns NumElements(e.OutputShape()) values.
std::vector<double> EvaluateExpr(const Expr& e, const std::vector<const std::vector<double>*>& inputs);
// Element strides of `in` broadcast to `out` (left-padded with 1s; 0 along broadcast axes).
std::vector<int64_t> BroadcastStrides(const Shape& in, const Shape& out);

}  // namespace kiln::ir::fused
