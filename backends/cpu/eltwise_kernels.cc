// Activations (relu, sigmoid, tanh) and softmax / log_softmax, forward and backward, as
// oneDNN eltwise / softmax / logsoftmax primitives.
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

}  // namespace kiln::backends::cpu::internal
