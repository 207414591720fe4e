// Elementwise activations and their backward ops, written with the forward dst (as oneDNN's
// *_use_dst_for_bwd algorithms do, so the forward input need not stay alive):
//   relu:    dst = max(src, 0)          diff_src = diff_dst * (dst > 0)
//   sigmoid: dst = 1 / (1 + exp(-src))  diff_src = diff_dst * dst * (1 - dst)
//   tanh:    dst = tanh(src)            diff_src = diff_dst * (1 - dst^2)
//   leaky_relu: dst = src > 0 ? src : alpha * src (float alpha; absent: 0.01, PyTorch's
//            default negative_slope; Gluon's nn.LeakyReLU takes alpha explicitly)
//            diff_src = diff_dst * (dst > 0 ? 1 : alpha), written with dst, which needs
//            alpha > 0 (dst and src then have the same sign; oneDNN's
//            eltwise_relu_use_dst_for_bwd has the same condition).
// Source: oneDNN dev guide "Eltwise"; MXNet Activation (GLUON_SEMANTICS.md section 2).
#include <cmath>

#include "ir/ops/op_util.h"

namespace kiln::ir {
namespace {

using Fn = double (*)(double);
using BwdFn = double (*)(double dy, double y);

OpDef MakeActivation(const std::string& name, Fn f) {
  OpDef d;
  d.name = name;
  d.input_names = {"src"};
  d.output_names = {"dst"};
  d.inplace_on_input0 = true;
  d.batch_rule = BatchRule::kRowWise;
  if (name == "relu" || name == "sigmoid" || name == "tanh") {  // fused-kernel IR ops of the same name
    d.elementwise = [name](ElementwiseEmitter& e, const Node&, const std::vector<int>& x) {
      return e.Emit(name + " " + std::to_string(x[0]));
    };
  }
  d.infer_type = [](const InferCtx& c) -> StatusOr<std::vector<TensorType>> {
    RETURN_IF_ERROR(ops::CheckDType(c, 0, DType::kF32));
    return std::vector<TensorType>{c.input(0)};
  };
  d.grad = [name](GradCtx& g) -> Status {
    if (!g.NeedsGrad(0)) return OkStatus();
    ASSIGN_OR_RETURN(ValueId dx, g.Emit1(name + "_backward", {g.OutputGrad(0), g.Output(0)}, {}, "diff_src"));
    g.SetInputGrad(0, dx);
    return OkStatus();
  };
  d.reference = [f](const Node&, const std::vector<const RefTensor*>& in, std::vector<RefTensor>& out) {
    for (int64_t i = 0; i < out[0].size(); ++i) out[0][i] = f((*in[0])[i]);
    return OkStatus();
  };
  return d;
}

OpDef MakeActivationBackward(const std::string& name, BwdFn f) {
  OpDef d;
  d.name = name + "_backward";
  d.input_names = {"diff_dst", "dst"};
  d.output_names = {"diff_src"};
  d.inplace_on_input0 = true;
  d.infer_type = [](const InferCtx& c) -> StatusOr<std::vector<TensorType>> {
    if (c.input(0).shape != c.input(1).shape) return c.Error("diff_dst and dst must have the same shape");
    return std::vector<TensorType>{c.input(1)};
  };
  d.reference = [f](const Node&, const std::vector<const RefTensor*>& in, std::vector<RefTensor>& out) {
    for (int64_t i = 0; i < out[0].size(); ++i) out[0][i] = f((*in[0])[i], (*in[1])[i]);
    return OkStatus();
  };
  return d;
}

double Alpha(const Node& n) { return n.attrs.GetFloat("alpha", 0.01); }

OpDef MakeLeakyRelu() {
  OpDef d = MakeActivation("leaky_relu", nullptr);
  d.float_attrs = {"alpha"};
  d.verify_attrs = [](const InferCtx& c) -> Status {
    double alpha = Alpha(c.node());
    if (!(alpha > 0)) return c.Error("alpha must be > 0 (the backward reads dst), got " + std::to_string(alpha));
    return OkStatus();
  };
  d.grad = [](GradCtx& g) -> Status {
    if (!g.NeedsGrad(0)) return OkStatus();
    Attrs attrs;
    attrs.Set("alpha", Alpha(g.node()));
    ASSIGN_OR_RETURN(ValueId dx, g.Emit1("leaky_relu_backward", {g.OutputGrad(0), g.Output(0)}, attrs, "diff_src"));
    g.SetInputGrad(0, dx);
    return OkStatus();
  };
  d.elementwise = [](ElementwiseEmitter& e, const Node& n, const std::vector<int>& x) {  // x > 0 ? x : alpha*x
    int zero = e.Emit("const 0");
    int ax = e.Emit("mul " + std::to_string(x[0]) + " " + std::to_string(ops::EmitConst(e, Alpha(n))));
    return e.Emit("select_gt " + std::to_string(x[0]) + " " + std::to_string(zero) + " " + std::to_string(x[0]) + " " +
                  std::to_string(ax));
  };
  d.reference = [](const Node& n, const std::vector<const RefTensor*>& in, std::vector<RefTensor>& out) {
    double alpha = Alpha(n);
    for (int64_t i = 0; i < out[0].size(); ++i) out[0][i] = (*in[0])[i] > 0 ? (*in[0])[i] : alpha * (*in[0])[i];
    return OkStatus();
  };
  return d;
}

OpDef MakeLeakyReluBackward() {
  OpDef d = MakeActivationBackward("leaky_relu", nullptr);
  d.float_attrs = {"alpha"};
  d.elementwise = [](ElementwiseEmitter& e, const Node& n, const std::vector<int>& x) {  // y > 0 ? dy : alpha*dy
    int zero = e.Emit("const 0");
    int ady = e.Emit("mul " + std::to_string(x[0]) + " " + std::to_string(ops::EmitConst(e, Alpha(n))));
    return e.Emit("select_gt " + std::to_string(x[1]) + " " + std::to_string(zero) + " " + std::to_string(x[0]) + " " +
                  std::to_string(ady));
  };
  d.reference = [](const Node& n, const std::vector<const RefTensor*>& in, std::vector<RefTensor>& out) {
    double alpha = Alpha(n);
    for (int64_t i = 0; i < out[0].size(); ++i) out[0][i] = (*in[0])[i] * ((*in[1])[i] > 0 ? 1.0 : alpha);
    return OkStatus();
  };
  return d;
}

}  // namespace

const OpDef& LeakyReluDef() {
  static const OpDef def = MakeLeakyRelu();
  return def;
}
const OpDef& LeakyReluBackwardDef() {
  static const OpDef def = MakeLeakyReluBackward();
  return def;
}

const OpDef& ReluDef() {
  static const OpDef def = MakeActivation("relu", [](double x) { return x > 0 ? x : 0.0; });
  return def;
}
const OpDef& SigmoidDef() {
  static const OpDef def = MakeActivation("sigmoid", [](double x) { return 1.0 / (1.0 + std::exp(-x)); });
  return def;
}
const OpDef& TanhDef() {
  static const OpDef def = MakeActivation("tanh", [](double x) { return std::tanh(x); });
  return def;
}
// The backward activations as fused-kernel statements (operands: dy, y).
std::string N(int i) { return std::to_string(i); }
const OpDef& ReluBackwardDef() {
  static const OpDef def = [] {
    OpDef d = MakeActivationBackward("relu", [](double dy, double y) { return y > 0 ? dy : 0.0; });
    d.elementwise = [](ElementwiseEmitter& e, const Node&, const std::vector<int>& x) {  // y > 0 ? dy : 0
      int zero = e.Emit("const 0");
      return e.Emit("select_gt " + N(x[1]) + " " + N(zero) + " " + N(x[0]) + " " + N(zero));
    };
    return d;
  }();
  return def;
}
const OpDef& SigmoidBackwardDef() {
  static const OpDef def = [] {
    OpDef d = MakeActivationBackward("sigmoid", [](double dy, double y) { return dy * y * (1.0 - y); });
    d.elementwise = [](ElementwiseEmitter& e, const Node&, const std::vector<int>& x) {  // dy * y * (1 - y)
      int one = e.Emit("const 1");
      int omy = e.Emit("sub " + N(one) + " " + N(x[1]));
      int t = e.Emit("mul " + N(x[0]) + " " + N(x[1]));
      return e.Emit("mul " + N(t) + " " + N(omy));
    };
    return d;
  }();
  return def;
}
const OpDef& TanhBackwardDef() {
  static const OpDef def = [] {
    OpDef d = MakeActivationBackward("tanh", [](double dy, double y) { return dy * (1.0 - y * y); });
    d.elementwise = [](ElementwiseEmitter& e, const Node&, const std::vector<int>& x) {  // dy * (1 - y*y)
      int one = e.Emit("const 1");
      int yy = e.Emit("mul " + N(x[1]) + " " + N(x[1]));
      int omy = e.Emit("sub " + N(one) + " " + N(yy));
      return e.Emit("mul " + N(x[0]) + " " + N(omy));
    };
    return d;
  }();
  return def;
}

}  // namespace kiln::ir
