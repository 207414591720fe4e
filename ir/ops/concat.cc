// Data movement along an axis (MXNet concat / split, NumPy concatenate / split / transpose):
//   concat(src0, ..., srcK-1) attr axis -> dst: the inputs joined along `axis` (every other
//       dim equal), K in [1, 16] (front ends nest longer lists). Gradient: split of
//       diff_dst with the inputs' sizes along axis.
//   split(src) attrs axis, sizes -> dst0..dstK-1: consecutive pieces of `sizes[i]` along
//       axis (sizes sum to the dim). Gradient: concat of the pieces' gradients (zeros for a
//       piece the loss does not read). A slice is the middle piece of a split.
//   transpose(src) attr axes -> dst: dst dim i is src dim axes[i] (a permutation).
//       Gradient: transpose by the inverse permutation.
// Negative axes count from the end. Any dtype (the bytes move unchanged).
#include "ir/ops/op_util.h"

namespace kiln::ir {
namespace {

constexpr int kMaxPieces = 16;

// outer = prod(dims[:axis]), inner = prod(dims[axis+1:]).
void OuterInner(const Shape& s, int64_t axis, int64_t* outer, int64_t* inner) {
  *outer = 1;
  *inner = 1;
  for (int64_t i = 0; i < axis; ++i) *outer *= s[static_cast<size_t>(i)];
  for (size_t i = static_cast<size_t>(axis) + 1; i < s.size(); ++i) *inner *= s[i];
}

StatusOr<int64_t> Axis(const InferCtx& c, int64_t rank) {
  int64_t axis = ops::NormalizeAxis(c.attrs().GetInt("axis", 1), rank);
  if (axis < 0) return c.Error("axis " + std::to_string(c.attrs().GetInt("axis", 1)) + " is out of range");
  return axis;
}

}  // namespace

const OpDef& ConcatDef() {
  static const OpDef def = [] {
    OpDef d;
    d.name = "concat";
    for (int i = 0; i < kMaxPieces; ++i) d.input_names.push_back("src" + std::to_string(i));
    d.output_names = {"dst"};
    d.min_inputs = 1;
    d.int_attrs = {"axis"};
    d.batch_rule = BatchRule::kMixes;  // the lowering may not split a batch along axis 0
    d.infer_type = [](const InferCtx& c) -> StatusOr<std::vector<TensorType>> {
      const TensorType& first = c.input(0);
      if (first.rank() < 1) return c.Error("inputs must have rank >= 1");
      ASSIGN_OR_RETURN(int64_t axis, Axis(c, first.rank()));
      Shape out = first.shape;
      out[static_cast<size_t>(axis)] = 0;
      for (int i = 0; i < c.num_inputs(); ++i) {
        const TensorType& t = c.input(i);
        if (t.dtype != first.dtype) return c.Error("inputs must have one dtype");
        if (t.rank() != first.rank()) return c.Error("inputs must have one rank");
        for (int64_t k = 0; k < first.rank(); ++k) {
          if (k != axis && t.shape[static_cast<size_t>(k)] != first.shape[static_cast<size_t>(k)]) {
            return c.Error("inputs must have equal dims except along axis " + std::to_string(axis));
          }
        }
        out[static_cast<size_t>(axis)] += t.shape[static_cast<size_t>(axis)];
      }
      return std::vector<TensorType>{{first.dtype, out, first.layout}};
    };
    d.grad = [](GradCtx& g) -> Status {
      const Shape& dst = g.builder().type(g.Output(0)).shape;
      int64_t axis = ops::NormalizeAxis(g.attrs().GetInt("axis", 1), static_cast<int64_t>(dst.size()));
      std::vector<int64_t> sizes;
      for (int i = 0; i < g.num_inputs(); ++i) sizes.push_back(g.builder().type(g.Input(i)).shape[static_cast<size_t>(axis)]);
      ASSIGN_OR_RETURN(std::vector<ValueId> parts,
                       g.Emit("split", {g.OutputGrad(0)}, Attrs{{"axis", axis}, {"sizes", sizes}}, "diff_src"));
      for (int i = 0; i < g.num_inputs(); ++i) {
        if (g.NeedsGrad(i)) g.SetInputGrad(i, parts[static_cast<size_t>(i)]);
      }
      return OkStatus();
    };
    d.reference = [](const Node& node, const std::vector<const RefTensor*>& in, std::vector<RefTensor>& out) {
      RefTensor& dst = out[0];
      int64_t axis = ops::NormalizeAxis(node.attrs.GetInt("axis", 1), static_cast<int64_t>(dst.shape.size()));
      int64_t outer, inner;
      OuterInner(dst.shape, axis, &outer, &inner);
      int64_t row = dst.shape[static_cast<size_t>(axis)] * inner, offset = 0;
      for (const RefTensor* src : in) {
        int64_t chunk = src->shape[static_cast<size_t>(axis)] * inner;
        for (int64_t o = 0; o < outer; ++o) {
          for (int64_t k = 0; k < chunk; ++k) dst[o * row + offset + k] = (*src)[o * chunk + k];
        }
        offset += chunk;
      }
      return OkStatus();
    };
    return d;
  }();
  return def;
}

const OpDef& SplitDef() {
  static const OpDef def = [] {
    OpDef d;
    d.name = "split";
    d.input_names = {"src"};
    for (int i = 0; i < kMaxPieces; ++i) d.output_names.push_back("dst" + std::to_string(i));
    d.int_attrs = {"axis"};
    d.ints_attrs = {"sizes"};
    d.infer_type = [](const InferCtx& c) -> StatusOr<std::vector<TensorType>> {
      const TensorType& src = c.input(0);
      if (src.rank() < 1) return c.Error("src must have rank >= 1");
      ASSIGN_OR_RETURN(int64_t axis, Axis(c, src.rank()));
      std::vector<int64_t> sizes = c.attrs().GetInts("sizes");
      if (sizes.empty() || sizes.size() > kMaxPieces) return c.Error("sizes must have 1 to 16 entries");
      int64_t total = 0;
      for (int64_t s : sizes) {
        if (s < 1) return c.Error("sizes " + ShapeToString(sizes) + " must be >= 1");
        total += s;
      }
      if (total != src.shape[static_cast<size_t>(axis)]) {
        return c.Error("sizes " + ShapeToString(sizes) + " must sum to dim " + std::to_string(axis) + " (" +
                       std::to_string(src.shape[static_cast<size_t>(axis)]) + ")");
      }
      std::vector<TensorType> out;
      for (int64_t s : sizes) {
        TensorType t = src;
        t.shape[static_cast<size_t>(axis)] = s;
        out.push_back(t);
      }
      return out;
    };
    d.grad = [](GradCtx& g) -> Status {
      if (!g.NeedsGrad(0)) return OkStatus();
      std::vector<ValueId> parts;
      for (size_t i = 0; i < g.node().outputs.size(); ++i) {
        ValueId dy = g.OutputGrad(static_cast<int>(i));
        if (dy < 0) {
          ASSIGN_OR_RETURN(dy, g.Emit1("fill", {},
                                       Attrs{{"shape", g.builder().type(g.Output(static_cast<int>(i))).shape},
                                             {"value", 0.0}},
                                       "zeros" + std::to_string(i)));
        }
        parts.push_back(dy);
      }
      ASSIGN_OR_RETURN(ValueId dx, g.Emit1("concat", parts, Attrs{{"axis", g.attrs().GetInt("axis", 1)}}, "diff_src"));
      g.SetInputGrad(0, dx);
      return OkStatus();
    };
    d.reference = [](const Node& node, const std::vector<const RefTensor*>& in, std::vector<RefTensor>& out) {
      const RefTensor& src = *in[0];
      int64_t axis = ops::NormalizeAxis(node.attrs.GetInt("axis", 1), static_cast<int64_t>(src.shape.size()));
      int64_t outer, inner;
      OuterInner(src.shape, axis, &outer, &inner);
      int64_t row = src.shape[static_cast<size_t>(axis)] * inner, offset = 0;
      for (RefTensor& dst : out) {
        int64_t chunk = dst.shape[static_cast<size_t>(axis)] * inner;
        for (int64_t o = 0; o < outer; ++o) {
          for (int64_t k = 0; k < chunk; ++k) dst[o * chunk + k] = src[o * row + offset + k];
        }
        offset += chunk;
      }
      return OkStatus();
    };
    return d;
  }();
  return def;
}

const OpDef& TransposeDef() {
  static const OpDef def = [] {
    OpDef d;
    d.name = "transpose";
    d.input_names = {"src"};
    d.output_names = {"dst"};
    d.ints_attrs = {"axes"};
    d.infer_type = [](const InferCtx& c) -> StatusOr<std::vector<TensorType>> {
      const TensorType& src = c.input(0);
      std::vector<int64_t> axes = c.attrs().GetInts("axes");
      if (static_cast<int64_t>(axes.size()) != src.rank()) {
        return c.Error("axes " + ShapeToString(axes) + " must have one entry per dim of src");
      }
      std::vector<bool> seen(axes.size(), false);
      Shape out;
      for (int64_t a : axes) {
        if (a < 0 || a >= src.rank() || seen[static_cast<size_t>(a)]) {
          return c.Error("axes " + ShapeToString(axes) + " must be a permutation of 0.." + std::to_string(src.rank() - 1));
        }
        seen[static_cast<size_t>(a)] = true;
        out.push_back(src.shape[static_cast<size_t>(a)]);
      }
      return std::vector<TensorType>{{src.dtype, out, DefaultLayout(static_cast<int64_t>(out.size()))}};
    };
    d.grad = [](GradCtx& g) -> Status {
      if (!g.NeedsGrad(0)) return OkStatus();
      std::vector<int64_t> axes = g.attrs().GetInts("axes"), inverse(axes.size());
      for (size_t i = 0; i < axes.size(); ++i) inverse[static_cast<size_t>(axes[i])] = static_cast<int64_t>(i);
      ASSIGN_OR_RETURN(ValueId dx, g.Emit1("transpose", {g.OutputGrad(0)}, Attrs{{"axes", inverse}}, "diff_src"));
      // The gradient's layout name follows src's.
      g.SetInputGrad(0, dx);
      return OkStatus();
    };
    d.reference = [](const Node& node, const std::vector<const RefTensor*>& in, std::vector<RefTensor>& out) {
      const RefTensor& src = *in[0];
      std::vector<int64_t> axes = node.attrs.GetInts("axes");
      std::vector<int64_t> src_strides = ops::Strides(src.shape), dst_strides = ops::Strides(out[0].shape);
      for (int64_t i = 0; i < out[0].size(); ++i) {
        int64_t rem = i, s = 0;
        for (size_t k = 0; k < axes.size(); ++k) {
          int64_t idx = rem / dst_strides[k];
          rem %= dst_strides[k];
          s += idx * src_strides[static_cast<size_t>(axes[k])];
        }
        out[0][i] = src[s];
      }
      return OkStatus();
    };
    return d;
  }();
  return def;
}

}  // namespace kiln::ir
