// Native loops: broadcasting add/mul when both inputs broadcast, broadcast_to, reshape,
// fill, sgd_update, and the zero-volume fallback for oneDNN kinds. Plain single-threaded
// C++ written so that the compiler can vectorize the innermost loops.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "backends/cpu/kernels_internal.h"

namespace kiln::backends::cpu::internal {
namespace {

class NativeStep final : public runtime::Step {
 public:
  NativeStep(StepDesc desc, NativeFn fn) : Step(std::move(desc)), fn_(fn) {}
  Status Run(const runtime::ExecContext& ctx) const override { return fn_(desc(), ctx); }

 private:
  NativeFn fn_;
};

const float* InF32(const StepDesc& desc, const runtime::ExecContext& ctx, size_t i) {
  return static_cast<const float*>(ctx.Ptr(desc.inputs[i]));
}
float* OutF32(const StepDesc& desc, const runtime::ExecContext& ctx, size_t i) {
  return static_cast<float*>(ctx.Ptr(desc.outputs[i]));
}

// Element strides of `in` broadcast to `out` (padded with leading 1s): 0 along every axis
// where `in` has size 1, so that one index walks both tensors.
std::vector<int64_t> BroadcastStrides(const Shape& in, const Shape& out) {
  Shape padded = PadToRank(in, out.size());
  std::vector<int64_t> strides(out.size(), 0);
  int64_t stride = 1;
  for (size_t i = out.size(); i-- > 0;) {
    strides[i] = padded[i] == 1 ? 0 : stride;
    stride *= padded[i];
  }
  return strides;
}

// Calls row(dst_offset, offset0, offset1, len, inner0, inner1) for every innermost row of
// `out` (rank >= 1): the row's elements are dst_offset + i, offset0 + i * inner0 and
// offset1 + i * inner1 for i in [0, len).
template <typename F>
void ForEachRow(const Shape& out, const std::vector<int64_t>& s0, const std::vector<int64_t>& s1, F row) {
  int64_t total = NumElements(out);
  if (total == 0) return;
  size_t rank = out.size();
  int64_t len = out[rank - 1];
  std::vector<int64_t> index(rank, 0);
  for (int64_t o = 0; o < total; o += len) {
    int64_t off0 = 0, off1 = 0;
    for (size_t d = 0; d + 1 < rank; ++d) {
      off0 += index[d] * s0[d];
      off1 += index[d] * s1[d];
    }
    row(o, off0, off1, len, s0[rank - 1], s1[rank - 1]);
    for (size_t d = rank - 1; d-- > 0;) {  // odometer over all but the innermost axis
      if (++index[d] < out[d]) break;
      index[d] = 0;
    }
  }
}

Shape AtLeast1D(const Shape& s) { return s.empty() ? Shape{1} : s; }

enum class BinaryOp { kAdd, kMul, kSub, kDiv, kMax, kMin, kGe };

template <BinaryOp kOp>
inline float Apply(float a, float b) {
  switch (kOp) {
    case BinaryOp::kAdd: return a + b;
    case BinaryOp::kMul: return a * b;
    case BinaryOp::kSub: return a - b;
    case BinaryOp::kDiv: return a / b;
    case BinaryOp::kMax: return a >= b ? a : b;
    case BinaryOp::kMin: return a <= b ? a : b;
    case BinaryOp::kGe: return a >= b ? 1.f : 0.f;
  }
  return 0.f;
}

template <BinaryOp kOp>
Status BinaryKernel(const StepDesc& desc, const runtime::ExecContext& ctx) {
  Shape out = AtLeast1D(desc.outputs[0].dims);
  const float* a = InF32(desc, ctx, 0);
  const float* b = InF32(desc, ctx, 1);
  float* dst = OutF32(desc, ctx, 0);
  ForEachRow(out, BroadcastStrides(desc.inputs[0].dims, out), BroadcastStrides(desc.inputs[1].dims, out),
             [&](int64_t o, int64_t o0, int64_t o1, int64_t len, int64_t i0, int64_t i1) {
               for (int64_t i = 0; i < len; ++i) {
                 dst[o + i] = Apply<kOp>(a[o0 + i * i0], b[o1 + i * i1]);
               }
             });
  return OkStatus();
}

// broadcast_to moves 4-byte elements of either dtype, so it copies bit patterns.
Status BroadcastToKernel(const StepDesc& desc, const runtime::ExecContext& ctx) {
  Shape out = AtLeast1D(desc.outputs[0].dims);
  const auto* src = static_cast<const uint32_t*>(ctx.Ptr(desc.inputs[0]));
  auto* dst = static_cast<uint32_t*>(ctx.Ptr(desc.outputs[0]));
  std::vector<int64_t> s = BroadcastStrides(desc.inputs[0].dims, out), none(out.size(), 0);
  ForEachRow(out, s, none, [&](int64_t o, int64_t o0, int64_t, int64_t len, int64_t i0, int64_t) {
    for (int64_t i = 0; i < len; ++i) dst[o + i] = src[o0 + i * i0];
  });
  return OkStatus();
}

Status ReshapeKernel(const StepDesc& desc, const runtime::ExecContext& ctx) {
  const void* src = ctx.Ptr(desc.inputs[0]);
  void* dst = ctx.Ptr(desc.outputs[0]);
  // The memory planner may give dst the bytes of src; then there is nothing to do.
  if (src != dst) std::memmove(dst, src, static_cast<size_t>(desc.outputs[0].size_bytes()));
  return OkStatus();
}

Status FillKernel(const StepDesc& desc, const runtime::ExecContext& ctx) {
  auto value = static_cast<float>(GetFloat(desc, "value", 0.0));
  std::fill_n(OutF32(desc, ctx, 0), NumElements(desc.outputs[0].dims), value);
  return OkStatus();
}

// Elements an update step runs over: the weight's f32 slots, blocked padding included (the
// padding is zero in weight, grad and state alike, and every formula maps zeros to zero).
int64_t UpdateElements(const StepDesc& desc) { return desc.inputs[0].size_bytes() / 4; }

// MXNet 1.9 SGDKernel / SGDMomKernel, as ir/ops/sgd_update.cc:
//   g' = clip(rescale_grad * grad, clip_gradient)
//   no momentum: weight' = (1 - lr*wd) * weight - lr * g'
//   momentum:    mom' = momentum*mom - lr*wd*weight - lr*g';  weight' = weight + mom'
// Each element is read before it is written, so weight_out may alias weight (and mom_out
// mom). The clipping branch is a template parameter to keep the loop branch-free.
template <bool kClip, bool kMomentum>
void SgdLoop(int64_t n, const float* weight, const float* grad, const float* mom, float* weight_out, float* mom_out,
             float lr, float rescale, float wd, float momentum, float clip) {
  for (int64_t i = 0; i < n; ++i) {
    float w = weight[i];
    float g = rescale * grad[i];
    if (kClip) g = std::min(std::max(g, -clip), clip);
    if (kMomentum) {
      float m = momentum * mom[i] - lr * wd * w - lr * g;
      mom_out[i] = m;
      weight_out[i] = w + m;
    } else {
      weight_out[i] = (1.0f - lr * wd) * w - lr * g;
    }
  }
}

Status SgdUpdateKernel(const StepDesc& desc, const runtime::ExecContext& ctx) {
  int64_t n = UpdateElements(desc);
  float lr = *InF32(desc, ctx, 2);
  float rescale = *InF32(desc, ctx, 3);
  auto wd = static_cast<float>(GetFloat(desc, "wd", 0.0));
  auto momentum = static_cast<float>(GetFloat(desc, "momentum", 0.0));
  auto clip = static_cast<float>(GetFloat(desc, "clip_gradient", -1.0));
  const float* weight = InF32(desc, ctx, 0);
  const float* grad = InF32(desc, ctx, 1);
  float* weight_out = OutF32(desc, ctx, 0);
  bool with_mom = desc.inputs.size() == 5;
  const float* mom = with_mom ? InF32(desc, ctx, 4) : nullptr;
  float* mom_out = with_mom ? OutF32(desc, ctx, 1) : nullptr;
  if (with_mom) {
    (clip > 0 ? SgdLoop<true, true> : SgdLoop<false, true>)(n, weight, grad, mom, weight_out, mom_out, lr, rescale, wd,
                                                            momentum, clip);
  } else {
    (clip > 0 ? SgdLoop<true, false> : SgdLoop<false, false>)(n, weight, grad, mom, weight_out, mom_out, lr, rescale,
                                                              wd, momentum, clip);
  }
  return OkStatus();
}

// MXNet 1.9 AdamUpdateKernel, as ir/ops/adam_update.cc (lr arrives bias-corrected):
//   g' = clip(rescale_grad * grad + wd * weight, clip_gradient)
//   mean' = beta1*mean + (1-beta1)*g';  var' = beta2*var + (1-beta2)*g'^2
//   weight' = weight - lr * mean' / (sqrt(var') + epsilon)
// Each element is read before it is written, so every output may alias its input.
template <bool kClip>
void AdamLoop(int64_t n, const float* weight, const float* grad, const float* mean, const float* var,
              float* weight_out, float* mean_out, float* var_out, float lr, float rescale, float beta1, float beta2,
              float eps, float wd, float clip) {
  for (int64_t i = 0; i < n; ++i) {
    float w = weight[i];
    float g = rescale * grad[i] + wd * w;
    if (kClip) g = std::min(std::max(g, -clip), clip);
    float m = beta1 * mean[i] + (1.0f - beta1) * g;
    float v = beta2 * var[i] + (1.0f - beta2) * g * g;
    mean_out[i] = m;
    var_out[i] = v;
    weight_out[i] = w - lr * m / (std::sqrt(v) + eps);
  }
}

Status AdamUpdateKernel(const StepDesc& desc, const runtime::ExecContext& ctx) {
  int64_t n = UpdateElements(desc);
  auto attr = [&](const char* key, double def) { return static_cast<float>(GetFloat(desc, key, def)); };
  float clip = attr("clip_gradient", -1.0);
  (clip >= 0 ? AdamLoop<true> : AdamLoop<false>)(
      n, InF32(desc, ctx, 0), InF32(desc, ctx, 1), InF32(desc, ctx, 2), InF32(desc, ctx, 3), OutF32(desc, ctx, 0),
      OutF32(desc, ctx, 1), OutF32(desc, ctx, 2), *InF32(desc, ctx, 4), *InF32(desc, ctx, 5), attr("beta1", 0.9),
      attr("beta2", 0.999), attr("epsilon", 1e-8), attr("wd", 0.0), clip);
  return OkStatus();
}

}  // namespace

std::unique_ptr<runtime::Step> CreateNativeStep(const StepDesc& desc, NativeFn fn) {
  return std::make_unique<NativeStep>(desc, fn);
}

bool HasZeroVolume(const StepDesc& desc) {
  for (const auto* refs : {&desc.inputs, &desc.outputs}) {
    for (const TensorRef& r : *refs) {
      if (NumElements(r.dims) == 0) return true;
    }
  }
  return false;
}

Status ZeroVolumeKernel(const StepDesc& desc, const runtime::ExecContext& ctx) {
  // Every output element that exists is a sum over an empty set of products.
  float empty_value = desc.kind == "reduce_mean" ? std::numeric_limits<float>::quiet_NaN() : 0.0f;
  for (size_t i = 0; i < desc.outputs.size(); ++i) {
    std::fill_n(OutF32(desc, ctx, i), NumElements(desc.outputs[i].dims), empty_value);
  }
  // conv2d / dense with bias and an empty reduction (IC = 0 or K = 0): dst[n, c, ...] = bias[c].
  const TensorRef& dst = desc.outputs[0];
  if ((desc.kind == "conv2d" || desc.kind == "dense") && desc.inputs.size() == 3 && dst.dims.size() >= 2 &&
      NumElements(desc.inputs[2].dims) == dst.dims[1]) {
    const float* bias = InF32(desc, ctx, 2);
    float* out = OutF32(desc, ctx, 0);
    int64_t channels = dst.dims[1], inner = NumElements(dst.dims) / std::max<int64_t>(1, dst.dims[0] * channels);
    for (int64_t i = 0; i < NumElements(dst.dims); ++i) out[i] = bias[(i / inner) % channels];
  }
  return OkStatus();
}

StatusOr<NativeFn> NativeBinary(const StepDesc& desc) {
  std::optional<Shape> broadcast = BroadcastShapes(desc.inputs[0].dims, desc.inputs[1].dims);
  if (!broadcast || *broadcast != desc.outputs[0].dims) {
    return InvalidOperands(desc, "dst must have the broadcast shape of src0 and src1");
  }
  const std::string& k = desc.kind;
  if (k == "add") return NativeFn(BinaryKernel<BinaryOp::kAdd>);
  if (k == "mul") return NativeFn(BinaryKernel<BinaryOp::kMul>);
  if (k == "sub") return NativeFn(BinaryKernel<BinaryOp::kSub>);
  if (k == "div") return NativeFn(BinaryKernel<BinaryOp::kDiv>);
  if (k == "maximum") return NativeFn(BinaryKernel<BinaryOp::kMax>);
  if (k == "minimum") return NativeFn(BinaryKernel<BinaryOp::kMin>);
  if (k == "greater_equal") return NativeFn(BinaryKernel<BinaryOp::kGe>);
  return InvalidOperands(desc, "no native binary kernel for this kind");
}

StatusOr<NativeFn> NativeBroadcastTo(const StepDesc& desc) {
  const Shape& dst = desc.outputs[0].dims;
  std::optional<Shape> broadcast = BroadcastShapes(desc.inputs[0].dims, dst);
  if (desc.inputs[0].dims.size() > dst.size() || !broadcast || *broadcast != dst) {
    return InvalidOperands(desc, "src cannot be broadcast to dst");
  }
  return NativeFn(BroadcastToKernel);
}

StatusOr<NativeFn> NativeReshape(const StepDesc& desc) {
  if (NumElements(desc.inputs[0].dims) != NumElements(desc.outputs[0].dims)) {
    return InvalidOperands(desc, "src and dst must have the same number of elements");
  }
  return NativeFn(ReshapeKernel);
}

StatusOr<NativeFn> NativeFill(const StepDesc& desc) { return NativeFn(FillKernel); }

namespace {

// Every tensor operand of an update (all but the scalars at `first_scalar`, +1) must be in
// the weight's layout: the kernel walks their bytes in lockstep.
Status CheckUpdateLayouts(const StepDesc& desc, size_t first_scalar) {
  const TensorRef& w = desc.inputs[0];
  auto same = [&](const TensorRef& r) { return r.layout == w.layout && r.size_bytes() == w.size_bytes(); };
  for (size_t i = 0; i < desc.inputs.size(); ++i) {
    if (i == first_scalar || i == first_scalar + 1) {
      if (!desc.inputs[i].dense()) return InvalidOperands(desc, "lr and rescale_grad must be dense scalars");
      continue;
    }
    if (!same(desc.inputs[i])) return InvalidOperands(desc, "every tensor operand must have the weight's layout");
  }
  for (const TensorRef& r : desc.outputs) {
    if (!same(r)) return InvalidOperands(desc, "every tensor operand must have the weight's layout");
  }
  return OkStatus();
}

}  // namespace

StatusOr<NativeFn> NativeSgdUpdate(const StepDesc& desc) {
  RETURN_IF_ERROR(CheckUpdateLayouts(desc, 2));
  const Shape& weight = desc.inputs[0].dims;
  if (desc.inputs[1].dims != weight || desc.outputs[0].dims != weight) {
    return InvalidOperands(desc, "grad and weight_out must have the shape of weight");
  }
  if (NumElements(desc.inputs[2].dims) != 1 || NumElements(desc.inputs[3].dims) != 1) {
    return InvalidOperands(desc, "lr and rescale_grad must be scalars []");
  }
  if (desc.inputs.size() == 5 && (desc.inputs[4].dims != weight || desc.outputs[1].dims != weight)) {
    return InvalidOperands(desc, "mom and mom_out must have the shape of weight");
  }
  return NativeFn(SgdUpdateKernel);
}

StatusOr<NativeFn> NativeAdamUpdate(const StepDesc& desc) {
  const Shape& weight = desc.inputs[0].dims;
  for (size_t i : {1, 2, 3}) {
    if (desc.inputs[i].dims != weight) return InvalidOperands(desc, "grad, mean and var must have the shape of weight");
  }
  RETURN_IF_ERROR(CheckUpdateLayouts(desc, 4));
  for (size_t i : {1, 2, 3}) {
    if (desc.inputs[i].dims != weight) return InvalidOperands(desc, "grad, mean and var must have the shape of weight");
  }
  for (const TensorRef& out : desc.outputs) {
    if (out.dims != weight) return InvalidOperands(desc, "weight_out, mean_out and var_out must have the shape of weight");
  }
  if (NumElements(desc.inputs[4].dims) != 1 || NumElements(desc.inputs[5].dims) != 1) {
    return InvalidOperands(desc, "lr and rescale_grad must be scalars []");
  }
  return NativeFn(AdamUpdateKernel);
}

}  // namespace kiln::backends::cpu::internal
