// adam_update: one Adam step for one parameter, MXNet 1.9 semantics (GLUON_SEMANTICS.md
// section 4; python/mxnet/optimizer/optimizer.py Adam.update, src/operator/optimizer_op-inl.h
// AdamUpdateKernel):
//   g' = rescale_grad * grad + wd * weight, clamped to [-clip_gradient, clip_gradient] if
//        clip_gradient >= 0 (coupled L2: wd inside the clip, as MXNet; not AdamW)
//   mean' = beta1 * mean + (1 - beta1) * g'
//   var'  = beta2 * var  + (1 - beta2) * g'^2
//   weight' = weight - lr * mean' / (sqrt(var') + epsilon)
// The bias correction is not part of the op: as MXNet's Python optimizer does, the caller
// feeds lr = learning_rate * sqrt(1 - beta2^t) / (1 - beta1^t) for step t (graph::Trainer).
// Inputs: weight, grad, mean, var (same shape), lr [] and rescale_grad [] (fed per step).
// Outputs: weight', mean', var'; the graph's updates write them back in place.
#include <algorithm>
#include <cmath>

#include "ir/ops/op_util.h"

namespace kiln::ir {

const OpDef& AdamUpdateDef() {
  static const OpDef def = [] {
    OpDef d;
    d.name = "adam_update";
    d.input_names = {"weight", "grad", "mean", "var", "lr", "rescale_grad"};
    d.output_names = {"weight_out", "mean_out", "var_out"};
    d.inplace_on_input0 = true;
    d.float_attrs = {"beta1", "beta2", "epsilon", "wd", "clip_gradient"};
    d.verify_attrs = [](const InferCtx& c) -> Status {
      double beta1 = c.attrs().GetFloat("beta1", 0.9), beta2 = c.attrs().GetFloat("beta2", 0.999);
      if (beta1 < 0 || beta1 >= 1) return c.Error("beta1 must be in [0, 1)");
      if (beta2 < 0 || beta2 >= 1) return c.Error("beta2 must be in [0, 1)");
      if (c.attrs().GetFloat("epsilon", 1e-8) < 0) return c.Error("epsilon must be >= 0");
      return OkStatus();
    };
    d.infer_type = [](const InferCtx& c) -> StatusOr<std::vector<TensorType>> {
      if (c.input(1).shape != c.input(0).shape) return c.Error("weight and grad must have the same shape");
      if (c.input(2).shape != c.input(0).shape) return c.Error("mean must have the weight's shape");
      if (c.input(3).shape != c.input(0).shape) return c.Error("var must have the weight's shape");
      if (c.input(4).rank() != 0 || c.input(5).rank() != 0) return c.Error("lr and rescale_grad must be scalars []");
      return std::vector<TensorType>{c.input(0), c.input(2), c.input(3)};
    };
    d.reference = [](const Node& node, const std::vector<const RefTensor*>& in, std::vector<RefTensor>& out) {
      double lr = (*in[4])[0], rescale = (*in[5])[0];
      double beta1 = node.attrs.GetFloat("beta1", 0.9), beta2 = node.attrs.GetFloat("beta2", 0.999),
             eps = node.attrs.GetFloat("epsilon", 1e-8), wd = node.attrs.GetFloat("wd", 0.0),
             clip = node.attrs.GetFloat("clip_gradient", -1);
      for (int64_t i = 0; i < out[0].size(); ++i) {
        double w = (*in[0])[i];
        double g = rescale * (*in[1])[i] + wd * w;
        if (clip >= 0) g = std::clamp(g, -clip, clip);
        double m = beta1 * (*in[2])[i] + (1 - beta1) * g;
        double v = beta2 * (*in[3])[i] + (1 - beta2) * g * g;
        out[1][i] = m;
        out[2][i] = v;
        out[0][i] = w - lr * m / (std::sqrt(v) + eps);
      }
      return OkStatus();
    };
    return d;
  }();
  return def;
}

}  // namespace kiln::ir
