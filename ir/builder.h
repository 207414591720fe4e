// Builder: appends nodes to a graph, running the op's checks and shape inference first so a
// bad shape fails on the line that built it (STYLE.md section 1, graph/).
#pragma once

#include <string>
#include <vector>

#include "ir/graph.h"
#include "ir/op_registry.h"

namespace kiln::ir {

class Builder {
 public:
  explicit Builder(Graph& graph) : graph_(graph) {}
  Graph& graph() { return graph_; }

  // Adds node `op` (name made unique from `name`, or from the op name when empty) and
  // returns its output values. Errors: NotFound (unknown op), InvalidArgument (attributes or
  // shapes rejected; the message names the op, the node and the input shapes).
  StatusOr<std::vector<ValueId>> Emit(const std::string& op, const std::vector<ValueId>& inputs,
                                      const Attrs& attrs = {}, const std::string& name = "");
  // Emit for single-output ops.
  StatusOr<ValueId> Emit1(const std::string& op, const std::vector<ValueId>& inputs, const Attrs& attrs = {},
                          const std::string& name = "");

  const TensorType& type(ValueId v) const { return graph_.value(v).type; }

 private:
  Graph& graph_;
};

// The gradient-rule context: the forward node, its values, the gradients flowing into its
// outputs, and a builder to emit the backward ops. Rules call SetInputGrad for each input
// that NeedsGrad; autodiff sums fan-in and reduces broadcast gradients to the input shape.
class GradCtx {
 public:
  GradCtx(Builder& b, const Node& node, std::vector<ValueId> output_grads, std::vector<bool> needs_grad)
      : b_(b), node_(node), output_grads_(std::move(output_grads)), needs_grad_(std::move(needs_grad)),
        input_grads_(node.inputs.size(), -1) {}

  Builder& builder() { return b_; }
  const Node& node() const { return node_; }
  const Attrs& attrs() const { return node_.attrs; }
  ValueId Input(int i) const { return node_.inputs[static_cast<size_t>(i)]; }
  int num_inputs() const { return static_cast<int>(node_.inputs.size()); }
  ValueId Output(int i) const { return node_.outputs[static_cast<size_t>(i)]; }
  // Gradient of the loss w.r.t. output i, or -1 if the loss does not depend on it.
  ValueId OutputGrad(int i) const { return output_grads_[static_cast<size_t>(i)]; }
  bool NeedsGrad(int i) const { return needs_grad_[static_cast<size_t>(i)]; }
  void SetInputGrad(int i, ValueId g) { input_grads_[static_cast<size_t>(i)] = g; }
  const std::vector<ValueId>& input_grads() const { return input_grads_; }

  // Emits a backward node named "<forward node>_<suffix>".
  StatusOr<std::vector<ValueId>> Emit(const std::string& op, const std::vector<ValueId>& inputs,
                                      const Attrs& attrs, const std::string& suffix);
  StatusOr<ValueId> Emit1(const std::string& op, const std::vector<ValueId>& inputs, const Attrs& attrs,
                          const std::string& suffix);

 private:
  Builder& b_;
  const Node& node_;
  std::vector<ValueId> output_grads_;
  std::vector<bool> needs_grad_;
  std::vector<ValueId> input_grads_;
};

}  // namespace kiln::ir
