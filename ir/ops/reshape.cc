// reshape: same elements in row-major order, new shape (attribute `shape`, fully known).
// Flatten is reshape to [N, C*H*W]. The gradient reshapes back.
#include "ir/ops/op_util.h"

namespace kiln::ir {

const OpDef& ReshapeDef() {
  static const OpDef def = [] {
    OpDef d;
    d.name = "reshape";
    d.batch_rule = BatchRule::kReshape;
    d.input_names = {"src"};
    d.output_names = {"dst"};
    d.ints_attrs = {"shape"};
    d.infer_type = [](const InferCtx& c) -> StatusOr<std::vector<TensorType>> {
      if (!c.attrs().Has("shape")) return c.Error("missing attribute shape");
      Shape s = c.attrs().GetInts("shape");
      for (int64_t x : s) {
        if (x < 0) return c.Error("shape " + ShapeToString(s) + " has a negative dim");
      }
      if (NumElements(s) != c.input(0).num_elements()) {
        return c.Error("cannot reshape " + std::to_string(c.input(0).num_elements()) + " elements to " + ShapeToString(s));
      }
      return std::vector<TensorType>{{c.input(0).dtype, s, DefaultLayout(static_cast<int64_t>(s.size()))}};
    };
    d.grad = [](GradCtx& g) -> Status {
      if (!g.NeedsGrad(0)) return OkStatus();
      ASSIGN_OR_RETURN(ValueId dx, g.Emit1("reshape", {g.OutputGrad(0)},
                                           Attrs{{"shape", g.builder().type(g.Input(0)).shape}}, "diff_src"));
      g.SetInputGrad(0, dx);
      return OkStatus();
    };
    d.reference = [](const Node&, const std::vector<const RefTensor*>& in, std::vector<RefTensor>& out) {
      out[0].data = in[0]->data;
      return OkStatus();
    };
    return d;
  }();
  return def;
}

}  // namespace kiln::ir
