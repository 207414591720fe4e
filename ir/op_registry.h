// The op registry: every op is defined once (STYLE.md section 2) with
//   - verify_attrs: range checks on attributes (stride >= 1, ...);
//   - infer_type:   output types from input types and attributes, with errors naming the
//                   op, the node and the shapes; the builder and the verifier both call it;
//   - grad:         the input gradients written as other IR ops (null if not differentiable);
//   - reference:    naive single-threaded loops over dense row-major (NCHW/OIHW) data in
//                   double precision: the test oracle, never the fast path.
// Backends add their lowering in codegen/, keyed by the same op name.
#pragma once

#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "ir/graph.h"

namespace kiln::ir {

// A dense row-major tensor of doubles used by reference kernels. Integer tensors (labels,
// argmax results) hold their values exactly as doubles.
struct RefTensor {
  Shape shape;
  std::vector<double> data;

  RefTensor() = default;
  explicit RefTensor(Shape s) : shape(std::move(s)), data(static_cast<size_t>(NumElements(shape)), 0.0) {}
  int64_t size() const { return static_cast<int64_t>(data.size()); }
  double& operator[](int64_t i) { return data[static_cast<size_t>(i)]; }
  double operator[](int64_t i) const { return data[static_cast<size_t>(i)]; }
};

// What shape inference sees: the node (for its name and attributes) and its input types.
class InferCtx {
 public:
  InferCtx(const Node& node, std::vector<TensorType> inputs) : node_(node), inputs_(std::move(inputs)) {}
  const Node& node() const { return node_; }
  const Attrs& attrs() const { return node_.attrs; }
  int num_inputs() const { return static_cast<int>(inputs_.size()); }
  const TensorType& input(int i) const { return inputs_[static_cast<size_t>(i)]; }
  // InvalidArgument: `<op> "<node>": <message> (<name0> <layout> [dims], <name1> ...)`,
  // listing every input type with the op's operand names.
  Status Error(const std::string& message) const;

 private:
  const Node& node_;
  std::vector<TensorType> inputs_;
};

class GradCtx;

// How an op treats the batch axis (axis 0 of its batched inputs), for the batch
// separability analysis (passes/batch_separable.h): whether the op computes every sample
// on its own, so that a batch may run as sub-batches.
enum class BatchRule : uint8_t {
  kMixes,           // assumed to mix the samples (the default)
  kPerSampleData,   // conv2d, pool2d, dense: input 0 batched, the others (weights, bias)
                    // not, except a fused sum operand (input 3) of dst's shape
  kRowWise,         // activations, one_hot, argmax, the loss: input 0 batched; other
                    // batched inputs have the batch rows
  kAlongAxis,       // softmax / log_softmax: separable when attribute axis is not 0
  kAlongAxes,       // reductions: separable when no axis of attribute axes is 0
  kBroadcasting,    // add, mul, broadcast_to, fused_elementwise: batched inputs have the
                    // output's rank and batch
  kReshape,         // reshape: when input and output keep the batch dim
};

// Appends statements of the fused-kernel IR (ir/fused_expr.h), e.g. "mul 0 1" or
// "const 0.5", and returns each statement's index (ElementwiseFusion's builder).
class ElementwiseEmitter {
 public:
  virtual ~ElementwiseEmitter() = default;
  virtual int Emit(const std::string& statement) = 0;
};

struct OpDef {
  std::string name;
  std::vector<std::string> input_names;   // operand names (src, weights, bias, ...)
  std::vector<std::string> output_names;  // dst, diff_src, ...
  int min_inputs = -1;                    // trailing inputs are optional (e.g. bias); -1: all required
  // Attribute names the op accepts, with their kinds; used by the verifier and the parser.
  std::vector<std::string> int_attrs, float_attrs, ints_attrs, string_attrs;
  // Output elementwise in its first input, same shape: may write over that input's buffer.
  bool inplace_on_input0 = false;
  // IR traits the passes read: how the op treats the batch axis; and, for elementwise ops
  // the elementwise-fusion pass may fuse, dst as fused-kernel statements from the
  // operands' statement indices (in input order), returning dst's index. Null: not fusable.
  BatchRule batch_rule = BatchRule::kMixes;
  std::function<int(ElementwiseEmitter& e, const Node& node, const std::vector<int>& operands)> elementwise;

  std::function<Status(const InferCtx&)> verify_attrs;
  std::function<StatusOr<std::vector<TensorType>>(const InferCtx&)> infer_type;
  std::function<Status(GradCtx&)> grad;  // empty: not differentiable
  // Outputs arrive sized from the inferred types; errors (e.g. a label out of range) as Status.
  std::function<Status(const Node&, const std::vector<const RefTensor*>&, std::vector<RefTensor>&)> reference;
};

// The op named `name`, or nullptr.
const OpDef* FindOp(std::string_view name);
// Every registered op, sorted by name.
std::vector<const OpDef*> AllOps();

// Runs the op's attribute checks and shape inference for `node` given its input types.
// Errors: NotFound for an unknown op; InvalidArgument naming the op, node and shapes.
StatusOr<std::vector<TensorType>> InferNodeTypes(const Node& node, const std::vector<TensorType>& input_types);

}  // namespace kiln::ir
