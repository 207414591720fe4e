// Broadcasting binary ops (NumPy rules, aligned at the trailing dims):
//   add: dst = src0 + src1     d(src0) = diff_dst, d(src1) = diff_dst
//   mul: dst = src0 * src1     d(src0) = diff_dst * src1, d(src1) = diff_dst * src0
// Autodiff reduces each gradient back to its input's shape (sum over broadcast axes).
// Source: oneDNN dev guide "Binary"; MXNet broadcast_add/broadcast_mul.
#include "ir/ops/op_util.h"

namespace kiln::ir {
namespace {

OpDef MakeBinary(const std::string& name, double (*f)(double, double)) {
  OpDef d;
  d.name = name;
  d.input_names = {"src0", "src1"};
  d.output_names = {"dst"};
  d.batch_rule = BatchRule::kBroadcasting;
  d.elementwise = [name](ElementwiseEmitter& e, const Node&, const std::vector<int>& x) {
    return e.Emit(name + " " + std::to_string(x[0]) + " " + std::to_string(x[1]));
  };
  d.infer_type = [](const InferCtx& c) -> StatusOr<std::vector<TensorType>> {
    RETURN_IF_ERROR(ops::CheckDType(c, 0, DType::kF32));
    RETURN_IF_ERROR(ops::CheckDType(c, 1, DType::kF32));
    ASSIGN_OR_RETURN(Shape s, ops::BroadcastShapes(c, c.input(0).shape, c.input(1).shape));
    std::string layout = c.input(0).shape == s ? c.input(0).layout
                         : c.input(1).shape == s ? c.input(1).layout
                                                 : DefaultLayout(static_cast<int64_t>(s.size()));
    return std::vector<TensorType>{{DType::kF32, s, layout}};
  };
  d.reference = [f](const Node&, const std::vector<const RefTensor*>& in, std::vector<RefTensor>& out) {
    RefTensor& dst = out[0];
    for (int64_t i = 0; i < dst.size(); ++i) {
      dst[i] = f((*in[0])[ops::BroadcastIndex(i, dst.shape, in[0]->shape)],
                 (*in[1])[ops::BroadcastIndex(i, dst.shape, in[1]->shape)]);
    }
    return OkStatus();
  };
  return d;
}

}  // namespace

const OpDef& AddDef() {
  static const OpDef def = [] {
    OpDef d = MakeBinary("add", [](double a, double b) { return a + b; });
    d.grad = [](GradCtx& g) -> Status {
      g.SetInputGrad(0, g.OutputGrad(0));
      g.SetInputGrad(1, g.OutputGrad(0));
      return OkStatus();
    };
    return d;
  }();
  return def;
}

const OpDef& MulDef() {
  static const OpDef def = [] {
    OpDef d = MakeBinary("mul", [](double a, double b) { return a * b; });
    d.grad = [](GradCtx& g) -> Status {
      if (g.NeedsGrad(0)) {
        ASSIGN_OR_RETURN(ValueId d0, g.Emit1("mul", {g.OutputGrad(0), g.Input(1)}, {}, "diff_src0"));
        g.SetInputGrad(0, d0);
      }
      if (g.NeedsGrad(1)) {
        ASSIGN_OR_RETURN(ValueId d1, g.Emit1("mul", {g.OutputGrad(0), g.Input(0)}, {}, "diff_src1"));
        g.SetInputGrad(1, d1);
      }
      return OkStatus();
    };
    return d;
  }();
  return def;
}

}  // namespace kiln::ir
