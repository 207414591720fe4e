// Operator fusion at the IR level.
#pragma once

#include "passes/pass.h"

namespace kiln::passes {

// Fuses conv2d / dense with the activation that follows (relu, sigmoid, tanh, clip such as
// relu6, whose bounds become activation_min / activation_max) into one node
// whose `activation` attribute the CPU backend lowers to a oneDNN eltwise post-op
// (oneDNN dev guide "Primitive Attributes: Post-ops"). The bias is already part of
// conv2d/dense (their optional third input), so conv+bias+ReLU becomes one primitive.
// Inference batch_norm followed by relu becomes batch_norm {activation="relu"} (oneDNN's
// fuse_norm_relu flag, "Batch Normalization" dev guide).
//
// Applies when the pre-activation value has exactly one reader (the activation) and is not
// a graph output or update. In training graphs the fused node's output *is* the
// activation's output, so the backward pass keeps reading it (relu_backward uses dst as
// its mask; sigmoid/tanh_backward use dst too) and nothing else needs the pre-activation.
// Must run after autodiff: fused nodes have no gradient rule.
//
// In training graphs it also fuses a ReLU's backward into the max/avg-pooling backward that
// feeds it when the pooling's src is that ReLU's output (conv -> relu -> pool):
//   relu_backward(pool2d_backward(dy, y), y)  ->  pool2d_backward(dy, y) {activation="relu"}
// (diff_src masked by y > 0 while it is written; one pass over the tensor instead of two).
class FuseActivation final : public Pass {
 public:
  // Fuses only what `target` supports as a post-op (null: the CPU target's set).
  explicit FuseActivation(const TargetCapabilities* target = nullptr) : target_(target) {}
  std::string_view Name() const override { return "fuse_activation"; }
  StatusOr<bool> Run(ir::Graph& graph) override;

 private:
  bool Supports(std::string_view op, std::string_view post_op) const {
    return target_ == nullptr || target_->SupportsPostOp(op, post_op);
  }
  const TargetCapabilities* target_;
};

// Fuses an add that follows a convolution into it as a oneDNN sum post-op:
//   y = add(conv2d(src, w, b), r)  ->  y = conv2d(src, w, b, r)     (dst = conv + b + r)
// (the residual connection of ResNet-style blocks). Applies when the convolution has a
// bias, no fused activation yet, its output has exactly one reader (the add) and is not a
// graph output or update, r has the output's shape (no broadcasting), and r is defined
// before the convolution in the schedule (the fused node stays where the convolution was).
// Run before FuseActivation, so conv + add + relu becomes one primitive (post-ops sum, then
// eltwise). Must run after autodiff.
class FuseSum final : public Pass {
 public:
  explicit FuseSum(const TargetCapabilities* target = nullptr) : target_(target) {}
  std::string_view Name() const override { return "fuse_sum"; }
  StatusOr<bool> Run(ir::Graph& graph) override;

 private:
  bool Supports(std::string_view op, std::string_view post_op) const {
    return target_ == nullptr || target_->SupportsPostOp(op, post_op);
  }
  const TargetCapabilities* target_;
};

}  // namespace kiln::passes
