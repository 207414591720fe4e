// pool2d (max or average) and pool2d_backward.
//   OH = (IH + PBH + PEH - KH) / SH + 1   (floor: MXNet's 'valid' convention)
// Max pooling looks only at in-bounds elements (padding never wins); the gradient goes to
// the first maximum of each window. Average pooling divides by KH*KW when
// count_include_pad=1 (MXNet's default; with the valid convention every window ends inside
// the padded extent, so this equals MXNet's clipped divisor), else by the number of
// in-bounds elements. Source: MXNet pool.h (GLUON_SEMANTICS.md section 2); oneDNN "Pooling".
#include <limits>

#include "ir/ops/op_util.h"

namespace kiln::ir {
namespace {

struct PoolGeom {
  int64_t n, c, ih, iw, oh, ow, kh, kw, sh, sw, ph, pw;
  bool is_max, include_pad;
};

PoolGeom Geom(const Attrs& a, const Shape& src, const Shape& dst) {
  auto k = a.GetInts("kernel"), s = a.GetInts("stride"), p = a.GetInts("padding_begin");
  return PoolGeom{src[0], src[1], src[2], src[3], dst[2], dst[3], k[0], k[1], s[0], s[1], p[0], p[1],
                  a.GetString("kind") == "max", a.GetInt("count_include_pad", 1) != 0};
}

Status VerifyPoolAttrs(const InferCtx& c) {
  std::string kind = c.attrs().GetString("kind");
  if (kind != "max" && kind != "avg") return c.Error("kind must be \"max\" or \"avg\", got \"" + kind + "\"");
  RETURN_IF_ERROR(ops::CheckIntList(c, "kernel", 2, 1));
  RETURN_IF_ERROR(ops::CheckIntList(c, "stride", 2, 1));
  RETURN_IF_ERROR(ops::CheckIntList(c, "padding_begin", 2, 0));
  RETURN_IF_ERROR(ops::CheckIntList(c, "padding_end", 2, 0));
  auto k = c.attrs().GetInts("kernel"), pb = c.attrs().GetInts("padding_begin"),
       pe = c.attrs().GetInts("padding_end");
  for (int i = 0; i < 2; ++i) {
    if (pb[static_cast<size_t>(i)] >= k[static_cast<size_t>(i)] || pe[static_cast<size_t>(i)] >= k[static_cast<size_t>(i)]) {
      return c.Error("padding " + ShapeToString(pb) + "/" + ShapeToString(pe) + " must be smaller than kernel " +
                     ShapeToString(k));
    }
  }
  return OkStatus();
}

StatusOr<Shape> PoolOutShape(const InferCtx& c, const Shape& src) {
  auto k = c.attrs().GetInts("kernel"), s = c.attrs().GetInts("stride"), pb = c.attrs().GetInts("padding_begin"),
       pe = c.attrs().GetInts("padding_end");
  Shape dst{src[0], src[1], 0, 0};
  for (size_t i = 0; i < 2; ++i) {
    int64_t padded = src[i + 2] + pb[i] + pe[i];
    if (k[i] > padded) {
      return c.Error("kernel " + ShapeToString(k) + " exceeds the padded input " + std::to_string(padded));
    }
    dst[i + 2] = (padded - k[i]) / s[i] + 1;
  }
  return dst;
}

// Calls f(dst_index, window) where window lists the in-bounds src indices and divisor.
template <typename F>
void ForEachWindow(const PoolGeom& g, F f) {
  std::vector<int64_t> window;
  for (int64_t n = 0; n < g.n; ++n)
    for (int64_t c = 0; c < g.c; ++c)
      for (int64_t oh = 0; oh < g.oh; ++oh)
        for (int64_t ow = 0; ow < g.ow; ++ow) {
          window.clear();
          for (int64_t kh = 0; kh < g.kh; ++kh) {
            int64_t ih = oh * g.sh - g.ph + kh;
            if (ih < 0 || ih >= g.ih) continue;
            for (int64_t kw = 0; kw < g.kw; ++kw) {
              int64_t iw = ow * g.sw - g.pw + kw;
              if (iw < 0 || iw >= g.iw) continue;
              window.push_back(((n * g.c + c) * g.ih + ih) * g.iw + iw);
            }
          }
          double divisor = g.include_pad ? static_cast<double>(g.kh * g.kw) : static_cast<double>(window.size());
          f(((n * g.c + c) * g.oh + oh) * g.ow + ow, window, divisor);
        }
}

Attrs PoolAttrsOf(const Attrs& a) {
  Attrs out;
  for (const char* k : {"kernel", "stride", "padding_begin", "padding_end"}) out.Set(k, a.GetInts(k));
  out.Set("kind", a.GetString("kind"));
  out.Set("count_include_pad", a.GetInt("count_include_pad", 1));
  return out;
}

void FillPoolDef(OpDef& d) {
  d.ints_attrs = {"kernel", "stride", "padding_begin", "padding_end"};
  d.string_attrs = {"kind"};
  d.int_attrs = {"count_include_pad"};
  d.verify_attrs = VerifyPoolAttrs;
}

}  // namespace

const OpDef& Pool2dDef() {
  static const OpDef def = [] {
    OpDef d;
    d.name = "pool2d";
    d.batch_rule = BatchRule::kPerSampleData;
    d.input_names = {"src"};
    d.output_names = {"dst"};
    FillPoolDef(d);
    d.infer_type = [](const InferCtx& c) -> StatusOr<std::vector<TensorType>> {
      RETURN_IF_ERROR(ops::CheckRank(c, 0, 4));
      RETURN_IF_ERROR(ops::CheckDType(c, 0, DType::kF32));
      ASSIGN_OR_RETURN(Shape dst, PoolOutShape(c, c.input(0).shape));
      return std::vector<TensorType>{{DType::kF32, dst, "NCHW"}};
    };
    d.grad = [](GradCtx& g) -> Status {
      if (!g.NeedsGrad(0)) return OkStatus();
      ASSIGN_OR_RETURN(ValueId dx, g.Emit1("pool2d_backward", {g.OutputGrad(0), g.Input(0)}, PoolAttrsOf(g.attrs()),
                                           "diff_src"));
      g.SetInputGrad(0, dx);
      return OkStatus();
    };
    d.reference = [](const Node& node, const std::vector<const RefTensor*>& in, std::vector<RefTensor>& out) {
      const RefTensor& src = *in[0];
      PoolGeom g = Geom(node.attrs, src.shape, out[0].shape);
      ForEachWindow(g, [&](int64_t di, const std::vector<int64_t>& w, double divisor) {
        if (g.is_max) {
          double m = -std::numeric_limits<double>::infinity();
          for (int64_t si : w) m = std::max(m, src[si]);
          out[0][di] = m;
        } else {
          double s = 0;
          for (int64_t si : w) s += src[si];
          out[0][di] = s / divisor;
        }
      });
      return OkStatus();
    };
    return d;
  }();
  return def;
}

// diff_src [N,C,IH,IW] from diff_dst [N,C,OH,OW] and the forward src.
const OpDef& Pool2dBackwardDef() {
  static const OpDef def = [] {
    OpDef d;
    d.name = "pool2d_backward";
    d.input_names = {"diff_dst", "src"};
    d.output_names = {"diff_src"};
    FillPoolDef(d);
    // activation="relu" (set by passes/fusion.h FuseActivation): the ReLU backward of the
    // layer below is fused in, diff_src = pool_backward(diff_dst) * (src > 0), where src is
    // that ReLU's output.
    d.string_attrs.push_back("activation");
    d.verify_attrs = [](const InferCtx& c) -> Status {
      std::string act = c.attrs().GetString("activation", "");
      if (!act.empty() && act != "relu") return c.Error("activation must be \"relu\" or absent, got \"" + act + "\"");
      return VerifyPoolAttrs(c);
    };
    d.infer_type = [](const InferCtx& c) -> StatusOr<std::vector<TensorType>> {
      RETURN_IF_ERROR(ops::CheckRank(c, 0, 4));
      RETURN_IF_ERROR(ops::CheckRank(c, 1, 4));
      ASSIGN_OR_RETURN(Shape dst, PoolOutShape(c, c.input(1).shape));
      if (dst != c.input(0).shape) return c.Error("diff_dst must have the forward dst shape " + ShapeToString(dst));
      return std::vector<TensorType>{{DType::kF32, c.input(1).shape, "NCHW"}};
    };
    d.reference = [](const Node& node, const std::vector<const RefTensor*>& in, std::vector<RefTensor>& out) {
      const RefTensor& dy = *in[0];
      const RefTensor& src = *in[1];
      PoolGeom g = Geom(node.attrs, src.shape, dy.shape);
      ForEachWindow(g, [&](int64_t di, const std::vector<int64_t>& w, double divisor) {
        if (w.empty()) return;
        if (g.is_max) {
          int64_t best = w[0];
          for (int64_t si : w) {
            if (src[si] > src[best]) best = si;
          }
          out[0][best] += dy[di];
        } else {
          for (int64_t si : w) out[0][si] += dy[di] / divisor;
        }
      });
      if (node.attrs.GetString("activation", "") == "relu") {
        for (int64_t i = 0; i < out[0].size(); ++i) {
          if (!(src[i] > 0)) out[0][i] = 0;
        }
      }
      return OkStatus();
    };
    return d;
  }();
  return def;
}

}  // namespace kiln::ir
