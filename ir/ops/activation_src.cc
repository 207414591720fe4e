// Elementwise activations whose backward reads the forward input (src), as oneDNN's eltwise
// backward does for the algorithms that are not invertible from dst. One table row per op;
// each has "<name>" (src -> dst) and "<name>_backward" (diff_dst, src -> diff_src), with the
// same float attributes:
//   elu(alpha=1):          dst = x > 0 ? x : alpha*(e^x - 1)          (Gluon ELU, PyTorch ELU)
//   selu:                  dst = scale * elu(x; alpha), alpha = 1.6732632423543772,
//                          scale = 1.0507009873554805                 (Klambauer et al. 2017)
//   gelu:                  dst = x/2 * (1 + erf(x/sqrt 2))            (erf form: Gluon GELU,
//                                                                       PyTorch GELU('none'))
//   silu(beta=1):          dst = x * sigmoid(beta*x)                  (Gluon Swish(beta);
//                                                                       PyTorch SiLU is beta=1)
//   hard_sigmoid(alpha=0.2, beta=0.5): dst = clip(alpha*x + beta, 0, 1)
//                          (MXNet/ONNX defaults; PyTorch Hardsigmoid is alpha=1/6: the model
//                          zoo and the importer set it, GLUON_SEMANTICS.md)
//   hard_swish:            dst = x * relu6(x + 3) / 6                 (PyTorch Hardswish,
//                                                                       MobileNetV3)
//   softplus:              dst = log(1 + e^x)                         (MXNet softrelu)
//   softsign:              dst = x / (1 + |x|), d/dx = 1 / (1 + |x|)^2  (MXNet softsign,
//                                                                       PyTorch Softsign)
//   clip(a_min=0, a_max=6): dst = min(max(x, a_min), a_max)           (relu6 by default)
//   exp, log, sqrt, abs, neg: the elementwise math functions (MXNet nd.exp, nd.log, nd.sqrt,
//                          nd.abs, nd.negative); log and sqrt give NaN below 0, as NumPy;
//                          abs' derivative at 0 is 0 (oneDNN's, PyTorch's sign(0) = 0)
// The derivative at a kink is that of oneDNN's backward: clip passes the gradient for
// a_min < x <= a_max (PyTorch's hardtanh for a_min < x < a_max: they differ at x == a_max
// only); hard_sigmoid for 0 < alpha*x + beta <= 1; hard_swish 0 below -3, 1 above 3.
// Source: oneDNN 2.6 dev guide "Eltwise" (formulas of eltwise_elu, gelu_erf, swish,
// hardswish, soft_relu, clip, linear); MXNet 1.9 LeakyReLU / Activation operators.
#include <cmath>

#include "ir/ops/op_util.h"

namespace kiln::ir {
namespace {

struct Params {
  double a = 0, b = 0;  // the row's two float attributes (or their defaults)
};
using Fn = double (*)(double x, const Params& p);

// Writes fused-kernel statements (ir/fused_expr.h) through an ElementwiseEmitter.
struct Stmt {
  ElementwiseEmitter& e;
  static std::string N(int i) { return std::to_string(i); }
  int C(double v) { return ops::EmitConst(e, v); }
  int U(const char* op, int a) { return e.Emit(std::string(op) + " " + N(a)); }
  int B(const char* op, int a, int b) { return e.Emit(std::string(op) + " " + N(a) + " " + N(b)); }
  // (a cmp b) ? c : d, cmp one of lt le gt ge eq ne.
  int Sel(const char* cmp, int a, int b, int c, int d) {
    return e.Emit(std::string("select_") + cmp + " " + N(a) + " " + N(b) + " " + N(c) + " " + N(d));
  }
};
// f or df as fused-kernel statements over the statement `x` holding src; returns the result.
using EmitFn = int (*)(Stmt& s, const Params& p, int x);

struct Row {
  const char* name;
  const char* attr_a = nullptr;  // float attribute names and defaults
  double default_a = 0;
  const char* attr_b = nullptr;
  double default_b = 0;
  Fn f;
  Fn df;  // d dst / d src
  // f and df as fused-kernel statements (the elementwise-fusion pass); null: not fusible.
  EmitFn fx = nullptr;
  EmitFn dfx = nullptr;
  bool positive_a = false;  // attr_a must be > 0
};

constexpr double kSeluAlpha = 1.6732632423543772848170429916717;
constexpr double kSeluScale = 1.0507009873554804934193349852946;
double Sigmoid(double x) { return 1.0 / (1.0 + std::exp(-x)); }

const std::vector<Row>& Rows() {
  static const std::vector<Row> rows = {
      {"elu", "alpha", 1.0, nullptr, 0, [](double x, const Params& p) { return x > 0 ? x : p.a * std::expm1(x); },
       [](double x, const Params& p) { return x > 0 ? 1.0 : p.a * std::exp(x); },
       [](Stmt& s, const Params& p, int x) {  // x > 0 ? x : alpha*(e^x - 1)
         int zero = s.C(0);
         return s.Sel("gt", x, zero, x, s.B("mul", s.C(p.a), s.B("sub", s.U("exp", x), s.C(1))));
       },
       [](Stmt& s, const Params& p, int x) {  // x > 0 ? 1 : alpha*e^x
         return s.Sel("gt", x, s.C(0), s.C(1), s.B("mul", s.C(p.a), s.U("exp", x)));
       }},
      {"selu", nullptr, 0, nullptr, 0,
       [](double x, const Params&) { return kSeluScale * (x > 0 ? x : kSeluAlpha * std::expm1(x)); },
       [](double x, const Params&) { return kSeluScale * (x > 0 ? 1.0 : kSeluAlpha * std::exp(x)); },
       [](Stmt& s, const Params&, int x) {
         int elu = s.Sel("gt", x, s.C(0), x, s.B("mul", s.C(kSeluAlpha), s.B("sub", s.U("exp", x), s.C(1))));
         return s.B("mul", s.C(kSeluScale), elu);
       },
       [](Stmt& s, const Params&, int x) {
         int d = s.Sel("gt", x, s.C(0), s.C(1), s.B("mul", s.C(kSeluAlpha), s.U("exp", x)));
         return s.B("mul", s.C(kSeluScale), d);
       }},
      {"gelu", nullptr, 0, nullptr, 0, [](double x, const Params&) { return 0.5 * x * (1 + std::erf(x / std::sqrt(2.0))); },
       [](double x, const Params&) {
         return 0.5 * (1 + std::erf(x / std::sqrt(2.0))) + x * std::exp(-0.5 * x * x) / std::sqrt(2 * M_PI);
       }},
      {"silu", "beta", 1.0, nullptr, 0, [](double x, const Params& p) { return x * Sigmoid(p.a * x); },
       [](double x, const Params& p) {
         double s = Sigmoid(p.a * x);
         return s + p.a * x * s * (1 - s);
       },
       [](Stmt& s, const Params& p, int x) { return s.B("mul", x, s.U("sigmoid", s.B("mul", s.C(p.a), x))); },
       [](Stmt& s, const Params& p, int x) {  // sig + beta*x*sig*(1 - sig)
         int sig = s.U("sigmoid", s.B("mul", s.C(p.a), x));
         int t = s.B("mul", s.B("mul", s.C(p.a), x), s.B("mul", sig, s.B("sub", s.C(1), sig)));
         return s.B("add", sig, t);
       }},
      {"hard_sigmoid", "alpha", 0.2, "beta", 0.5,
       [](double x, const Params& p) { return std::min(1.0, std::max(0.0, p.a * x + p.b)); },
       [](double x, const Params& p) {
         double t = p.a * x + p.b;
         return t > 0 && t <= 1 ? p.a : 0.0;
       },
       [](Stmt& s, const Params& p, int x) {
         return s.B("min", s.B("max", s.B("add", s.B("mul", s.C(p.a), x), s.C(p.b)), s.C(0)), s.C(1));
       },
       [](Stmt& s, const Params& p, int x) {  // 0 < t <= 1 ? alpha : 0
         int t = s.B("add", s.B("mul", s.C(p.a), x), s.C(p.b));
         int zero = s.C(0);
         return s.Sel("gt", t, zero, s.Sel("le", t, s.C(1), s.C(p.a), zero), zero);
       },
       /*positive_a=*/true},
      {"hard_swish", nullptr, 0, nullptr, 0,
       [](double x, const Params&) { return x * std::min(6.0, std::max(0.0, x + 3)) / 6; },
       [](double x, const Params&) { return x < -3 ? 0.0 : x > 3 ? 1.0 : (2 * x + 3) / 6; },
       [](Stmt& s, const Params&, int x) {
         int r6 = s.B("min", s.B("max", s.B("add", x, s.C(3)), s.C(0)), s.C(6));
         return s.B("div", s.B("mul", x, r6), s.C(6));
       },
       [](Stmt& s, const Params&, int x) {  // x < -3 ? 0 : x > 3 ? 1 : (2x + 3)/6
         int mid = s.B("div", s.B("add", s.B("mul", s.C(2), x), s.C(3)), s.C(6));
         return s.Sel("lt", x, s.C(-3), s.C(0), s.Sel("gt", x, s.C(3), s.C(1), mid));
       }},
      {"softplus", nullptr, 0, nullptr, 0,
       [](double x, const Params&) { return std::max(x, 0.0) + std::log1p(std::exp(-std::abs(x))); },
       [](double x, const Params&) { return Sigmoid(x); },
       [](Stmt& s, const Params&, int x) {  // max(x, 0) + log(1 + e^-|x|)
         int t = s.U("log", s.B("add", s.C(1), s.U("exp", s.U("neg", s.U("abs", x)))));
         return s.B("add", s.B("max", x, s.C(0)), t);
       },
       [](Stmt& s, const Params&, int x) { return s.U("sigmoid", x); }},
      {"softsign", nullptr, 0, nullptr, 0, [](double x, const Params&) { return x / (1 + std::abs(x)); },
       [](double x, const Params&) { return 1 / ((1 + std::abs(x)) * (1 + std::abs(x))); },
       [](Stmt& s, const Params&, int x) { return s.B("div", x, s.B("add", s.C(1), s.U("abs", x))); },
       [](Stmt& s, const Params&, int x) {
         int d = s.B("add", s.C(1), s.U("abs", x));
         return s.B("div", s.C(1), s.B("mul", d, d));
       }},
      {"clip", "a_min", 0.0, "a_max", 6.0, [](double x, const Params& p) { return std::min(std::max(x, p.a), p.b); },
       [](double x, const Params& p) { return x > p.a && x <= p.b ? 1.0 : 0.0; },
       [](Stmt& s, const Params& p, int x) { return s.B("min", s.B("max", x, s.C(p.a)), s.C(p.b)); },
       [](Stmt& s, const Params& p, int x) {  // a_min < x <= a_max ? 1 : 0
         int zero = s.C(0);
         return s.Sel("gt", x, s.C(p.a), s.Sel("le", x, s.C(p.b), s.C(1), zero), zero);
       }},
      {"exp", nullptr, 0, nullptr, 0, [](double x, const Params&) { return std::exp(x); },
       [](double x, const Params&) { return std::exp(x); },
       [](Stmt& s, const Params&, int x) { return s.U("exp", x); },
       [](Stmt& s, const Params&, int x) { return s.U("exp", x); }},
      {"log", nullptr, 0, nullptr, 0, [](double x, const Params&) { return std::log(x); },
       [](double x, const Params&) { return 1 / x; },
       [](Stmt& s, const Params&, int x) { return s.U("log", x); },
       [](Stmt& s, const Params&, int x) { return s.B("div", s.C(1), x); }},
      {"sqrt", nullptr, 0, nullptr, 0, [](double x, const Params&) { return std::sqrt(x); },
       [](double x, const Params&) { return 0.5 / std::sqrt(x); },
       [](Stmt& s, const Params&, int x) { return s.U("sqrt", x); },
       [](Stmt& s, const Params&, int x) { return s.B("div", s.C(0.5), s.U("sqrt", x)); }},
      {"abs", nullptr, 0, nullptr, 0, [](double x, const Params&) { return std::abs(x); },
       [](double x, const Params&) { return x > 0 ? 1.0 : x < 0 ? -1.0 : 0.0; },
       [](Stmt& s, const Params&, int x) { return s.U("abs", x); },
       [](Stmt& s, const Params&, int x) {  // sign(x), 0 at 0
         int zero = s.C(0);
         return s.Sel("gt", x, zero, s.C(1), s.Sel("lt", x, zero, s.C(-1), zero));
       }},
      {"neg", nullptr, 0, nullptr, 0, [](double x, const Params&) { return -x; },
       [](double, const Params&) { return -1.0; },
       [](Stmt& s, const Params&, int x) { return s.U("neg", x); },
       [](Stmt& s, const Params&, int) { return s.C(-1); }},
  };
  return rows;
}

const Row& FindRow(const std::string& name) {
  for (const Row& r : Rows()) {
    if (name == r.name) return r;
  }
  std::abort();  // a Def below names a row that is not in the table
}

Params Read(const Row& r, const Node& n) {
  Params p;
  p.a = r.attr_a ? n.attrs.GetFloat(r.attr_a, r.default_a) : 0;
  p.b = r.attr_b ? n.attrs.GetFloat(r.attr_b, r.default_b) : 0;
  return p;
}

void SetCommon(OpDef& d, const Row& r) {
  if (r.attr_a) d.float_attrs.push_back(r.attr_a);
  if (r.attr_b) d.float_attrs.push_back(r.attr_b);
  d.inplace_on_input0 = true;
  d.verify_attrs = [&r](const InferCtx& c) -> Status {
    Params p = Read(r, c.node());
    if (r.positive_a && !(p.a > 0)) return c.Error(std::string(r.attr_a) + " must be > 0, got " + std::to_string(p.a));
    if (std::string(r.name) == "clip" && !(p.a < p.b)) {
      return c.Error("a_min must be < a_max, got a_min=" + std::to_string(p.a) + " a_max=" + std::to_string(p.b));
    }
    if (!std::isfinite(p.a) || !std::isfinite(p.b)) return c.Error("attributes must be finite");
    return OkStatus();
  };
}

OpDef MakeForward(const std::string& name) {
  const Row& r = FindRow(name);
  OpDef d;
  d.name = name;
  d.input_names = {"src"};
  d.output_names = {"dst"};
  d.batch_rule = BatchRule::kRowWise;
  SetCommon(d, r);
  if (r.fx != nullptr) {  // fusible: dst as fused-kernel statements
    d.elementwise = [&r](ElementwiseEmitter& e, const Node& n, const std::vector<int>& x) {
      Stmt s{e};
      return r.fx(s, Read(r, n), x[0]);
    };
  }
  d.infer_type = [](const InferCtx& c) -> StatusOr<std::vector<TensorType>> {
    RETURN_IF_ERROR(ops::CheckDType(c, 0, DType::kF32));
    return std::vector<TensorType>{c.input(0)};
  };
  d.grad = [&r](GradCtx& g) -> Status {
    if (!g.NeedsGrad(0)) return OkStatus();
    Params p = Read(r, g.node());
    Attrs attrs;
    if (r.attr_a) attrs.Set(r.attr_a, p.a);
    if (r.attr_b) attrs.Set(r.attr_b, p.b);
    ASSIGN_OR_RETURN(ValueId dx, g.Emit1(std::string(r.name) + "_backward", {g.OutputGrad(0), g.Input(0)}, attrs,
                                         "diff_src"));
    g.SetInputGrad(0, dx);
    return OkStatus();
  };
  d.reference = [&r](const Node& n, const std::vector<const RefTensor*>& in, std::vector<RefTensor>& out) {
    Params p = Read(r, n);
    for (int64_t i = 0; i < out[0].size(); ++i) out[0][i] = r.f((*in[0])[i], p);
    return OkStatus();
  };
  return d;
}

OpDef MakeBackward(const std::string& name) {
  const Row& r = FindRow(name);
  OpDef d;
  d.name = name + "_backward";
  d.input_names = {"diff_dst", "src"};
  d.output_names = {"diff_src"};
  SetCommon(d, r);
  d.infer_type = [](const InferCtx& c) -> StatusOr<std::vector<TensorType>> {
    if (c.input(0).shape != c.input(1).shape) return c.Error("diff_dst and src must have the same shape");
    return std::vector<TensorType>{c.input(1)};
  };
  if (r.dfx != nullptr) {  // fusible: diff_dst * df(src)
    d.elementwise = [&r](ElementwiseEmitter& e, const Node& n, const std::vector<int>& x) {
      Stmt s{e};
      return s.B("mul", x[0], r.dfx(s, Read(r, n), x[1]));
    };
  }
  d.reference = [&r](const Node& n, const std::vector<const RefTensor*>& in, std::vector<RefTensor>& out) {
    Params p = Read(r, n);
    for (int64_t i = 0; i < out[0].size(); ++i) out[0][i] = (*in[0])[i] * r.df((*in[1])[i], p);
    return OkStatus();
  };
  return d;
}

}  // namespace

#define KILN_SRC_ACTIVATION(Op, name)           \
  const OpDef& Op##Def() {                      \
    static const OpDef def = MakeForward(name);  \
    return def;                                  \
  }                                              \
  const OpDef& Op##BackwardDef() {              \
    static const OpDef def = MakeBackward(name); \
    return def;                                  \
  }
KILN_SRC_ACTIVATION(Elu, "elu")
KILN_SRC_ACTIVATION(Selu, "selu")
KILN_SRC_ACTIVATION(Gelu, "gelu")
KILN_SRC_ACTIVATION(Silu, "silu")
KILN_SRC_ACTIVATION(HardSigmoid, "hard_sigmoid")
KILN_SRC_ACTIVATION(HardSwish, "hard_swish")
KILN_SRC_ACTIVATION(Softplus, "softplus")
KILN_SRC_ACTIVATION(Softsign, "softsign")
KILN_SRC_ACTIVATION(Clip, "clip")
KILN_SRC_ACTIVATION(Exp, "exp")
KILN_SRC_ACTIVATION(Log, "log")
KILN_SRC_ACTIVATION(Sqrt, "sqrt")
KILN_SRC_ACTIVATION(Abs, "abs")
KILN_SRC_ACTIVATION(Neg, "neg")
#undef KILN_SRC_ACTIVATION

}  // namespace kiln::ir
