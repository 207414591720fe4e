// dropout(src, seed) -> dst: inverted dropout (Srivastava et al. 2014; Gluon Dropout(rate),
// GLUON_SEMANTICS.md section 10): each element is kept with probability 1 - rate and scaled
// by 1/(1 - rate), else zeroed, so the expected value is preserved. The mask is a pure
// function of (seed, salt, element index) (base/counter_rng.h): `seed` is an s32 [] input
// fed per step (graph::TrainStep draws a new one every step), `salt` tells the dropout
// layers of one graph apart. The same seed gives the same mask, and the gradient is the
// same op on diff_dst (diff_src = mask * diff_dst / (1 - rate)) with no stored mask.
// Element indices are dense row-major (NCHW), so the mask does not depend on layouts.
// The front end emits dropout in training mode only; at inference it is the identity.
// `axes` (default none): the mask is shared along those dims (Gluon Dropout(rate, axes),
// e.g. axes (2, 3) drops whole NCHW feature maps): an element draws at its index in the
// mask of shape dims-with-axes-as-1 (base/counter_rng.h DropoutMaskIndex).
#include "base/counter_rng.h"
#include "ir/ops/op_util.h"

namespace kiln::ir {

const OpDef& DropoutDef() {
  static const OpDef def = [] {
    OpDef d;
    d.name = "dropout";
    d.input_names = {"src", "seed"};
    d.output_names = {"dst"};
    d.float_attrs = {"rate"};
    d.int_attrs = {"salt"};
    d.ints_attrs = {"axes"};
    d.inplace_on_input0 = true;
    d.verify_attrs = [](const InferCtx& c) -> Status {
      double rate = c.attrs().GetFloat("rate", 0.5);
      if (!(rate >= 0 && rate < 1)) return c.Error("rate must be in [0, 1), got " + std::to_string(rate));
      return OkStatus();
    };
    d.infer_type = [](const InferCtx& c) -> StatusOr<std::vector<TensorType>> {
      RETURN_IF_ERROR(ops::CheckDType(c, 0, DType::kF32));
      RETURN_IF_ERROR(ops::CheckDType(c, 1, DType::kS32));
      if (c.input(1).rank() != 0) return c.Error("seed must be a scalar s32 []");
      std::vector<bool> seen(c.input(0).shape.size(), false);
      for (int64_t a : c.attrs().GetInts("axes")) {
        if (a < 0 || a >= static_cast<int64_t>(seen.size()) || seen[static_cast<size_t>(a)]) {
          return c.Error("axes " + ShapeToString(c.attrs().GetInts("axes")) + " must be distinct dims of " +
                         ShapeToString(c.input(0).shape));
        }
        seen[static_cast<size_t>(a)] = true;
      }
      return std::vector<TensorType>{c.input(0)};
    };
    d.grad = [](GradCtx& g) -> Status {
      if (!g.NeedsGrad(0)) return OkStatus();
      ASSIGN_OR_RETURN(ValueId dx, g.Emit1("dropout", {g.OutputGrad(0), g.Input(1)}, g.attrs(), "diff_src"));
      g.SetInputGrad(0, dx);
      return OkStatus();
    };
    d.reference = [](const Node& node, const std::vector<const RefTensor*>& in, std::vector<RefTensor>& out) {
      double rate = node.attrs.GetFloat("rate", 0.5);
      uint32_t threshold = DropoutThreshold(rate);
      uint64_t key = DropoutKey(static_cast<int32_t>((*in[1])[0]), node.attrs.GetInt("salt", 0));
      DropoutMaskIndex mask(in[0]->shape, node.attrs.GetInts("axes"));
      for (int64_t i = 0; i < out[0].size(); ++i) {
        out[0][i] = DropoutKeep(key, mask(i), threshold) ? (*in[0])[i] / (1 - rate) : 0.0;
      }
      return OkStatus();
    };
    return d;
  }();
  return def;
}

}  // namespace kiln::ir
