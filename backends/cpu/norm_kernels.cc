// Batch normalization (oneDNN batch_normalization primitives), the running-statistics
// update and dropout (native loops), as ir/ops/batch_norm.cc and ir/ops/dropout.cc:
//   batch_norm:          forward_inference with use_global_stats | use_scale | use_shift
//                        (+ fuse_norm_relu for activation="relu");
//   batch_norm_training: forward_training with use_scale | use_shift; mean and variance
//                        (biased, as MXNet) are outputs;
//   batch_norm_backward: prop_kind::backward (diff_src, diff_scale, diff_shift; oneDNN 2.6
//                        binds shift too), with
//                        use_global_stats when the statistics were constants;
//   moving_average:      average_out = momentum * average + (1 - momentum) * value;
//   dropout:             dst = keep(seed, salt, i) ? src / (1 - rate) : 0 (base/counter_rng.h);
//                        with axes, i is the element's index in the shared mask.
// The data operands (src, dst, diff_dst, diff_src) may be blocked (the layout of the
// convolution before: LayoutRule::kFollowSourceData); the per-channel vectors are dense [C].
// Source: oneDNN 2.6 dev guide "Batch Normalization".
#include <cmath>

#include "backends/cpu/kernels_internal.h"
#include "base/counter_rng.h"

namespace kiln::backends::cpu::internal {
namespace {

namespace dn = dnnl;
using dn::normalization_flags;
using dn::prop_kind;

// Checks src (input `data`) has rank >= 2, the operands of its rank its dims and layout, and
// the other operands [C] dense.
Status CheckNormOperands(const StepDesc& desc, size_t data) {
  const TensorRef& src = desc.inputs[data];
  if (src.dims.size() < 2) return InvalidOperands(desc, "src must have rank >= 2 with channels on axis 1");
  std::vector<int64_t> channel{src.dims[1]};
  for (const auto* refs : {&desc.inputs, &desc.outputs}) {
    for (const TensorRef& r : *refs) {
      if (r.dims.size() == src.dims.size()) {
        if (r.dims != src.dims || r.layout != src.layout) {
          return InvalidOperands(desc, "data operands must have src's dims and layout");
        }
      } else if (r.dims != channel || !r.dense()) {
        return InvalidOperands(desc, "per-channel operands must be dense [" + std::to_string(src.dims[1]) + "]");
      }
    }
  }
  return OkStatus();
}

float Epsilon(const StepDesc& desc) { return static_cast<float>(GetFloat(desc, "epsilon", 1e-5)); }

const float* InPtr(const StepDesc& desc, const runtime::ExecContext& ctx, size_t i) {
  return static_cast<const float*>(ctx.Ptr(desc.inputs[i]));
}
float* OutPtr(const StepDesc& desc, const runtime::ExecContext& ctx, size_t i) {
  return static_cast<float*>(ctx.Ptr(desc.outputs[i]));
}

Status MovingAverageKernel(const StepDesc& desc, const runtime::ExecContext& ctx) {
  auto momentum = static_cast<float>(GetFloat(desc, "momentum", 0.9));
  const float* avg = InPtr(desc, ctx, 0);
  const float* value = InPtr(desc, ctx, 1);
  float* out = OutPtr(desc, ctx, 0);
  int64_t n = NumElements(desc.inputs[0].dims);
  for (int64_t i = 0; i < n; ++i) out[i] = momentum * avg[i] + (1 - momentum) * value[i];
  return OkStatus();
}

Status DropoutKernel(const StepDesc& desc, const runtime::ExecContext& ctx) {
  double rate = GetFloat(desc, "rate", 0.5);
  uint32_t threshold = DropoutThreshold(rate);
  int32_t seed = *static_cast<const int32_t*>(ctx.Ptr(desc.inputs[1]));
  uint64_t key = DropoutKey(seed, GetInt(desc, "salt", 0));
  auto scale = static_cast<float>(1.0 / (1.0 - rate));
  const float* src = InPtr(desc, ctx, 0);
  float* dst = OutPtr(desc, ctx, 0);
  int64_t n = NumElements(desc.inputs[0].dims);
  auto axes = desc.ints.find("axes");
  if (axes == desc.ints.end() || axes->second.empty()) {
#pragma omp parallel for schedule(static) if (n >= 65536)
    for (int64_t i = 0; i < n; ++i) {
      dst[i] = DropoutKeep(key, static_cast<uint64_t>(i), threshold) ? src[i] * scale : 0.f;
    }
    return OkStatus();
  }
  DropoutMaskIndex mask(desc.inputs[0].dims, axes->second);
#pragma omp parallel for schedule(static) if (n >= 65536)
  for (int64_t i = 0; i < n; ++i) dst[i] = DropoutKeep(key, mask(i), threshold) ? src[i] * scale : 0.f;
  return OkStatus();
}

}  // namespace

StatusOr<std::optional<DnnlPlan>> PlanBatchNorm(const StepDesc& desc) {
  RETURN_IF_ERROR(CheckNormOperands(desc, 0));
  dn::memory::desc data = MdOf(desc.inputs[0]);
  dn::memory::desc channel = PlainMd({desc.inputs[0].dims[1]});
  normalization_flags flags =
      normalization_flags::use_global_stats | normalization_flags::use_scale | normalization_flags::use_shift;
  auto act = desc.strings.find("activation");
  if (act != desc.strings.end() && act->second == "relu") flags = flags | normalization_flags::fuse_norm_relu;
  dn::batch_normalization_forward::primitive_desc pd(
      dn::batch_normalization_forward::desc(prop_kind::forward_inference, data, Epsilon(desc), flags),
      UserScratchpad(), Engine());
  DnnlPlan plan;
  plan.AddCall(pd, {{DNNL_ARG_SRC, data, In(0)},
                    {DNNL_ARG_SCALE, channel, In(1)},
                    {DNNL_ARG_SHIFT, channel, In(2)},
                    {DNNL_ARG_MEAN, channel, In(3)},
                    {DNNL_ARG_VARIANCE, channel, In(4)},
                    {DNNL_ARG_DST, data, Out(0)}});
  return std::optional<DnnlPlan>(std::move(plan));
}

StatusOr<std::optional<DnnlPlan>> PlanBatchNormTraining(const StepDesc& desc) {
  RETURN_IF_ERROR(CheckNormOperands(desc, 0));
  dn::memory::desc data = MdOf(desc.inputs[0]);
  dn::memory::desc channel = PlainMd({desc.inputs[0].dims[1]});
  dn::batch_normalization_forward::primitive_desc pd(
      dn::batch_normalization_forward::desc(prop_kind::forward_training, data, Epsilon(desc),
                                            normalization_flags::use_scale | normalization_flags::use_shift),
      UserScratchpad(), Engine());
  DnnlPlan plan;
  plan.AddCall(pd, {{DNNL_ARG_SRC, data, In(0)},
                    {DNNL_ARG_SCALE, channel, In(1)},
                    {DNNL_ARG_SHIFT, channel, In(2)},
                    {DNNL_ARG_DST, data, Out(0)},
                    {DNNL_ARG_MEAN, channel, Out(1)},
                    {DNNL_ARG_VARIANCE, channel, Out(2)}});
  return std::optional<DnnlPlan>(std::move(plan));
}

StatusOr<std::optional<DnnlPlan>> PlanBatchNormBackward(const StepDesc& desc) {
  RETURN_IF_ERROR(CheckNormOperands(desc, 1));
  dn::memory::desc data = MdOf(desc.inputs[1]);
  dn::memory::desc channel = PlainMd({desc.inputs[1].dims[1]});
  normalization_flags flags = normalization_flags::use_scale | normalization_flags::use_shift;
  if (GetInt(desc, "use_global_stats", 0) != 0) flags = flags | normalization_flags::use_global_stats;
  dn::batch_normalization_forward::primitive_desc hint(
      dn::batch_normalization_forward::desc(prop_kind::forward_training, data, Epsilon(desc), flags), Engine());
  dn::batch_normalization_backward::primitive_desc pd(
      dn::batch_normalization_backward::desc(prop_kind::backward, data, data, Epsilon(desc), flags), UserScratchpad(),
      Engine(), hint);
  DnnlPlan plan;
  plan.AddCall(pd, {{DNNL_ARG_DIFF_DST, data, In(0)},
                    {DNNL_ARG_SRC, data, In(1)},
                    {DNNL_ARG_SCALE, channel, In(2)},
                    {DNNL_ARG_SHIFT, channel, In(3)},
                    {DNNL_ARG_MEAN, channel, In(4)},
                    {DNNL_ARG_VARIANCE, channel, In(5)},
                    {DNNL_ARG_DIFF_SRC, data, Out(0)},
                    {DNNL_ARG_DIFF_SCALE, channel, Out(1)},
                    {DNNL_ARG_DIFF_SHIFT, channel, Out(2)}});
  return std::optional<DnnlPlan>(std::move(plan));
}

StatusOr<NativeFn> NativeMovingAverage(const StepDesc& desc) {
  if (desc.inputs[1].dims != desc.inputs[0].dims || desc.outputs[0].dims != desc.inputs[0].dims) {
    return InvalidOperands(desc, "average, value and average_out must have the same shape");
  }
  return NativeFn(MovingAverageKernel);
}

StatusOr<NativeFn> NativeDropout(const StepDesc& desc) {
  if (desc.outputs[0].dims != desc.inputs[0].dims) return InvalidOperands(desc, "dst must have src's shape");
  if (NumElements(desc.inputs[1].dims) != 1) return InvalidOperands(desc, "seed must be a scalar s32 []");
  double rate = GetFloat(desc, "rate", 0.5);
  if (!(rate >= 0 && rate < 1)) return InvalidOperands(desc, "rate must be in [0, 1)");
  auto axes = desc.ints.find("axes");
  if (axes != desc.ints.end()) {
    std::vector<bool> seen(desc.inputs[0].dims.size(), false);
    for (int64_t a : axes->second) {
      if (a < 0 || a >= static_cast<int64_t>(seen.size()) || seen[static_cast<size_t>(a)]) {
        return InvalidOperands(desc, "axes must be distinct dims of src");
      }
      seen[static_cast<size_t>(a)] = true;
    }
  }
  return NativeFn(DropoutKernel);
}

}  // namespace kiln::backends::cpu::internal
