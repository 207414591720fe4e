// softmax and log_softmax along `axis` (default -1), max-subtracted for stability:
//   softmax:     dst = exp(x - max) / sum exp(x - max)
//   log_softmax: dst = (x - max) - log sum exp(x - max)
// Backward ops use dst:
//   softmax_backward:     diff_src = dst * (diff_dst - sum(diff_dst * dst))
//   log_softmax_backward: diff_src = diff_dst - exp(dst) * sum(diff_dst)
// Source: MXNet softmax-inl.h (GLUON_SEMANTICS.md section 9); oneDNN "Softmax", "LogSoftmax".
#include <cmath>
#include <limits>

#include "ir/ops/op_util.h"

namespace kiln::ir {
namespace {

// Calls f(offset, stride, len) for every 1-D slice along `axis`.
template <typename F>
void ForEachRow(const Shape& shape, int64_t axis, F f) {
  int64_t len = shape[static_cast<size_t>(axis)];
  int64_t inner = 1, outer = 1;
  for (size_t i = static_cast<size_t>(axis) + 1; i < shape.size(); ++i) inner *= shape[i];
  for (size_t i = 0; i < static_cast<size_t>(axis); ++i) outer *= shape[i];
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t in = 0; in < inner; ++in) f(o * len * inner + in, inner, len);
}

int64_t AxisOf(const Node& n, const Shape& s) { return ops::NormalizeAxis(n.attrs.GetInt("axis", -1), static_cast<int64_t>(s.size())); }

Status CheckAxis(const InferCtx& c) {
  if (ops::NormalizeAxis(c.attrs().GetInt("axis", -1), c.input(0).rank()) < 0) {
    return c.Error("axis " + std::to_string(c.attrs().GetInt("axis", -1)) + " is out of range");
  }
  return OkStatus();
}

OpDef MakeSoftmax(const std::string& name, bool log) {
  OpDef d;
  d.name = name;
  d.batch_rule = BatchRule::kAlongAxis;
  d.input_names = {"src"};
  d.output_names = {"dst"};
  d.int_attrs = {"axis"};
  d.verify_attrs = CheckAxis;
  d.infer_type = [](const InferCtx& c) -> StatusOr<std::vector<TensorType>> {
    RETURN_IF_ERROR(ops::CheckDType(c, 0, DType::kF32));
    return std::vector<TensorType>{c.input(0)};
  };
  d.grad = [name](GradCtx& g) -> Status {
    if (!g.NeedsGrad(0)) return OkStatus();
    ASSIGN_OR_RETURN(ValueId dx, g.Emit1(name + "_backward", {g.OutputGrad(0), g.Output(0)},
                                         Attrs{{"axis", g.attrs().GetInt("axis", -1)}}, "diff_src"));
    g.SetInputGrad(0, dx);
    return OkStatus();
  };
  d.reference = [log](const Node& node, const std::vector<const RefTensor*>& in, std::vector<RefTensor>& out) {
    const RefTensor& x = *in[0];
    RefTensor& y = out[0];
    ForEachRow(x.shape, AxisOf(node, x.shape), [&](int64_t off, int64_t stride, int64_t len) {
      double m = -std::numeric_limits<double>::infinity();
      for (int64_t i = 0; i < len; ++i) m = std::max(m, x[off + i * stride]);
      double s = 0;
      for (int64_t i = 0; i < len; ++i) s += std::exp(x[off + i * stride] - m);
      for (int64_t i = 0; i < len; ++i) {
        double v = x[off + i * stride] - m;
        y[off + i * stride] = log ? v - std::log(s) : std::exp(v) / s;
      }
    });
    return OkStatus();
  };
  return d;
}

OpDef MakeSoftmaxBackward(const std::string& name, bool log) {
  OpDef d;
  d.name = name + "_backward";
  d.input_names = {"diff_dst", "dst"};
  d.output_names = {"diff_src"};
  d.int_attrs = {"axis"};
  d.verify_attrs = CheckAxis;
  d.infer_type = [](const InferCtx& c) -> StatusOr<std::vector<TensorType>> {
    if (c.input(0).shape != c.input(1).shape) return c.Error("diff_dst and dst must have the same shape");
    return std::vector<TensorType>{c.input(1)};
  };
  d.reference = [log](const Node& node, const std::vector<const RefTensor*>& in, std::vector<RefTensor>& out) {
    const RefTensor& dy = *in[0];
    const RefTensor& y = *in[1];
    ForEachRow(y.shape, AxisOf(node, y.shape), [&](int64_t off, int64_t stride, int64_t len) {
      double s = 0;
      for (int64_t i = 0; i < len; ++i) s += log ? dy[off + i * stride] : dy[off + i * stride] * y[off + i * stride];
      for (int64_t i = 0; i < len; ++i) {
        int64_t k = off + i * stride;
        out[0][k] = log ? dy[k] - std::exp(y[k]) * s : y[k] * (dy[k] - s);
      }
    });
    return OkStatus();
  };
  return d;
}

}  // namespace

const OpDef& SoftmaxDef() {
  static const OpDef def = MakeSoftmax("softmax", false);
  return def;
}
const OpDef& LogSoftmaxDef() {
  static const OpDef def = MakeSoftmax("log_softmax", true);
  return def;
}
const OpDef& SoftmaxBackwardDef() {
  static const OpDef def = MakeSoftmaxBackward("softmax", false);
  return def;
}
const OpDef& LogSoftmaxBackwardDef() {
  static const OpDef def = MakeSoftmaxBackward("log_softmax", true);
  return def;
}

}  // namespace kiln::ir
