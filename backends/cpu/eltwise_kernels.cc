// Activations (relu, sigmoid, tanh, leaky_relu; elu, selu, gelu, silu, hard_sigmoid,
// hard_swish, softplus, clip) and softmax / log_softmax, forward and backward, as oneDNN
// eltwise / softmax / logsoftmax primitives; softsign (no oneDNN 2.6 algorithm) as native
// loops: dst = src / (1 + |src|), diff_src = diff_dst / (1 + |src|)^2.
//   relu:    dst = max(src, 0)          diff_src = diff_dst * (dst > 0)
//   sigmoid: dst = 1 / (1 + exp(-src))  diff_src = diff_dst * dst * (1 - dst)
//   tanh:    dst = tanh(src)            diff_src = diff_dst * (1 - dst^2)
//   softmax_backward:     diff_src = dst * (diff_dst - sum(diff_dst * dst))
//   log_softmax_backward: diff_src = diff_dst - exp(dst) * sum(diff_dst)
// The backward activations use the *_use_dst_for_bwd algorithms: the IR's backward ops read
// the forward dst, not src. Elementwise kinds see the tensor as 1-D [num_elements]; oneDNN
// eltwise supports src == dst (and diff_dst == diff_src), which covers the in-place case.
// Source: oneDNN dev guide "Eltwise", "Softmax", "LogSoftmax".
#include "backends/cpu/kernels_internal.h"

#include <cmath>

namespace kiln::backends::cpu::internal {
namespace {

using dnnl::algorithm;
using dnnl::prop_kind;
namespace dn = dnnl;

// The eltwise algorithm for an activation kind ("relu", or "relu_backward" when use_dst).
algorithm EltwiseAlgorithm(std::string_view kind, bool use_dst) {
  // leaky_relu is oneDNN's relu with alpha = the negative slope.
  if (kind.substr(0, 4) == "relu" || kind.substr(0, 10) == "leaky_relu") {
    return use_dst ? algorithm::eltwise_relu_use_dst_for_bwd : algorithm::eltwise_relu;
  }
  if (kind.substr(0, 7) == "sigmoid") {
    return use_dst ? algorithm::eltwise_logistic_use_dst_for_bwd : algorithm::eltwise_logistic;
  }
  return use_dst ? algorithm::eltwise_tanh_use_dst_for_bwd : algorithm::eltwise_tanh;
}

Status CheckSameDims(const StepDesc& desc) {
  for (const auto* refs : {&desc.inputs, &desc.outputs}) {
    for (const TensorRef& r : *refs) {
      if (r.dims != desc.inputs[0].dims) return InvalidOperands(desc, "all operands must have the same shape");
    }
  }
  return OkStatus();
}

// The softmax axis in [0, rank). Errors: InvalidArgument for rank 0 or an axis out of range.
StatusOr<int> SoftmaxAxis(const StepDesc& desc) {
  auto rank = static_cast<int64_t>(desc.inputs[0].dims.size());
  int64_t axis = GetInt(desc, "axis", -1);
  int64_t normalized = axis < 0 ? axis + rank : axis;
  if (normalized < 0 || normalized >= rank) {
    return InvalidOperands(desc, "axis " + std::to_string(axis) + " is out of range for rank " + std::to_string(rank));
  }
  return static_cast<int>(normalized);
}

bool IsLog(const StepDesc& desc) { return desc.kind.rfind("log_", 0) == 0; }

}  // namespace

// Dense tensors are seen as 1-D [num_elements]; a blocked tensor keeps its layout (every
// operand of an eltwise step has the same one, padding included).
StatusOr<dn::memory::desc> EltwiseMd(const StepDesc& desc) {
  const std::string& layout = desc.inputs[0].layout;
  for (const auto* refs : {&desc.inputs, &desc.outputs}) {
    for (const TensorRef& r : *refs) {
      if (r.layout != layout) return InvalidOperands(desc, "all operands must have the same layout");
    }
  }
  if (layout.empty()) return PlainMd({NumElements(desc.inputs[0].dims)});
  return MdOf(desc.inputs[0]);
}

// oneDNN's alpha: leaky_relu's negative slope (runtime/step_kinds.cc default 0.01), else 0.
static float EltwiseAlpha(const StepDesc& desc) {
  if (desc.kind.rfind("leaky_relu", 0) != 0) return 0.f;
  return static_cast<float>(GetFloat(desc, "alpha", 0.01));
}

StatusOr<std::optional<DnnlPlan>> PlanEltwise(const StepDesc& desc) {
  RETURN_IF_ERROR(CheckSameDims(desc));
  ASSIGN_OR_RETURN(dn::memory::desc md, EltwiseMd(desc));
  // relu with alpha 0 is max(x, 0), leaky_relu's alpha its negative slope; alpha and beta
  // are unused by logistic and tanh.
  float alpha = EltwiseAlpha(desc);
  dn::eltwise_forward::desc d(prop_kind::forward_inference, EltwiseAlgorithm(desc.kind, false), md, alpha, 0.f);
  dn::eltwise_forward::primitive_desc pd(d, UserScratchpad(), Engine());
  DnnlPlan plan;
  plan.AddCall(pd, {{DNNL_ARG_SRC, md, In(0)}, {DNNL_ARG_DST, md, Out(0)}});
  return std::optional<DnnlPlan>(std::move(plan));
}

StatusOr<std::optional<DnnlPlan>> PlanEltwiseBackward(const StepDesc& desc) {
  RETURN_IF_ERROR(CheckSameDims(desc));
  ASSIGN_OR_RETURN(dn::memory::desc md, EltwiseMd(desc));
  algorithm alg = EltwiseAlgorithm(desc.kind, true);
  float alpha = EltwiseAlpha(desc);
  dn::eltwise_forward::primitive_desc hint(dn::eltwise_forward::desc(prop_kind::forward_training, alg, md, alpha, 0.f),
                                           Engine());
  dn::eltwise_backward::primitive_desc pd(dn::eltwise_backward::desc(alg, md, md, alpha, 0.f), UserScratchpad(),
                                          Engine(), hint);
  DnnlPlan plan;
  plan.AddCall(pd, {{DNNL_ARG_DIFF_DST, md, In(0)}, {DNNL_ARG_DST, md, In(1)}, {DNNL_ARG_DIFF_SRC, md, Out(0)}});
  return std::optional<DnnlPlan>(std::move(plan));
}

namespace {

// The activations whose backward reads src (ir/ops/activation_src.cc) as oneDNN eltwise
// calls: forward runs `forward` (src -> dst, then each further call on dst in place);
// backward runs `backward` from src (diff_dst, src -> diff_src), then multiplies diff_src by
// `backward_scale`. selu = scale * elu(alpha); hard_sigmoid = clip(linear(x), 0, 1), whose
// derivative is alpha where -beta/alpha < x <= (1-beta)/alpha: clip's backward with those
// bounds, scaled by alpha.
struct EltwiseCall {
  algorithm alg;
  float alpha = 0, beta = 0;
};
struct SrcActivation {
  std::vector<EltwiseCall> forward;
  EltwiseCall backward;
  float backward_scale = 1;
};

constexpr float kSeluAlpha = 1.6732632423543772f;
constexpr float kSeluScale = 1.0507009873554805f;

StatusOr<SrcActivation> SrcActivationCalls(const StepDesc& desc) {
  std::string_view kind = desc.kind;
  if (kind.size() > 9 && kind.substr(kind.size() - 9) == "_backward") kind.remove_suffix(9);
  auto f = [&](const char* name, double def) { return static_cast<float>(GetFloat(desc, name, def)); };
  if (kind == "elu") {
    EltwiseCall c{algorithm::eltwise_elu, f("alpha", 1.0)};
    return SrcActivation{{c}, c};
  }
  if (kind == "selu") {
    EltwiseCall c{algorithm::eltwise_elu, kSeluAlpha};
    return SrcActivation{{c, {algorithm::eltwise_linear, kSeluScale, 0.f}}, c, kSeluScale};
  }
  if (kind == "gelu") return SrcActivation{{{algorithm::eltwise_gelu_erf}}, {algorithm::eltwise_gelu_erf}};
  if (kind == "exp") return SrcActivation{{{algorithm::eltwise_exp}}, {algorithm::eltwise_exp}};
  if (kind == "log") return SrcActivation{{{algorithm::eltwise_log}}, {algorithm::eltwise_log}};
  if (kind == "sqrt") return SrcActivation{{{algorithm::eltwise_sqrt}}, {algorithm::eltwise_sqrt}};
  if (kind == "abs") return SrcActivation{{{algorithm::eltwise_abs}}, {algorithm::eltwise_abs}};
  if (kind == "neg") {
    EltwiseCall c{algorithm::eltwise_linear, -1.f, 0.f};
    return SrcActivation{{c}, c};
  }
  if (kind == "silu") {
    EltwiseCall c{algorithm::eltwise_swish, f("beta", 1.0)};
    return SrcActivation{{c}, c};
  }
  if (kind == "hard_swish") return SrcActivation{{{algorithm::eltwise_hardswish}}, {algorithm::eltwise_hardswish}};
  if (kind == "softplus") return SrcActivation{{{algorithm::eltwise_soft_relu}}, {algorithm::eltwise_soft_relu}};
  if (kind == "clip") {
    EltwiseCall c{algorithm::eltwise_clip, f("a_min", 0.0), f("a_max", 6.0)};
    return SrcActivation{{c}, c};
  }
  if (kind == "hard_sigmoid") {
    float alpha = f("alpha", 0.2), beta = f("beta", 0.5);
    if (!(alpha > 0)) return InvalidOperands(desc, "alpha must be > 0");
    return SrcActivation{{{algorithm::eltwise_linear, alpha, beta}, {algorithm::eltwise_clip, 0.f, 1.f}},
                         {algorithm::eltwise_clip, -beta / alpha, (1 - beta) / alpha},
                         alpha};
  }
  return InvalidOperands(desc, "not an activation of ir/ops/activation_src.cc");
}

void AddEltwise(DnnlPlan& plan, const dn::memory::desc& md, const EltwiseCall& c, ArgSource src, ArgSource dst) {
  dn::eltwise_forward::primitive_desc pd(
      dn::eltwise_forward::desc(prop_kind::forward_inference, c.alg, md, c.alpha, c.beta), UserScratchpad(), Engine());
  plan.AddCall(pd, {{DNNL_ARG_SRC, md, src}, {DNNL_ARG_DST, md, dst}});
}

}  // namespace

StatusOr<std::optional<DnnlPlan>> PlanSrcActivation(const StepDesc& desc) {
  RETURN_IF_ERROR(CheckSameDims(desc));
  ASSIGN_OR_RETURN(dn::memory::desc md, EltwiseMd(desc));
  ASSIGN_OR_RETURN(SrcActivation a, SrcActivationCalls(desc));
  DnnlPlan plan;
  for (size_t i = 0; i < a.forward.size(); ++i) AddEltwise(plan, md, a.forward[i], i == 0 ? In(0) : Out(0), Out(0));
  return std::optional<DnnlPlan>(std::move(plan));
}

StatusOr<std::optional<DnnlPlan>> PlanSrcActivationBackward(const StepDesc& desc) {
  RETURN_IF_ERROR(CheckSameDims(desc));
  ASSIGN_OR_RETURN(dn::memory::desc md, EltwiseMd(desc));
  ASSIGN_OR_RETURN(SrcActivation a, SrcActivationCalls(desc));
  const EltwiseCall& c = a.backward;
  dn::eltwise_forward::primitive_desc hint(
      dn::eltwise_forward::desc(prop_kind::forward_training, c.alg, md, c.alpha, c.beta), Engine());
  dn::eltwise_backward::primitive_desc pd(dn::eltwise_backward::desc(c.alg, md, md, c.alpha, c.beta),
                                          UserScratchpad(), Engine(), hint);
  DnnlPlan plan;
  plan.AddCall(pd, {{DNNL_ARG_DIFF_DST, md, In(0)}, {DNNL_ARG_SRC, md, In(1)}, {DNNL_ARG_DIFF_SRC, md, Out(0)}});
  if (a.backward_scale != 1) AddEltwise(plan, md, {algorithm::eltwise_linear, a.backward_scale, 0.f}, Out(0), Out(0));
  return std::optional<DnnlPlan>(std::move(plan));
}

StatusOr<std::optional<DnnlPlan>> PlanSoftmax(const StepDesc& desc) {
  RETURN_IF_ERROR(CheckSameDims(desc));
  ASSIGN_OR_RETURN(int axis, SoftmaxAxis(desc));
  dn::memory::desc md = PlainMd(desc.inputs[0]);
  DnnlPlan plan;
  std::vector<DnnlArg> args{{DNNL_ARG_SRC, md, In(0)}, {DNNL_ARG_DST, md, Out(0)}};
  if (IsLog(desc)) {
    plan.AddCall(dn::logsoftmax_forward::primitive_desc(
                     dn::logsoftmax_forward::desc(prop_kind::forward_inference, md, axis), UserScratchpad(), Engine()),
                 std::move(args));
  } else {
    plan.AddCall(dn::softmax_forward::primitive_desc(dn::softmax_forward::desc(prop_kind::forward_inference, md, axis),
                                                     UserScratchpad(), Engine()),
                 std::move(args));
  }
  return std::optional<DnnlPlan>(std::move(plan));
}

StatusOr<std::optional<DnnlPlan>> PlanSoftmaxBackward(const StepDesc& desc) {
  RETURN_IF_ERROR(CheckSameDims(desc));
  ASSIGN_OR_RETURN(int axis, SoftmaxAxis(desc));
  dn::memory::desc md = PlainMd(desc.inputs[0]);
  DnnlPlan plan;
  std::vector<DnnlArg> args{{DNNL_ARG_DIFF_DST, md, In(0)}, {DNNL_ARG_DST, md, In(1)}, {DNNL_ARG_DIFF_SRC, md, Out(0)}};
  if (IsLog(desc)) {
    dn::logsoftmax_forward::primitive_desc hint(dn::logsoftmax_forward::desc(prop_kind::forward_training, md, axis),
                                                Engine());
    plan.AddCall(dn::logsoftmax_backward::primitive_desc(dn::logsoftmax_backward::desc(md, md, axis),
                                                         UserScratchpad(), Engine(), hint),
                 std::move(args));
  } else {
    dn::softmax_forward::primitive_desc hint(dn::softmax_forward::desc(prop_kind::forward_training, md, axis),
                                             Engine());
    plan.AddCall(dn::softmax_backward::primitive_desc(dn::softmax_backward::desc(md, md, axis), UserScratchpad(),
                                                      Engine(), hint),
                 std::move(args));
  }
  return std::optional<DnnlPlan>(std::move(plan));
}

namespace {

Status SoftsignKernel(const StepDesc& desc, const runtime::ExecContext& ctx) {
  const auto* src = static_cast<const float*>(ctx.Ptr(desc.inputs[0]));
  auto* dst = static_cast<float*>(ctx.Ptr(desc.outputs[0]));
  int64_t n = NumElements(desc.inputs[0].dims);
#pragma omp parallel for schedule(static) if (n >= 65536)
  for (int64_t i = 0; i < n; ++i) dst[i] = src[i] / (1.f + std::fabs(src[i]));
  return OkStatus();
}

Status SoftsignBackwardKernel(const StepDesc& desc, const runtime::ExecContext& ctx) {
  const auto* diff_dst = static_cast<const float*>(ctx.Ptr(desc.inputs[0]));
  const auto* src = static_cast<const float*>(ctx.Ptr(desc.inputs[1]));
  auto* diff_src = static_cast<float*>(ctx.Ptr(desc.outputs[0]));
  int64_t n = NumElements(desc.inputs[1].dims);
#pragma omp parallel for schedule(static) if (n >= 65536)
  for (int64_t i = 0; i < n; ++i) {
    float d = 1.f + std::fabs(src[i]);
    diff_src[i] = diff_dst[i] / (d * d);
  }
  return OkStatus();
}

}  // namespace

StatusOr<NativeFn> NativeSoftsign(const StepDesc& desc) {
  RETURN_IF_ERROR(CheckSameDims(desc));
  return NativeFn(SoftsignKernel);
}

StatusOr<NativeFn> NativeSoftsignBackward(const StepDesc& desc) {
  RETURN_IF_ERROR(CheckSameDims(desc));
  return NativeFn(SoftsignBackwardKernel);
}

}  // namespace kiln::backends::cpu::internal
