// Reductions and broadcast:
//   reduce_sum / reduce_mean over `axes` (sorted, distinct); keepdims=1 keeps them as size 1.
//   An empty `axes` reduces nothing (dst = src). The mean of zero elements is NaN, as NumPy.
//   broadcast_to: dst[shape] = src broadcast by NumPy rules; its gradient is reduce_sum.
// Source: oneDNN dev guide "Reduction"; MXNet sum/mean/broadcast_to.
#include <limits>

#include "ir/ops/op_util.h"

namespace kiln::ir {
namespace {

StatusOr<Shape> ReducedShape(const InferCtx& c, bool keepdims_as_one) {
  const Shape& src = c.input(0).shape;
  std::vector<int64_t> axes = c.attrs().GetInts("axes");
  std::vector<bool> reduced(src.size(), false);
  for (int64_t a : axes) {
    int64_t n = ops::NormalizeAxis(a, static_cast<int64_t>(src.size()));
    if (n < 0 || reduced[static_cast<size_t>(n)]) return c.Error("axes " + ShapeToString(axes) + " are out of range or repeated");
    reduced[static_cast<size_t>(n)] = true;
  }
  Shape out;
  for (size_t i = 0; i < src.size(); ++i) {
    if (!reduced[i]) {
      out.push_back(src[i]);
    } else if (keepdims_as_one) {
      out.push_back(1);
    }
  }
  return out;
}

OpDef MakeReduce(const std::string& name, bool mean) {
  OpDef d;
  d.name = name;
  d.batch_rule = BatchRule::kAlongAxes;
  d.input_names = {"src"};
  d.output_names = {"dst"};
  d.ints_attrs = {"axes"};
  d.int_attrs = {"keepdims"};
  d.infer_type = [](const InferCtx& c) -> StatusOr<std::vector<TensorType>> {
    RETURN_IF_ERROR(ops::CheckDType(c, 0, DType::kF32));
    ASSIGN_OR_RETURN(Shape s, ReducedShape(c, c.attrs().GetInt("keepdims") != 0));
    std::string layout = s.size() == c.input(0).shape.size() ? c.input(0).layout : DefaultLayout(static_cast<int64_t>(s.size()));
    if (s.empty()) layout = "";
    return std::vector<TensorType>{{DType::kF32, s, layout}};
  };
  d.grad = [mean](GradCtx& g) -> Status {
    if (!g.NeedsGrad(0)) return OkStatus();
    // Copies: emitting nodes may reallocate the graph's value table.
    const TensorType src = g.builder().type(g.Input(0));
    const TensorType dst = g.builder().type(g.Output(0));
    // Re-insert the reduced axes as size 1, then broadcast back to the input shape.
    Shape kept = src.shape;
    for (int64_t a : g.attrs().GetInts("axes")) kept[static_cast<size_t>(ops::NormalizeAxis(a, src.rank()))] = 1;
    ValueId dy = g.OutputGrad(0);
    if (kept != dst.shape) {
      ASSIGN_OR_RETURN(dy, g.Emit1("reshape", {dy}, Attrs{{"shape", kept}}, "keepdims"));
    }
    ASSIGN_OR_RETURN(ValueId dx, g.Emit1("broadcast_to", {dy}, Attrs{{"shape", src.shape}}, "diff_src"));
    if (mean) {
      double count = static_cast<double>(src.num_elements()) / static_cast<double>(std::max<int64_t>(1, dst.num_elements()));
      ASSIGN_OR_RETURN(ValueId scale, g.Emit1("fill", {}, Attrs{{"shape", Shape{}}, {"value", 1.0 / count}}, "scale"));
      ASSIGN_OR_RETURN(dx, g.Emit1("mul", {dx, scale}, {}, "diff_src_mean"));
    }
    g.SetInputGrad(0, dx);
    return OkStatus();
  };
  d.reference = [mean](const Node& node, const std::vector<const RefTensor*>& in, std::vector<RefTensor>& out) {
    const RefTensor& src = *in[0];
    Shape kept = src.shape;
    for (int64_t a : node.attrs.GetInts("axes")) {
      kept[static_cast<size_t>(ops::NormalizeAxis(a, static_cast<int64_t>(src.shape.size())))] = 1;
    }
    std::vector<int64_t> count(static_cast<size_t>(out[0].size()), 0);
    for (int64_t i = 0; i < src.size(); ++i) {
      int64_t o = ops::BroadcastIndex(i, src.shape, kept);
      out[0][o] += src[i];
      ++count[static_cast<size_t>(o)];
    }
    if (mean) {
      for (int64_t o = 0; o < out[0].size(); ++o) {
        out[0][o] = count[static_cast<size_t>(o)] ? out[0][o] / static_cast<double>(count[static_cast<size_t>(o)])
                                                  : std::numeric_limits<double>::quiet_NaN();
      }
    }
    return OkStatus();
  };
  return d;
}

}  // namespace

const OpDef& ReduceSumDef() {
  static const OpDef def = MakeReduce("reduce_sum", false);
  return def;
}
const OpDef& ReduceMeanDef() {
  static const OpDef def = MakeReduce("reduce_mean", true);
  return def;
}

const OpDef& BroadcastToDef() {
  static const OpDef def = [] {
    OpDef d;
    d.name = "broadcast_to";
    d.batch_rule = BatchRule::kBroadcasting;
    // Fused kernels broadcast operands to the iteration space themselves.
    d.elementwise = [](ElementwiseEmitter&, const Node&, const std::vector<int>& x) { return x[0]; };
    d.input_names = {"src"};
    d.output_names = {"dst"};
    d.ints_attrs = {"shape"};
    d.infer_type = [](const InferCtx& c) -> StatusOr<std::vector<TensorType>> {
      Shape target = c.attrs().GetInts("shape");
      ASSIGN_OR_RETURN(Shape s, ops::BroadcastShapes(c, c.input(0).shape, target));
      if (s != target) return c.Error("cannot broadcast to " + ShapeToString(target));
      return std::vector<TensorType>{{c.input(0).dtype, s, DefaultLayout(static_cast<int64_t>(s.size()))}};
    };
    d.grad = [](GradCtx& g) -> Status {
      if (!g.NeedsGrad(0)) return OkStatus();
      g.SetInputGrad(0, g.OutputGrad(0));  // autodiff sums over the broadcast axes
      return OkStatus();
    };
    d.reference = [](const Node&, const std::vector<const RefTensor*>& in, std::vector<RefTensor>& out) {
      for (int64_t i = 0; i < out[0].size(); ++i) out[0][i] = (*in[0])[ops::BroadcastIndex(i, out[0].shape, in[0]->shape)];
      return OkStatus();
    };
    return d;
  }();
  return def;
}

}  // namespace kiln::ir
