// conv2d (with groups: grouped and depthwise) and dense (inner product), forward and
// backward, as oneDNN primitives on NCHW/OIHW (or the layouts the lowering chose) and NC/OI.
//   conv:  dst[n,oc,oh,ow] = bias[oc] + sum src[n,ic,oh*SH-PBH+kh*DH, ow*SW-PBW+kw*DW] * weights[oc,ic,kh,kw]
//          OH = (IH + PBH + PEH - DH*(KH-1) - 1) / SH + 1
//   dense: dst[n,m] = bias[m] + sum_k src[n,k] * weights[m,k]
// Backward kinds need a forward primitive descriptor as a hint (oneDNN picks matching
// implementations with it); the hint is never executed.
// Source: oneDNN dev guide "Convolution", "Inner Product".
#include "backends/cpu/kernels_internal.h"

namespace kiln::backends::cpu::internal {
namespace {

using dnnl::algorithm;
using dnnl::prop_kind;
namespace dn = dnnl;

struct ConvAttrs {
  dnnl::memory::dims strides, dilates, padding_l, padding_r;
  std::vector<int64_t> dilation;  // one-based, as in the IR
  int64_t groups = 1;
};

StatusOr<ConvAttrs> ReadConvAttrs(const StepDesc& desc) {
  ConvAttrs a;
  ASSIGN_OR_RETURN(a.strides, GetInts(desc, "stride", 2, {1, 1}));
  ASSIGN_OR_RETURN(a.padding_l, GetInts(desc, "padding_begin", 2, {0, 0}));
  ASSIGN_OR_RETURN(a.padding_r, GetInts(desc, "padding_end", 2, {0, 0}));
  ASSIGN_OR_RETURN(a.dilation, GetInts(desc, "dilation", 2, {1, 1}));
  for (int i = 0; i < 2; ++i) {
    if (a.strides[i] < 1 || a.dilation[i] < 1 || a.padding_l[i] < 0 || a.padding_r[i] < 0) {
      return InvalidOperands(desc, "stride=" + ShapeToString(a.strides) + " and dilation=" +
                                       ShapeToString(a.dilation) + " must be >= 1, padding_begin=" +
                                       ShapeToString(a.padding_l) + " and padding_end=" +
                                       ShapeToString(a.padding_r) + " >= 0");
    }
    // The IR's dilation 1 means a dense kernel; oneDNN's dilates are zero-based.
    a.dilates.push_back(a.dilation[i] - 1);
  }
  a.groups = GetInt(desc, "groups", 1);
  if (a.groups < 1) return InvalidOperands(desc, "groups must be >= 1, got " + std::to_string(a.groups));
  return a;
}

// Checks src NCHW, weights OIHW, dst NCHW and the optional bias [OC] agree with the
// convolution formula, so that a mismatch is reported with shapes rather than as
// oneDNN's shapeless "could not create a descriptor".
Status CheckConvShapes(const StepDesc& desc, const ConvAttrs& a, const TensorRef& src, const TensorRef& wei,
                       const TensorRef& dst, const TensorRef* bias) {
  RETURN_IF_ERROR(CheckRank(desc, src, "src", 4));
  RETURN_IF_ERROR(CheckRank(desc, wei, "weights", 4));
  RETURN_IF_ERROR(CheckRank(desc, dst, "dst", 4));
  Shape want{src.dims[0], wei.dims[0], 0, 0};
  for (size_t i = 0; i < 2; ++i) {
    int64_t span = a.dilation[i] * (wei.dims[i + 2] - 1) + 1;
    int64_t padded = src.dims[i + 2] + a.padding_l[i] + a.padding_r[i];
    want[i + 2] = padded < span ? -1 : (padded - span) / a.strides[i] + 1;
  }
  if (src.dims[1] != wei.dims[1] * a.groups || wei.dims[0] % a.groups != 0 || dst.dims != want) {
    return InvalidOperands(desc, "src, weights and dst disagree: expected IC=" + std::to_string(wei.dims[1]) +
                                     (a.groups > 1 ? " x groups " + std::to_string(a.groups) : std::string()) +
                                     ", OC a multiple of the groups, and dst " + ShapeToString(want));
  }
  if (a.groups > 1 && !wei.dense()) {
    // A blocked grouped layout names the same groups ("g<G>:<tag>", layout_kernels.cc).
    int64_t g = 0;
    std::string tag;
    if (!ParseGroupedLayout(wei.layout, &g, &tag) || g != a.groups) {
      return InvalidOperands(desc, "grouped weights must be dense (goihw) or in a \"g" + std::to_string(a.groups) +
                                       ":<tag>\" layout");
    }
  }
  if (bias != nullptr && bias->dims != Shape{wei.dims[0]}) {
    return InvalidOperands(desc, "bias must have shape [OC]=[" + std::to_string(wei.dims[0]) + "]");
  }
  return OkStatus();
}

dn::convolution_forward::desc ConvForwardDesc(const ConvAttrs& a, const dn::memory::desc& src,
                                              const dn::memory::desc& wei, const dn::memory::desc* bias,
                                              const dn::memory::desc& dst) {
  if (bias != nullptr) {
    return dn::convolution_forward::desc(prop_kind::forward_training, algorithm::convolution_direct, src, wei, *bias,
                                         dst, a.strides, a.dilates, a.padding_l, a.padding_r);
  }
  return dn::convolution_forward::desc(prop_kind::forward_training, algorithm::convolution_direct, src, wei, dst,
                                       a.strides, a.dilates, a.padding_l, a.padding_r);
}

Status CheckDenseShapes(const StepDesc& desc, const TensorRef& src, const TensorRef& wei, const TensorRef& dst,
                        const TensorRef* bias) {
  RETURN_IF_ERROR(CheckRank(desc, src, "src", 2));
  RETURN_IF_ERROR(CheckRank(desc, wei, "weights", 2));
  RETURN_IF_ERROR(CheckRank(desc, dst, "dst", 2));
  if (src.dims[1] != wei.dims[1] || dst.dims != Shape{src.dims[0], wei.dims[0]}) {
    return InvalidOperands(desc, "src NC [N,K], weights OI [M,K] and dst NC [N,M] disagree");
  }
  if (bias != nullptr && bias->dims != Shape{wei.dims[0]}) {
    return InvalidOperands(desc, "bias must have shape [M]=[" + std::to_string(wei.dims[0]) + "]");
  }
  return OkStatus();
}

dn::inner_product_forward::desc DenseForwardDesc(const dn::memory::desc& src, const dn::memory::desc& wei,
                                                 const dn::memory::desc* bias, const dn::memory::desc& dst) {
  if (bias != nullptr) return dn::inner_product_forward::desc(prop_kind::forward_training, src, wei, *bias, dst);
  return dn::inner_product_forward::desc(prop_kind::forward_training, src, wei, dst);
}

// UserScratchpad() plus, for a fused activation (strings activation), the eltwise post-op
// dst = act(conv(src)). Errors: InvalidArgument for an unknown activation.
StatusOr<dn::primitive_attr> ForwardAttr(const StepDesc& desc, bool with_sum = false) {
  dn::primitive_attr attr = UserScratchpad();
  dn::post_ops ops;
  // dst = act(conv + sum): the sum post-op adds what dst holds before the primitive runs.
  if (with_sum) ops.append_sum(1.f);
  auto it = desc.strings.find("activation");
  if (it == desc.strings.end() || it->second.empty()) {
    if (with_sum) attr.set_post_ops(ops);
    return attr;
  }
  algorithm alg;
  float alpha = 0.f, beta = 0.f;
  if (it->second == "clip") {
    // oneDNN eltwise_clip: min(max(x, alpha), beta) (relu6: 0, 6).
    alg = algorithm::eltwise_clip;
    auto lo = desc.floats.find("activation_min"), hi = desc.floats.find("activation_max");
    alpha = lo == desc.floats.end() ? 0.f : static_cast<float>(lo->second);
    beta = hi == desc.floats.end() ? 6.f : static_cast<float>(hi->second);
  } else if (it->second == "relu") {
    alg = algorithm::eltwise_relu;
  } else if (it->second == "sigmoid") {
    alg = algorithm::eltwise_logistic;
  } else if (it->second == "tanh") {
    alg = algorithm::eltwise_tanh;
  } else {
    return InvalidOperands(desc, "activation must be relu, sigmoid, tanh or clip, got \"" + it->second + "\"");
  }
  ops.append_eltwise(1.f, alg, alpha, beta);
  attr.set_post_ops(ops);
  return attr;
}

}  // namespace

StatusOr<std::optional<DnnlPlan>> PlanConv2d(const StepDesc& desc) {
  ASSIGN_OR_RETURN(ConvAttrs a, ReadConvAttrs(desc));
  bool with_bias = desc.inputs.size() >= 3;
  bool with_sum = desc.inputs.size() == 4;
  const TensorRef& src = desc.inputs[0];
  const TensorRef& wei = desc.inputs[1];
  const TensorRef& dst = desc.outputs[0];
  RETURN_IF_ERROR(CheckConvShapes(desc, a, src, wei, dst, with_bias ? &desc.inputs[2] : nullptr));
  dn::memory::desc src_md = MdOf(src), wei_md = ConvWeightsMd(wei, a.groups), dst_md = MdOf(dst);
  dn::memory::desc bias_md = with_bias ? MdOf(desc.inputs[2]) : dn::memory::desc();
  auto d = ConvForwardDesc(a, src_md, wei_md, with_bias ? &bias_md : nullptr, dst_md);
  ASSIGN_OR_RETURN(dn::primitive_attr attr, ForwardAttr(desc, with_sum));
  dn::convolution_forward::primitive_desc pd(d, attr, Engine());
  std::vector<DnnlArg> args{{DNNL_ARG_SRC, src_md, In(0)}, {DNNL_ARG_WEIGHTS, wei_md, In(1)}, {DNNL_ARG_DST, dst_md, Out(0)}};
  if (with_bias) args.push_back({DNNL_ARG_BIAS, bias_md, In(2)});
  DnnlPlan plan;
  if (with_sum) {
    const TensorRef& sum = desc.inputs[3];
    if (sum.dims != dst.dims || sum.layout != dst.layout) {
      return InvalidOperands(desc, "the sum operand must have dst's dims and layout");
    }
    // The sum post-op reads dst: copy the sum operand there first unless it already is dst.
    if (sum.kind != dst.kind || sum.index != dst.index || sum.offset != dst.offset) {
      dn::reorder::primitive_desc copy(Engine(), MdOf(sum), Engine(), dst_md, UserScratchpad());
      plan.AddCall(copy, {{DNNL_ARG_FROM, MdOf(sum), In(3)}, {DNNL_ARG_TO, dst_md, Out(0)}});
    }
  }
  plan.AddCall(pd, std::move(args));
  return std::optional<DnnlPlan>(std::move(plan));
}

StatusOr<std::optional<DnnlPlan>> PlanConv2dBackwardData(const StepDesc& desc) {
  ASSIGN_OR_RETURN(ConvAttrs a, ReadConvAttrs(desc));
  const TensorRef& diff_dst = desc.inputs[0];
  const TensorRef& wei = desc.inputs[1];
  const TensorRef& diff_src = desc.outputs[0];
  RETURN_IF_ERROR(CheckConvShapes(desc, a, diff_src, wei, diff_dst, nullptr));
  dn::memory::desc dst_md = MdOf(diff_dst), wei_md = ConvWeightsMd(wei, a.groups), src_md = MdOf(diff_src);
  dn::convolution_forward::primitive_desc hint(ConvForwardDesc(a, src_md, wei_md, nullptr, dst_md), Engine());
  dn::convolution_backward_data::desc d(algorithm::convolution_direct, src_md, wei_md, dst_md, a.strides, a.dilates,
                                        a.padding_l, a.padding_r);
  dn::convolution_backward_data::primitive_desc pd(d, UserScratchpad(), Engine(), hint);
  DnnlPlan plan;
  plan.AddCall(pd, {{DNNL_ARG_DIFF_DST, dst_md, In(0)}, {DNNL_ARG_WEIGHTS, wei_md, In(1)},
                    {DNNL_ARG_DIFF_SRC, src_md, Out(0)}});
  return std::optional<DnnlPlan>(std::move(plan));
}

StatusOr<std::optional<DnnlPlan>> PlanConv2dBackwardWeights(const StepDesc& desc) {
  ASSIGN_OR_RETURN(ConvAttrs a, ReadConvAttrs(desc));
  bool with_bias = desc.outputs.size() == 2;
  const TensorRef& src = desc.inputs[0];
  const TensorRef& diff_dst = desc.inputs[1];
  const TensorRef& diff_wei = desc.outputs[0];
  RETURN_IF_ERROR(CheckConvShapes(desc, a, src, diff_wei, diff_dst, with_bias ? &desc.outputs[1] : nullptr));
  dn::memory::desc src_md = MdOf(src), dst_md = MdOf(diff_dst), wei_md = ConvWeightsMd(diff_wei, a.groups);
  dn::memory::desc bias_md = with_bias ? MdOf(desc.outputs[1]) : dn::memory::desc();
  const dn::memory::desc* bias = with_bias ? &bias_md : nullptr;
  dn::convolution_forward::primitive_desc hint(ConvForwardDesc(a, src_md, wei_md, bias, dst_md), Engine());
  auto d = with_bias ? dn::convolution_backward_weights::desc(algorithm::convolution_direct, src_md, wei_md, bias_md,
                                                              dst_md, a.strides, a.dilates, a.padding_l, a.padding_r)
                     : dn::convolution_backward_weights::desc(algorithm::convolution_direct, src_md, wei_md, dst_md,
                                                              a.strides, a.dilates, a.padding_l, a.padding_r);
  dn::convolution_backward_weights::primitive_desc pd(d, UserScratchpad(), Engine(), hint);
  std::vector<DnnlArg> args{{DNNL_ARG_SRC, src_md, In(0)}, {DNNL_ARG_DIFF_DST, dst_md, In(1)},
                            {DNNL_ARG_DIFF_WEIGHTS, wei_md, Out(0)}};
  if (with_bias) args.push_back({DNNL_ARG_DIFF_BIAS, bias_md, Out(1)});
  DnnlPlan plan;
  plan.AddCall(pd, std::move(args));
  return std::optional<DnnlPlan>(std::move(plan));
}

StatusOr<std::optional<DnnlPlan>> PlanDense(const StepDesc& desc) {
  bool with_bias = desc.inputs.size() == 3;
  const TensorRef& src = desc.inputs[0];
  const TensorRef& wei = desc.inputs[1];
  const TensorRef& dst = desc.outputs[0];
  RETURN_IF_ERROR(CheckDenseShapes(desc, src, wei, dst, with_bias ? &desc.inputs[2] : nullptr));
  dn::memory::desc src_md = MdOf(src), wei_md = MdOf(wei), dst_md = MdOf(dst);
  dn::memory::desc bias_md = with_bias ? MdOf(desc.inputs[2]) : dn::memory::desc();
  ASSIGN_OR_RETURN(dn::primitive_attr attr, ForwardAttr(desc));
  dn::inner_product_forward::primitive_desc pd(
      DenseForwardDesc(src_md, wei_md, with_bias ? &bias_md : nullptr, dst_md), attr, Engine());
  std::vector<DnnlArg> args{{DNNL_ARG_SRC, src_md, In(0)}, {DNNL_ARG_WEIGHTS, wei_md, In(1)}, {DNNL_ARG_DST, dst_md, Out(0)}};
  if (with_bias) args.push_back({DNNL_ARG_BIAS, bias_md, In(2)});
  DnnlPlan plan;
  plan.AddCall(pd, std::move(args));
  return std::optional<DnnlPlan>(std::move(plan));
}

StatusOr<std::optional<DnnlPlan>> PlanDenseBackwardData(const StepDesc& desc) {
  const TensorRef& diff_dst = desc.inputs[0];
  const TensorRef& wei = desc.inputs[1];
  const TensorRef& diff_src = desc.outputs[0];
  RETURN_IF_ERROR(CheckDenseShapes(desc, diff_src, wei, diff_dst, nullptr));
  dn::memory::desc dst_md = MdOf(diff_dst), wei_md = MdOf(wei), src_md = MdOf(diff_src);
  dn::inner_product_forward::primitive_desc hint(DenseForwardDesc(src_md, wei_md, nullptr, dst_md), Engine());
  dn::inner_product_backward_data::primitive_desc pd(dn::inner_product_backward_data::desc(src_md, wei_md, dst_md),
                                                     UserScratchpad(), Engine(), hint);
  DnnlPlan plan;
  plan.AddCall(pd, {{DNNL_ARG_DIFF_DST, dst_md, In(0)}, {DNNL_ARG_WEIGHTS, wei_md, In(1)},
                    {DNNL_ARG_DIFF_SRC, src_md, Out(0)}});
  return std::optional<DnnlPlan>(std::move(plan));
}

StatusOr<std::optional<DnnlPlan>> PlanDenseBackwardWeights(const StepDesc& desc) {
  bool with_bias = desc.outputs.size() == 2;
  const TensorRef& src = desc.inputs[0];
  const TensorRef& diff_dst = desc.inputs[1];
  const TensorRef& diff_wei = desc.outputs[0];
  RETURN_IF_ERROR(CheckDenseShapes(desc, src, diff_wei, diff_dst, with_bias ? &desc.outputs[1] : nullptr));
  dn::memory::desc src_md = MdOf(src), dst_md = MdOf(diff_dst), wei_md = MdOf(diff_wei);
  dn::memory::desc bias_md = with_bias ? MdOf(desc.outputs[1]) : dn::memory::desc();
  dn::inner_product_forward::primitive_desc hint(
      DenseForwardDesc(src_md, wei_md, with_bias ? &bias_md : nullptr, dst_md), Engine());
  auto d = with_bias ? dn::inner_product_backward_weights::desc(src_md, wei_md, bias_md, dst_md)
                     : dn::inner_product_backward_weights::desc(src_md, wei_md, dst_md);
  dn::inner_product_backward_weights::primitive_desc pd(d, UserScratchpad(), Engine(), hint);
  std::vector<DnnlArg> args{{DNNL_ARG_SRC, src_md, In(0)}, {DNNL_ARG_DIFF_DST, dst_md, In(1)},
                            {DNNL_ARG_DIFF_WEIGHTS, wei_md, Out(0)}};
  if (with_bias) args.push_back({DNNL_ARG_DIFF_BIAS, bias_md, Out(1)});
  DnnlPlan plan;
  plan.AddCall(pd, std::move(args));
  return std::optional<DnnlPlan>(std::move(plan));
}

}  // namespace kiln::backends::cpu::internal
