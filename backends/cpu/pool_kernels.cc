// pool2d and pool2d_backward as oneDNN pooling primitives on plain NCHW.
//   OH = (IH + PBH + PEH - KH) / SH + 1   (floor; the same for W)
// Max pooling reads only in-bounds elements; average pooling divides by KH*KW
// (count_include_pad=1, pooling_avg_include_padding) or by the in-bounds count
// (pooling_avg_exclude_padding).
// Max pooling's backward needs the forward workspace (which element of each window won).
// When the lowering pairs a forward and a backward step (ints with_workspace {1}), the
// forward writes it to a second output that the backward reads as a third input (an arena
// buffer with layout "workspace"). Otherwise the backward step recomputes it by running a
// forward_training primitive on src into its arena scratch, then runs pooling_backward.
// Source: oneDNN dev guide "Pooling".
#include <algorithm>
#include <cstring>
#include <vector>

#include "backends/cpu/kernels_internal.h"

namespace kiln::backends::cpu::internal {
namespace {

using dnnl::algorithm;
using dnnl::prop_kind;
namespace dn = dnnl;

struct PoolAttrs {
  algorithm alg;
  dn::memory::dims kernel, strides, padding_l, padding_r;
};

StatusOr<PoolAttrs> ReadPoolAttrs(const StepDesc& desc) {
  PoolAttrs a{algorithm::pooling_max, {}, {}, {}, {}};
  auto it = desc.strings.find("kind");
  std::string kind = it == desc.strings.end() ? "" : it->second;
  if (kind == "avg") {
    a.alg = GetInt(desc, "count_include_pad", 1) != 0 ? algorithm::pooling_avg_include_padding
                                                      : algorithm::pooling_avg_exclude_padding;
  } else if (kind != "max") {
    return InvalidOperands(desc, "attribute kind must be \"max\" or \"avg\", got \"" + kind + "\"");
  }
  if (desc.ints.count("kernel") == 0) return InvalidOperands(desc, "missing attribute kernel");
  ASSIGN_OR_RETURN(a.kernel, GetInts(desc, "kernel", 2, {}));
  ASSIGN_OR_RETURN(a.strides, GetInts(desc, "stride", 2, {1, 1}));
  ASSIGN_OR_RETURN(a.padding_l, GetInts(desc, "padding_begin", 2, {0, 0}));
  ASSIGN_OR_RETURN(a.padding_r, GetInts(desc, "padding_end", 2, {0, 0}));
  for (size_t i = 0; i < 2; ++i) {
    // Padding smaller than the kernel keeps every window over at least one in-bounds element.
    if (a.kernel[i] < 1 || a.strides[i] < 1 || a.padding_l[i] < 0 || a.padding_r[i] < 0 ||
        a.padding_l[i] >= a.kernel[i] || a.padding_r[i] >= a.kernel[i]) {
      return InvalidOperands(desc, "kernel=" + ShapeToString(a.kernel) + " and stride=" + ShapeToString(a.strides) +
                                       " must be >= 1, and padding_begin=" + ShapeToString(a.padding_l) +
                                       ", padding_end=" + ShapeToString(a.padding_r) + " in [0, kernel)");
    }
  }
  return a;
}

Status CheckPoolShapes(const StepDesc& desc, const PoolAttrs& a, const TensorRef& src, const TensorRef& dst) {
  RETURN_IF_ERROR(CheckRank(desc, src, "src", 4));
  RETURN_IF_ERROR(CheckRank(desc, dst, "dst", 4));
  Shape want{src.dims[0], src.dims[1], 0, 0};
  for (size_t i = 0; i < 2; ++i) {
    int64_t padded = src.dims[i + 2] + a.padding_l[i] + a.padding_r[i];
    want[i + 2] = padded < a.kernel[i] ? -1 : (padded - a.kernel[i]) / a.strides[i] + 1;
  }
  if (dst.dims != want) return InvalidOperands(desc, "src and dst disagree: expected dst " + ShapeToString(want));
  return OkStatus();
}

dn::pooling_forward::desc PoolForwardDesc(prop_kind prop, const PoolAttrs& a, const dn::memory::desc& src,
                                          const dn::memory::desc& dst) {
  return dn::pooling_forward::desc(prop, a.alg, src, dst, a.strides, a.kernel, a.padding_l, a.padding_r);
}

// A workspace operand must be max pooling's and hold the primitive's workspace.
Status CheckWorkspace(const StepDesc& desc, const TensorRef& ws, const dn::memory::desc& ws_md) {
  if (ws_md.get_size() == 0) return InvalidOperands(desc, "only max pooling has a workspace");
  if (ws.layout != kWorkspaceLayout || ws.layout_bytes < static_cast<int64_t>(ws_md.get_size())) {
    return InvalidOperands(desc, "the workspace operand must have layout \"workspace\" and at least " +
                                     std::to_string(ws_md.get_size()) + " bytes");
  }
  return OkStatus();
}

}  // namespace

StatusOr<std::optional<DnnlPlan>> PlanPool2d(const StepDesc& desc) {
  ASSIGN_OR_RETURN(PoolAttrs a, ReadPoolAttrs(desc));
  const TensorRef& src = desc.inputs[0];
  const TensorRef& dst = desc.outputs[0];
  RETURN_IF_ERROR(CheckPoolShapes(desc, a, src, dst));
  dn::memory::desc src_md = MdOf(src), dst_md = MdOf(dst);
  DnnlPlan plan;
  if (desc.outputs.size() == 2) {
    // with_workspace: forward_training writes the max-pooling workspace for the backward step.
    dn::pooling_forward::primitive_desc pd(PoolForwardDesc(prop_kind::forward_training, a, src_md, dst_md),
                                           UserScratchpad(), Engine());
    dn::memory::desc ws_md = pd.workspace_desc();
    RETURN_IF_ERROR(CheckWorkspace(desc, desc.outputs[1], ws_md));
    plan.AddCall(pd, {{DNNL_ARG_SRC, src_md, In(0)}, {DNNL_ARG_DST, dst_md, Out(0)}, {DNNL_ARG_WORKSPACE, ws_md, Out(1)}});
    return std::optional<DnnlPlan>(std::move(plan));
  }
  // forward_inference: no workspace is written (a backward step without one recomputes it).
  dn::pooling_forward::primitive_desc pd(PoolForwardDesc(prop_kind::forward_inference, a, src_md, dst_md),
                                         UserScratchpad(), Engine());
  plan.AddCall(pd, {{DNNL_ARG_SRC, src_md, In(0)}, {DNNL_ARG_DST, dst_md, Out(0)}});
  return std::optional<DnnlPlan>(std::move(plan));
}

namespace {

// pool2d_backward with the ReLU backward of the layer below fused in (ir/ops/pool2d.cc).
bool FusedRelu(const StepDesc& desc) {
  auto it = desc.strings.find("activation");
  return it != desc.strings.end() && it->second == "relu";
}

}  // namespace

StatusOr<std::optional<DnnlPlan>> PlanPool2dBackward(const StepDesc& desc) {
  if (auto it = desc.strings.find("activation"); it != desc.strings.end() && it->second != "relu") {
    return InvalidOperands(desc, "activation must be \"relu\" or absent, got \"" + it->second + "\"");
  }
  ASSIGN_OR_RETURN(PoolAttrs a, ReadPoolAttrs(desc));
  const TensorRef& diff_dst = desc.inputs[0];
  const TensorRef& src = desc.inputs[1];
  const TensorRef& diff_src = desc.outputs[0];
  RETURN_IF_ERROR(CheckPoolShapes(desc, a, src, diff_dst));
  if (diff_src.dims != src.dims) return InvalidOperands(desc, "diff_src must have the shape of src");
  // Max pooling without a workspace in NCHW or NHWC: the native loop (no forward rerun).
  if (a.alg == algorithm::pooling_max && desc.inputs.size() == 2 && NativePoolLayout(desc)) {
    return std::optional<DnnlPlan>();
  }
  dn::memory::desc src_md = MdOf(src), dst_md = MdOf(diff_dst);
  dn::pooling_forward::primitive_desc fwd(PoolForwardDesc(prop_kind::forward_training, a, src_md, dst_md),
                                          UserScratchpad(), Engine());
  dn::pooling_backward::desc d(a.alg, src_md, dst_md, a.strides, a.kernel, a.padding_l, a.padding_r);
  dn::pooling_backward::primitive_desc bwd(d, UserScratchpad(), Engine(), fwd);
  DnnlPlan plan;
  // A fused ReLU backward (activation="relu"): diff_src *= (src > 0), in place, by oneDNN's
  // eltwise backward on the dst of the ReLU (which is this pooling's src).
  auto add_relu = [&]() {
    if (!FusedRelu(desc)) return;
    algorithm relu = algorithm::eltwise_relu_use_dst_for_bwd;
    dn::eltwise_forward::primitive_desc hint(
        dn::eltwise_forward::desc(prop_kind::forward_training, relu, src_md, 0.f, 0.f), Engine());
    dn::eltwise_backward::primitive_desc pd(dn::eltwise_backward::desc(relu, src_md, src_md, 0.f, 0.f),
                                            UserScratchpad(), Engine(), hint);
    plan.AddCall(pd, {{DNNL_ARG_DIFF_DST, src_md, Out(0)}, {DNNL_ARG_DST, src_md, In(1)},
                      {DNNL_ARG_DIFF_SRC, src_md, Out(0)}});
  };
  if (a.alg != algorithm::pooling_max) {
    // Average pooling spreads each gradient over its window: no workspace, no forward run.
    plan.AddCall(bwd, {{DNNL_ARG_DIFF_DST, dst_md, In(0)}, {DNNL_ARG_DIFF_SRC, src_md, Out(0)}});
    add_relu();
    return std::optional<DnnlPlan>(std::move(plan));
  }
  dn::memory::desc ws_md = fwd.workspace_desc();
  if (desc.inputs.size() == 3) {
    // The forward step's workspace (with_workspace): no recomputation.
    RETURN_IF_ERROR(CheckWorkspace(desc, desc.inputs[2], ws_md));
    plan.AddCall(bwd, {{DNNL_ARG_DIFF_DST, dst_md, In(0)},
                       {DNNL_ARG_WORKSPACE, ws_md, In(2)},
                       {DNNL_ARG_DIFF_SRC, src_md, Out(0)}});
    add_relu();
    return std::optional<DnnlPlan>(std::move(plan));
  }
  int dst_copy = plan.AddRegion(static_cast<int64_t>(dst_md.get_size()));
  int workspace = plan.AddRegion(static_cast<int64_t>(ws_md.get_size()));
  plan.AddCall(fwd, {{DNNL_ARG_SRC, src_md, In(1)},
                     {DNNL_ARG_DST, dst_md, Scratch(dst_copy)},
                     {DNNL_ARG_WORKSPACE, ws_md, Scratch(workspace)}});
  plan.AddCall(bwd, {{DNNL_ARG_DIFF_DST, dst_md, In(0)},
                     {DNNL_ARG_WORKSPACE, ws_md, Scratch(workspace)},
                     {DNNL_ARG_DIFF_SRC, src_md, Out(0)}});
  add_relu();
  return std::optional<DnnlPlan>(std::move(plan));
}

bool NativePoolLayout(const StepDesc& desc) {
  const std::string& layout = desc.inputs[1].layout;
  if (layout != "" && layout != "acdb") return false;
  return desc.inputs[0].layout == layout && desc.outputs[0].layout == layout;
}

namespace {

// 4 floats as one SSE vector (GCC vector extensions: x86-64's baseline ISA, no dispatch).
typedef float V4f __attribute__((vector_size(16)));
typedef int32_t V4i __attribute__((vector_size(16)));
inline V4f Load4(const float* p) {
  V4f v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
inline void Store4(float* p, V4f v) { std::memcpy(p, &v, sizeof v); }

// Channels-last max-pooling backward when the windows tile the image without overlap
// (stride = kernel, no padding): every src element belongs to at most one window, so each
// window writes its gradient to the first maximum and zeros to its other taps directly (no
// zero fill, no scatter), four channels at a time with compare masks instead of branches
// (random activations make a branch per compare mispredict half the time: the branchy loop
// took 2.3 ms for 256x6x24x24, this one 0.43 ms on one core). Elements outside every window
// (when IH > OH*KH or IW > OW*KW) get zeros. The channel count must be at least 4; a tail of
// fewer than 4 channels is redone by a last, overlapping vector (its writes are the same).
// `taps` holds each window tap's element offset from the window's first element, in window
// order (computed once per run by the caller).
// With `relu` the gradient also passes only where the maximum is > 0 (a fused ReLU backward:
// the maximum is the ReLU's output there, and every other tap gets zero anyway).
template <bool kRelu>
void TiledMaxPoolBackwardNhwc(const float* s_img, const float* dy_img, float* dx_img, int64_t c_count, int64_t ih,
                              int64_t iw, int64_t oh, int64_t ow, int64_t kh, int64_t kw,
                              const std::vector<int64_t>& taps) {
  const int64_t row = iw * c_count;
  const auto num_taps = static_cast<int64_t>(taps.size());
  for (int64_t y = 0; y < oh; ++y) {
    for (int64_t x = 0; x < ow; ++x) {
      const int64_t window = y * kh * row + x * kw * c_count;
      const float* base = s_img + window;
      float* out = dx_img + window;
      const float* g = dy_img + (y * ow + x) * c_count;
      auto four = [&](int64_t c) {
        V4f best = Load4(base + c);
        V4i best_tap = {0, 0, 0, 0};
        for (int64_t t = 1; t < num_taps; ++t) {
          V4f v = Load4(base + taps[static_cast<size_t>(t)] + c);
          V4i greater = v > best;  // strict: the first maximum wins
          best = reinterpret_cast<V4f>((reinterpret_cast<V4i>(v) & greater) | (reinterpret_cast<V4i>(best) & ~greater));
          best_tap = (greater & static_cast<int32_t>(t)) | (best_tap & ~greater);
        }
        V4i grad = reinterpret_cast<V4i>(Load4(g + c));
        if (kRelu) grad &= best > V4f{0.f, 0.f, 0.f, 0.f};
        for (int64_t t = 0; t < num_taps; ++t) {
          V4i hit = best_tap == static_cast<int32_t>(t);
          Store4(out + taps[static_cast<size_t>(t)] + c, reinterpret_cast<V4f>(grad & hit));
        }
      };
      int64_t c = 0;
      for (; c + 4 <= c_count; c += 4) four(c);
      if (c < c_count) four(c_count - 4);
    }
    // Columns right of the last window.
    for (int64_t i = 0; i < kh; ++i) {
      float* tail = dx_img + (y * kh + i) * row + ow * kw * c_count;
      std::fill(tail, dx_img + (y * kh + i + 1) * row, 0.f);
    }
  }
  // Rows below the last window.
  std::fill(dx_img + oh * kh * row, dx_img + ih * row, 0.f);
}

// Max-pooling backward without a workspace: each window's gradient goes to its first
// maximum (windows scanned row-major, padding never wins), as the IR reference kernel
// defines; diff_src is zeroed first so overlapping windows accumulate. The batch is split
// over OpenMP threads (each image's diff_src is written by one thread). oneDNN 2.6 needs a
// workspace for this, and writing it makes its forward pass 10x slower (forward_training
// 976 us vs forward_inference 82 us for 256x6x24x24 NHWC on the 2-core dev machine).
Status MaxPool2dBackwardKernel(const StepDesc& desc, const runtime::ExecContext& ctx) {
  const TensorRef &dy_ref = desc.inputs[0], &src_ref = desc.inputs[1], &dx_ref = desc.outputs[0];
  const auto* dy = static_cast<const float*>(ctx.Ptr(dy_ref));
  const auto* src = static_cast<const float*>(ctx.Ptr(src_ref));
  auto* dx = static_cast<float*>(ctx.Ptr(dx_ref));
  const int64_t n_images = src_ref.dims[0], c_count = src_ref.dims[1], ih = src_ref.dims[2], iw = src_ref.dims[3];
  const int64_t oh = dy_ref.dims[2], ow = dy_ref.dims[3];
  auto kernel = desc.ints.at("kernel");
  auto stride_it = desc.ints.find("stride");
  auto pad_it = desc.ints.find("padding_begin");
  const int64_t kh = kernel[0], kw = kernel[1];
  const int64_t sh = stride_it == desc.ints.end() ? 1 : stride_it->second[0];
  const int64_t sw = stride_it == desc.ints.end() ? 1 : stride_it->second[1];
  const int64_t ph = pad_it == desc.ints.end() ? 0 : pad_it->second[0];
  const int64_t pw = pad_it == desc.ints.end() ? 0 : pad_it->second[1];
  const bool channels_last = src_ref.layout == "acdb";
  const bool relu = FusedRelu(desc);
  const bool tiled = channels_last && c_count >= 4 && sh == kh && sw == kw && ph == 0 && pw == 0 && oh * kh <= ih &&
                     ow * kw <= iw;
  std::vector<int64_t> taps;
  for (int64_t i = 0; tiled && i < kh; ++i) {
    for (int64_t j = 0; j < kw; ++j) taps.push_back(i * iw * c_count + j * c_count);
  }
  // Element strides (n, c, h, w) of src/diff_src and of diff_dst.
  const int64_t s_n = c_count * ih * iw, s_c = channels_last ? 1 : ih * iw, s_h = channels_last ? iw * c_count : iw,
                s_w = channels_last ? c_count : 1;
  const int64_t d_n = c_count * oh * ow, d_c = channels_last ? 1 : oh * ow, d_h = channels_last ? ow * c_count : ow,
                d_w = channels_last ? c_count : 1;
#pragma omp parallel
  {
    // Per-thread running maximum of every channel at one output position (channels-last,
    // general path only).
    std::vector<float> best_v(tiled ? 0 : static_cast<size_t>(c_count));
    std::vector<int64_t> best_at(tiled ? 0 : static_cast<size_t>(c_count));
#pragma omp for schedule(static)
    for (int64_t n = 0; n < n_images; ++n) {
      const float* s_img = src + n * s_n;
      float* dx_img = dx + n * s_n;
      const float* dy_img = dy + n * d_n;
      if (tiled) {
        (relu ? TiledMaxPoolBackwardNhwc<true> : TiledMaxPoolBackwardNhwc<false>)(s_img, dy_img, dx_img, c_count, ih,
                                                                                   iw, oh, ow, kh, kw, taps);
        continue;
      }
      // The general paths scatter into zeros; a fused ReLU backward masks the image after.
      auto mask = [&]() {
        if (!relu) return;
        for (int64_t i = 0; i < s_n; ++i) dx_img[i] = s_img[i] > 0.f ? dx_img[i] : 0.f;
      };
      std::fill(dx_img, dx_img + s_n, 0.f);
      if (channels_last) {
        // Channels are contiguous: the per-channel compare over each window tap vectorizes.
        for (int64_t y = 0; y < oh; ++y) {
          for (int64_t x = 0; x < ow; ++x) {
            bool first = true;
            for (int64_t i = 0; i < kh; ++i) {
              int64_t h = y * sh - ph + i;
              if (h < 0 || h >= ih) continue;
              for (int64_t j = 0; j < kw; ++j) {
                int64_t w = x * sw - pw + j;
                if (w < 0 || w >= iw) continue;
                int64_t base = h * s_h + w * s_w;
                const float* v = s_img + base;
                if (first) {
                  for (int64_t c = 0; c < c_count; ++c) {
                    best_v[static_cast<size_t>(c)] = v[c];
                    best_at[static_cast<size_t>(c)] = base + c;
                  }
                  first = false;
                } else {
                  for (int64_t c = 0; c < c_count; ++c) {
                    bool better = v[c] > best_v[static_cast<size_t>(c)];
                    best_v[static_cast<size_t>(c)] = better ? v[c] : best_v[static_cast<size_t>(c)];
                    best_at[static_cast<size_t>(c)] = better ? base + c : best_at[static_cast<size_t>(c)];
                  }
                }
              }
            }
            if (first) continue;  // an all-padding window
            const float* g = dy_img + y * d_h + x * d_w;
            for (int64_t c = 0; c < c_count; ++c) dx_img[best_at[static_cast<size_t>(c)]] += g[c];
          }
        }
        mask();
        continue;
      }
      for (int64_t c = 0; c < c_count; ++c) {
        const float* plane = s_img + c * s_c;
        for (int64_t y = 0; y < oh; ++y) {
          for (int64_t x = 0; x < ow; ++x) {
            int64_t best = -1;
            float bv = 0;
            for (int64_t i = 0; i < kh; ++i) {
              int64_t h = y * sh - ph + i;
              if (h < 0 || h >= ih) continue;
              for (int64_t j = 0; j < kw; ++j) {
                int64_t w = x * sw - pw + j;
                if (w < 0 || w >= iw) continue;
                float v = plane[h * s_h + w];
                if (best < 0 || v > bv) {
                  best = h * s_h + w;
                  bv = v;
                }
              }
            }
            if (best >= 0) dx_img[c * s_c + best] += dy_img[c * d_c + y * d_h + x * d_w];
          }
        }
      }
      mask();
    }
  }
  return OkStatus();
}

}  // namespace

StatusOr<NativeFn> NativePool2dBackward(const StepDesc& desc) {
  // PlanPool2dBackward validated the attributes and shapes and chose this path.
  if (!NativePoolLayout(desc)) return InvalidOperands(desc, "the native max-pooling backward needs NCHW or NHWC");
  return NativeFn(MaxPool2dBackwardKernel);
}

}  // namespace kiln::backends::cpu::internal
