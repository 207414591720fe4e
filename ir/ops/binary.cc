// Broadcasting binary ops (NumPy rules, aligned at the trailing dims):
//   add: dst = src0 + src1     d(src0) = diff_dst, d(src1) = diff_dst
//   mul: dst = src0 * src1     d(src0) = diff_dst * src1, d(src1) = diff_dst * src0
//   sub: dst = src0 - src1     d(src0) = diff_dst, d(src1) = -diff_dst
//   div: dst = src0 / src1     d(src0) = diff_dst / src1, d(src1) = -diff_dst * dst / src1
//   maximum / minimum:         d(src0) = diff_dst * m, d(src1) = diff_dst - d(src0), with
//                              m = (src0 >= src1) / (src0 <= src1): a tie's gradient goes
//                              to src0 (MXNet's broadcast_maximum backward, ge / lt)
//   greater_equal: dst = src0 >= src1 ? 1 : 0 (f32; not differentiable, no gradient flows)
// Autodiff reduces each gradient back to its input's shape (sum over broadcast axes).
// Source: oneDNN dev guide "Binary"; MXNet broadcast_add/broadcast_mul.
#include "ir/ops/op_util.h"

namespace kiln::ir {
namespace {

// `expr`: the op's name in the fused-kernel IR (ir/fused_expr.h), "" if it has none.
OpDef MakeBinary(const std::string& name, double (*f)(double, double), std::string expr) {
  OpDef d;
  d.name = name;
  d.input_names = {"src0", "src1"};
  d.output_names = {"dst"};
  d.batch_rule = BatchRule::kBroadcasting;
  if (!expr.empty()) {
    d.elementwise = [expr](ElementwiseEmitter& e, const Node&, const std::vector<int>& x) {
      return e.Emit(expr + " " + std::to_string(x[0]) + " " + std::to_string(x[1]));
    };
  }
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
    OpDef d = MakeBinary("add", [](double a, double b) { return a + b; }, "add");
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
    OpDef d = MakeBinary("mul", [](double a, double b) { return a * b; }, "mul");
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

const OpDef& SubDef() {
  static const OpDef def = [] {
    OpDef d = MakeBinary("sub", [](double a, double b) { return a - b; }, "sub");
    d.grad = [](GradCtx& g) -> Status {
      g.SetInputGrad(0, g.OutputGrad(0));
      if (g.NeedsGrad(1)) {
        ASSIGN_OR_RETURN(ValueId d1, g.Emit1("neg", {g.OutputGrad(0)}, {}, "diff_src1"));
        g.SetInputGrad(1, d1);
      }
      return OkStatus();
    };
    return d;
  }();
  return def;
}

const OpDef& DivDef() {
  static const OpDef def = [] {
    OpDef d = MakeBinary("div", [](double a, double b) { return a / b; }, "div");
    d.grad = [](GradCtx& g) -> Status {
      if (g.NeedsGrad(0)) {
        ASSIGN_OR_RETURN(ValueId d0, g.Emit1("div", {g.OutputGrad(0), g.Input(1)}, {}, "diff_src0"));
        g.SetInputGrad(0, d0);
      }
      if (g.NeedsGrad(1)) {
        ASSIGN_OR_RETURN(ValueId t, g.Emit1("mul", {g.OutputGrad(0), g.Output(0)}, {}, "diff_dst_x_dst"));
        ASSIGN_OR_RETURN(ValueId q, g.Emit1("div", {t, g.Input(1)}, {}, "quotient"));
        ASSIGN_OR_RETURN(ValueId d1, g.Emit1("neg", {q}, {}, "diff_src1"));
        g.SetInputGrad(1, d1);
      }
      return OkStatus();
    };
    return d;
  }();
  return def;
}

namespace {
// maximum (`max` true) / minimum: the mask of src0's share, then the rest for src1.
Status MinMaxGrad(GradCtx& g, bool max) {
  ValueId a = g.Input(0), b = g.Input(1);
  ASSIGN_OR_RETURN(ValueId mask, g.Emit1("greater_equal", max ? std::vector<ValueId>{a, b} : std::vector<ValueId>{b, a},
                                         {}, "mask"));
  ASSIGN_OR_RETURN(ValueId d0, g.Emit1("mul", {g.OutputGrad(0), mask}, {}, "diff_src0"));
  g.SetInputGrad(0, d0);
  if (g.NeedsGrad(1)) {
    ASSIGN_OR_RETURN(ValueId d1, g.Emit1("sub", {g.OutputGrad(0), d0}, {}, "diff_src1"));
    g.SetInputGrad(1, d1);
  }
  return OkStatus();
}
}  // namespace

const OpDef& MaximumDef() {
  static const OpDef def = [] {
    OpDef d = MakeBinary("maximum", [](double a, double b) { return a >= b ? a : b; }, "max");
    d.grad = [](GradCtx& g) { return MinMaxGrad(g, true); };
    return d;
  }();
  return def;
}

const OpDef& MinimumDef() {
  static const OpDef def = [] {
    OpDef d = MakeBinary("minimum", [](double a, double b) { return a <= b ? a : b; }, "min");
    d.grad = [](GradCtx& g) { return MinMaxGrad(g, false); };
    return d;
  }();
  return def;
}

const OpDef& GreaterEqualDef() {
  static const OpDef def = [] {
    OpDef d = MakeBinary("greater_equal", [](double a, double b) { return a >= b ? 1.0 : 0.0; }, "");
    d.elementwise = [](ElementwiseEmitter& e, const Node&, const std::vector<int>& x) {  // a >= b ? 1 : 0
      int one = e.Emit("const 1");
      int zero = e.Emit("const 0");
      return e.Emit("select_ge " + std::to_string(x[0]) + " " + std::to_string(x[1]) + " " + std::to_string(one) + " " +
                    std::to_string(zero));
    };
    return d;
  }();
  return def;
}

}  // namespace kiln::ir
