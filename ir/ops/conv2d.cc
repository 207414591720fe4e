// conv2d and its backward ops (diff_src, diff_weights/diff_bias).
//   dst[n,oc,oh,ow] = bias[oc] + sum_{ic,kh,kw} src[n,ic,oh*SH-PBH+kh*DH, ow*SW-PBW+kw*DW] * weights[oc,ic,kh,kw]
//   OH = (IH + PBH + PEH - DH*(KH-1) - 1) / SH + 1   (floor division, same for W)
// Attributes (H, W order): stride, padding_begin, padding_end, dilation (1 = dense); and
// groups G (absent: 1): weights are [OC, IC/G, KH, KW], output channel oc sees the input
// channels of its group, g = oc / (OC/G), ic in [g*IC/G, (g+1)*IC/G) (G = IC = OC is the
// depthwise convolution of MobileNet).
// Source: oneDNN dev guide "Convolution" (groups); MXNet Convolution num_group; PyTorch
// Conv2d groups (GLUON_SEMANTICS.md section 2).
#include "ir/ops/op_util.h"

namespace kiln::ir {
namespace {

// ic: input channels per group (the weights' dim 1); icg: all input channels.
struct ConvGeom {
  int64_t n, ic, ih, iw, oc, kh, kw, oh, ow, sh, sw, ph, pw, dh, dw, groups, icg;
};

int64_t Groups(const Attrs& a) { return a.GetInt("groups", 1); }

ConvGeom Geom(const Attrs& a, const Shape& src, const Shape& wei, const Shape& dst) {
  auto s = a.GetInts("stride"), p = a.GetInts("padding_begin"), d = a.GetInts("dilation");
  return ConvGeom{src[0], wei[1], src[2], src[3], wei[0], wei[2], wei[3], dst[2], dst[3],
                  s[0], s[1], p[0], p[1], d[0], d[1], Groups(a), src[1]};
}

// Checks that IC (src channels) = G x the weights' IC/G and that G divides OC.
Status CheckGroups(const InferCtx& c, int64_t ic, const Shape& wei) {
  int64_t g = Groups(c.attrs());
  if (ic != wei[1] * g) {
    return c.Error("input channels IC=" + std::to_string(ic) + " of src do not match IC=" + std::to_string(wei[1]) +
                   (g > 1 ? " x groups " + std::to_string(g) : std::string()) + " of weights");
  }
  if (wei[0] % g != 0) {
    return c.Error("output channels OC=" + std::to_string(wei[0]) + " are not a multiple of groups " +
                   std::to_string(g));
  }
  return OkStatus();
}

Status VerifyConvAttrs(const InferCtx& c) {
  RETURN_IF_ERROR(ops::CheckIntList(c, "stride", 2, 1));
  RETURN_IF_ERROR(ops::CheckIntList(c, "padding_begin", 2, 0));
  RETURN_IF_ERROR(ops::CheckIntList(c, "padding_end", 2, 0));
  RETURN_IF_ERROR(ops::CheckIntList(c, "dilation", 2, 1));
  if (Groups(c.attrs()) < 1) return c.Error("groups must be >= 1, got " + std::to_string(Groups(c.attrs())));
  return ops::CheckFusedActivation(c);
}

// Output spatial size for one axis, or an error if the dilated kernel does not fit.
StatusOr<int64_t> OutSize(const InferCtx& c, const char* axis, int64_t in, int64_t k, int64_t s, int64_t pb, int64_t pe,
                          int64_t d) {
  int64_t span = d * (k - 1) + 1;
  if (in + pb + pe < span) {
    return c.Error(std::string("dilated kernel ") + axis + "=" + std::to_string(span) + " exceeds padded input " +
                   axis + "=" + std::to_string(in + pb + pe));
  }
  return (in + pb + pe - span) / s + 1;
}

StatusOr<Shape> ConvOutShape(const InferCtx& c, const Shape& src, const Shape& wei) {
  const Attrs& a = c.attrs();
  auto s = a.GetInts("stride"), pb = a.GetInts("padding_begin"), pe = a.GetInts("padding_end"),
       d = a.GetInts("dilation");
  ASSIGN_OR_RETURN(int64_t oh, OutSize(c, "KH", src[2], wei[2], s[0], pb[0], pe[0], d[0]));
  ASSIGN_OR_RETURN(int64_t ow, OutSize(c, "KW", src[3], wei[3], s[1], pb[1], pe[1], d[1]));
  return Shape{src[0], wei[0], oh, ow};
}

Attrs ConvAttrsOf(const Attrs& a) {
  Attrs out;
  for (const char* k : {"stride", "padding_begin", "padding_end", "dilation"}) out.Set(k, a.GetInts(k));
  if (Groups(a) != 1) out.Set("groups", Groups(a));
  return out;
}

// Calls f(n, oc, oh, ow, ic, kh, kw, src_index) for every in-bounds tap; ic indexes the
// group's input channels (the weights' dim 1).
template <typename F>
void ForEachTap(const ConvGeom& g, F f) {
  int64_t oc_per_group = g.oc / g.groups;
  for (int64_t n = 0; n < g.n; ++n)
    for (int64_t oc = 0; oc < g.oc; ++oc) {
      int64_t first_ic = oc / oc_per_group * g.ic;
      for (int64_t oh = 0; oh < g.oh; ++oh)
        for (int64_t ow = 0; ow < g.ow; ++ow)
          for (int64_t ic = 0; ic < g.ic; ++ic)
            for (int64_t kh = 0; kh < g.kh; ++kh) {
              int64_t ih = oh * g.sh - g.ph + kh * g.dh;
              if (ih < 0 || ih >= g.ih) continue;
              for (int64_t kw = 0; kw < g.kw; ++kw) {
                int64_t iw = ow * g.sw - g.pw + kw * g.dw;
                if (iw < 0 || iw >= g.iw) continue;
                f(n, oc, oh, ow, ic, kh, kw, ((n * g.icg + first_ic + ic) * g.ih + ih) * g.iw + iw);
              }
            }
    }
}

int64_t DstIndex(const ConvGeom& g, int64_t n, int64_t oc, int64_t oh, int64_t ow) {
  return ((n * g.oc + oc) * g.oh + oh) * g.ow + ow;
}
int64_t WeiIndex(const ConvGeom& g, int64_t oc, int64_t ic, int64_t kh, int64_t kw) {
  return ((oc * g.ic + ic) * g.kh + kh) * g.kw + kw;
}

}  // namespace

const OpDef& Conv2dDef() {
  static const OpDef def = [] {
    OpDef d;
    d.name = "conv2d";
    d.batch_rule = BatchRule::kPerSampleData;
    // sum: fused by passes/fusion.h (FuseSum), only after a bias: dst = act(conv + bias + sum).
    d.input_names = {"src", "weights", "bias", "sum"};
    d.output_names = {"dst"};
    d.min_inputs = 2;
    d.ints_attrs = {"stride", "padding_begin", "padding_end", "dilation"};
    d.int_attrs = {"groups"};
    d.string_attrs = {"activation"};  // fused by passes/fusion.h: dst = act(conv(src))
    d.float_attrs = {"activation_min", "activation_max"};  // activation "clip" (relu6: 0, 6)
    d.verify_attrs = VerifyConvAttrs;
    d.infer_type = [](const InferCtx& c) -> StatusOr<std::vector<TensorType>> {
      RETURN_IF_ERROR(ops::CheckRank(c, 0, 4));
      RETURN_IF_ERROR(ops::CheckRank(c, 1, 4));
      for (int i = 0; i < c.num_inputs(); ++i) RETURN_IF_ERROR(ops::CheckDType(c, i, DType::kF32));
      const Shape& src = c.input(0).shape;
      const Shape& wei = c.input(1).shape;
      RETURN_IF_ERROR(CheckGroups(c, src[1], wei));
      if (c.num_inputs() >= 3 && (c.input(2).rank() != 1 || c.input(2).shape[0] != wei[0])) {
        return c.Error("bias must have shape [OC]=[" + std::to_string(wei[0]) + "]");
      }
      ASSIGN_OR_RETURN(Shape dst, ConvOutShape(c, src, wei));
      if (c.num_inputs() == 4 && c.input(3).shape != dst) {
        return c.Error("the fused sum operand must have the shape of dst " + ShapeToString(dst));
      }
      return std::vector<TensorType>{{DType::kF32, dst, "NCHW"}};
    };
    d.grad = [](GradCtx& g) -> Status {
      RETURN_IF_ERROR(ops::NoGradForFused("conv2d", g.attrs()));
      if (g.num_inputs() == 4) return Unimplemented("conv2d with a fused sum has no gradient rule: run fusion after autodiff");
      Attrs a = ConvAttrsOf(g.attrs());
      ValueId dy = g.OutputGrad(0);
      if (g.NeedsGrad(0)) {
        Attrs ad = a;
        ad.Set("src_shape", g.builder().type(g.Input(0)).shape);
        ASSIGN_OR_RETURN(ValueId dx, g.Emit1("conv2d_backward_data", {dy, g.Input(1)}, ad, "diff_src"));
        g.SetInputGrad(0, dx);
      }
      bool bias = g.num_inputs() == 3;
      if (g.NeedsGrad(1) || (bias && g.NeedsGrad(2))) {
        Attrs aw = a;
        const Shape w = g.builder().type(g.Input(1)).shape;
        aw.Set("kernel", std::vector<int64_t>{w[2], w[3]});
        aw.Set("with_bias", int64_t{bias ? 1 : 0});
        ASSIGN_OR_RETURN(auto dw, g.Emit("conv2d_backward_weights", {g.Input(0), dy}, aw, "diff_weights"));
        g.SetInputGrad(1, dw[0]);
        if (bias) g.SetInputGrad(2, dw[1]);
      }
      return OkStatus();
    };
    d.reference = [](const Node& node, const std::vector<const RefTensor*>& in, std::vector<RefTensor>& out) {
      const RefTensor& src = *in[0];
      const RefTensor& wei = *in[1];
      RefTensor& dst = out[0];
      ConvGeom g = Geom(node.attrs, src.shape, wei.shape, dst.shape);
      if (in.size() >= 3) {
        for (int64_t i = 0; i < dst.size(); ++i) dst[i] = (*in[2])[(i / (g.oh * g.ow)) % g.oc];
      }
      if (in.size() == 4) {
        for (int64_t i = 0; i < dst.size(); ++i) dst[i] += (*in[3])[i];
      }
      ForEachTap(g, [&](int64_t n, int64_t oc, int64_t oh, int64_t ow, int64_t ic, int64_t kh, int64_t kw, int64_t si) {
        dst[DstIndex(g, n, oc, oh, ow)] += src[si] * wei[WeiIndex(g, oc, ic, kh, kw)];
      });
      ops::ApplyFusedActivation(node.attrs, dst);
      return OkStatus();
    };
    return d;
  }();
  return def;
}

// diff_src [N,IC,IH,IW] from diff_dst [N,OC,OH,OW] and weights [OC,IC,KH,KW]; the attribute
// src_shape gives [N,IC,IH,IW] (OH alone does not determine IH when stride > 1).
const OpDef& Conv2dBackwardDataDef() {
  static const OpDef def = [] {
    OpDef d;
    d.name = "conv2d_backward_data";
    d.input_names = {"diff_dst", "weights"};
    d.output_names = {"diff_src"};
    d.ints_attrs = {"stride", "padding_begin", "padding_end", "dilation", "src_shape"};
    d.int_attrs = {"groups"};
    d.verify_attrs = [](const InferCtx& c) -> Status {
      RETURN_IF_ERROR(VerifyConvAttrs(c));
      return ops::CheckIntList(c, "src_shape", 4, 1);
    };
    d.infer_type = [](const InferCtx& c) -> StatusOr<std::vector<TensorType>> {
      RETURN_IF_ERROR(ops::CheckRank(c, 0, 4));
      RETURN_IF_ERROR(ops::CheckRank(c, 1, 4));
      Shape src = c.attrs().GetInts("src_shape");
      const Shape& wei = c.input(1).shape;
      RETURN_IF_ERROR(CheckGroups(c, src[1], wei));
      ASSIGN_OR_RETURN(Shape dst, ConvOutShape(c, src, wei));
      if (dst != c.input(0).shape) {
        return c.Error("diff_dst must have the forward dst shape " + ShapeToString(dst));
      }
      return std::vector<TensorType>{{DType::kF32, src, "NCHW"}};
    };
    d.reference = [](const Node& node, const std::vector<const RefTensor*>& in, std::vector<RefTensor>& out) {
      const RefTensor& dy = *in[0];
      const RefTensor& wei = *in[1];
      RefTensor& dx = out[0];
      ConvGeom g = Geom(node.attrs, dx.shape, wei.shape, dy.shape);
      ForEachTap(g, [&](int64_t n, int64_t oc, int64_t oh, int64_t ow, int64_t ic, int64_t kh, int64_t kw, int64_t si) {
        dx[si] += dy[DstIndex(g, n, oc, oh, ow)] * wei[WeiIndex(g, oc, ic, kh, kw)];
      });
      return OkStatus();
    };
    return d;
  }();
  return def;
}

// diff_weights [OC,IC,KH,KW] (and diff_bias [OC] when with_bias=1) from src and diff_dst;
// the attribute kernel gives [KH,KW].
const OpDef& Conv2dBackwardWeightsDef() {
  static const OpDef def = [] {
    OpDef d;
    d.name = "conv2d_backward_weights";
    d.input_names = {"src", "diff_dst"};
    d.output_names = {"diff_weights", "diff_bias"};
    d.ints_attrs = {"stride", "padding_begin", "padding_end", "dilation", "kernel"};
    d.int_attrs = {"with_bias", "groups"};
    d.verify_attrs = [](const InferCtx& c) -> Status {
      RETURN_IF_ERROR(VerifyConvAttrs(c));
      return ops::CheckIntList(c, "kernel", 2, 1);
    };
    d.infer_type = [](const InferCtx& c) -> StatusOr<std::vector<TensorType>> {
      RETURN_IF_ERROR(ops::CheckRank(c, 0, 4));
      RETURN_IF_ERROR(ops::CheckRank(c, 1, 4));
      const Shape& src = c.input(0).shape;
      auto k = c.attrs().GetInts("kernel");
      int64_t groups = Groups(c.attrs());
      if (src[1] % groups != 0 || c.input(1).shape[1] % groups != 0) {
        return c.Error("groups " + std::to_string(groups) + " must divide IC=" + std::to_string(src[1]) +
                       " and OC=" + std::to_string(c.input(1).shape[1]));
      }
      Shape wei{c.input(1).shape[1], src[1] / groups, k[0], k[1]};
      ASSIGN_OR_RETURN(Shape dst, ConvOutShape(c, src, wei));
      if (dst != c.input(1).shape) return c.Error("diff_dst must have the forward dst shape " + ShapeToString(dst));
      std::vector<TensorType> out{{DType::kF32, wei, "OIHW"}};
      if (c.attrs().GetInt("with_bias")) out.push_back({DType::kF32, {wei[0]}, "C"});
      return out;
    };
    d.reference = [](const Node& node, const std::vector<const RefTensor*>& in, std::vector<RefTensor>& out) {
      const RefTensor& src = *in[0];
      const RefTensor& dy = *in[1];
      RefTensor& dw = out[0];
      ConvGeom g = Geom(node.attrs, src.shape, dw.shape, dy.shape);
      ForEachTap(g, [&](int64_t n, int64_t oc, int64_t oh, int64_t ow, int64_t ic, int64_t kh, int64_t kw, int64_t si) {
        dw[WeiIndex(g, oc, ic, kh, kw)] += dy[DstIndex(g, n, oc, oh, ow)] * src[si];
      });
      if (out.size() == 2) {
        for (int64_t i = 0; i < dy.size(); ++i) out[1][(i / (g.oh * g.ow)) % g.oc] += dy[i];
      }
      return OkStatus();
    };
    return d;
  }();
  return def;
}

}  // namespace kiln::ir
