// Operator fusion at the IR level.
#pragma once

#include "passes/pass.h"

namespace kiln::passes {

// Fuses conv2d / dense with the activation that follows (relu, sigmoid, tanh) into one node
// whose `activation` attribute the CPU backend lowers to a oneDNN eltwise post-op
// (oneDNN dev guide "Primitive Attributes: Post-ops"). The bias is already part of
// conv2d/dense (their optional third input), so conv+bias+ReLU becomes one primitive.
//
// Applies when the pre-activation value has exactly one reader (the activation) and is not
// a graph output or update. In training graphs the fused node's output *is* the
// activation's output, so the backward pass keeps reading it (relu_backward uses dst as
// its mask; sigmoid/tanh_backward use dst too) and nothing else needs the pre-activation.
// Must run after autodiff: fused nodes have no gradient rule.
class FuseActivation final : public Pass {
 public:
  std::string_view Name() const override { return "fuse_activation"; }
  StatusOr<bool> Run(ir::Graph& graph) override;
};

}  // namespace kiln::passes
