// sgd_update: one SGD step for one parameter, MXNet 1.9 semantics (GLUON_SEMANTICS.md
// section 4; src/operator/optimizer_op-inl.h SGDKernel / SGDMomKernel):
//   g' = rescale_grad * grad, clamped to [-clip_gradient, clip_gradient] if clip_gradient > 0
//   momentum == 0:  weight' = (1 - lr*wd) * weight - lr * g'
//   momentum > 0:   mom' = momentum*mom - lr*wd*weight - lr*g';  weight' = weight + mom'
// Inputs: weight, grad (same shape), lr [] and rescale_grad [] (per-step hyper-parameters fed
// at run time, so Trainer.step(batch_size) can rescale by 1/batch_size), and mom when
// momentum > 0. Outputs: weight' (and mom'); the graph's updates write them back in place.
#include <algorithm>

#include "ir/ops/op_util.h"

namespace kiln::ir {

const OpDef& SgdUpdateDef() {
  static const OpDef def = [] {
    OpDef d;
    d.name = "sgd_update";
    d.input_names = {"weight", "grad", "lr", "rescale_grad", "mom"};
    d.output_names = {"weight_out", "mom_out"};
    d.min_inputs = 4;
    d.inplace_on_input0 = true;
    d.float_attrs = {"wd", "momentum", "clip_gradient"};
    d.verify_attrs = [](const InferCtx& c) -> Status {
      double momentum = c.attrs().GetFloat("momentum");
      if (momentum < 0 || momentum >= 1) return c.Error("momentum must be in [0, 1)");
      if ((momentum > 0) != (c.num_inputs() == 5)) return c.Error("the mom input is required exactly when momentum > 0");
      return OkStatus();
    };
    d.infer_type = [](const InferCtx& c) -> StatusOr<std::vector<TensorType>> {
      if (c.input(0).shape != c.input(1).shape) return c.Error("weight and grad must have the same shape");
      if (c.input(2).rank() != 0 || c.input(3).rank() != 0) return c.Error("lr and rescale_grad must be scalars []");
      std::vector<TensorType> out{c.input(0)};
      if (c.num_inputs() == 5) {
        if (c.input(4).shape != c.input(0).shape) return c.Error("mom must have the weight's shape");
        out.push_back(c.input(4));
      }
      return out;
    };
    d.reference = [](const Node& node, const std::vector<const RefTensor*>& in, std::vector<RefTensor>& out) {
      double lr = (*in[2])[0], rescale = (*in[3])[0];
      double wd = node.attrs.GetFloat("wd"), momentum = node.attrs.GetFloat("momentum"),
             clip = node.attrs.GetFloat("clip_gradient", -1);
      for (int64_t i = 0; i < out[0].size(); ++i) {
        double w = (*in[0])[i];
        double g = rescale * (*in[1])[i];
        if (clip > 0) g = std::clamp(g, -clip, clip);
        if (in.size() == 5) {
          double m = momentum * (*in[4])[i] - lr * wd * w - lr * g;
          out[1][i] = m;
          out[0][i] = w + m;
        } else {
          out[0][i] = (1 - lr * wd) * w - lr * g;
        }
      }
      return OkStatus();
    };
    return d;
  }();
  return def;
}

}  // namespace kiln::ir
