// add, mul, sub, div, maximum, minimum with NumPy broadcasting (oneDNN binary) and
// reduce_sum / reduce_mean (oneDNN reduction).
// Broadcasting: both shapes are padded to the output rank with leading 1s. oneDNN 2.6
// requires src0 to have the dst dims and broadcasts only src1, so when only src0 is
// broadcast the operands of the commuting kinds (add, mul, maximum, minimum) are swapped;
// sub and div then run the native loop, as any kind does when both operands broadcast
// (and greater_equal always).
// Blocked layouts (add, mul, sub, maximum, minimum: LayoutRule::kFollowSourceSameDims): all
// three operands with the same dims and layout, oneDNN binary over the blocked memory.
// Reduction: dst has the src dims with the reduced axes set to 1 (the bytes are the same
// whether or not keepdims dropped them). Reducing nothing is a copy, done natively.
// Source: oneDNN dev guide "Binary", "Reduction".
#include <algorithm>

#include "backends/cpu/kernels_internal.h"

namespace kiln::backends::cpu::internal {
namespace {

using dnnl::algorithm;
namespace dn = dnnl;

algorithm BinaryAlgorithm(const std::string& kind) {
  return kind == "add"       ? algorithm::binary_add
         : kind == "mul"     ? algorithm::binary_mul
         : kind == "sub"     ? algorithm::binary_sub
         : kind == "div"     ? algorithm::binary_div
         : kind == "maximum" ? algorithm::binary_max
                             : algorithm::binary_min;
}

}  // namespace

std::optional<std::vector<int64_t>> BroadcastShapes(const std::vector<int64_t>& a, const std::vector<int64_t>& b) {
  size_t rank = std::max(a.size(), b.size());
  std::vector<int64_t> pa = PadToRank(a, rank), pb = PadToRank(b, rank), out(rank);
  for (size_t i = 0; i < rank; ++i) {
    if (pa[i] != pb[i] && pa[i] != 1 && pb[i] != 1) return std::nullopt;
    out[i] = pa[i] == 1 ? pb[i] : pa[i];
  }
  return out;
}

std::vector<int64_t> PadToRank(const std::vector<int64_t>& dims, size_t rank) {
  std::vector<int64_t> out(rank > dims.size() ? rank - dims.size() : 0, 1);
  out.insert(out.end(), dims.begin(), dims.end());
  return out;
}

StatusOr<std::optional<DnnlPlan>> PlanBinary(const StepDesc& desc) {
  const Shape& a = desc.inputs[0].dims;
  const Shape& b = desc.inputs[1].dims;
  const Shape& out = desc.outputs[0].dims;
  std::optional<Shape> broadcast = BroadcastShapes(a, b);
  if (!broadcast || *broadcast != out) {
    return InvalidOperands(desc, "dst must have the broadcast shape of src0 and src1");
  }
  // oneDNN has no rank-0 memory: scalars become [1].
  size_t rank = std::max<size_t>(out.size(), 1);
  Shape pa = PadToRank(a, rank), pb = PadToRank(b, rank), po = PadToRank(out, rank);
  const std::string& k = desc.kind;
  // Blocked operands (LayoutRule::kFollowSourceSameDims): same dims and one layout for all
  // three, run by oneDNN over the blocked memory.
  bool blocked = !desc.inputs[0].dense() || !desc.inputs[1].dense() || !desc.outputs[0].dense();
  if (blocked) {
    if (a != out || b != out || desc.inputs[0].layout != desc.outputs[0].layout ||
        desc.inputs[1].layout != desc.outputs[0].layout) {
      return InvalidOperands(desc, "blocked operands must all have dst's dims and layout (no broadcasting)");
    }
    dn::memory::desc md = MdOf(desc.outputs[0]);
    dn::binary::primitive_desc pd(dn::binary::desc(BinaryAlgorithm(k), md, md, md), UserScratchpad(), Engine());
    DnnlPlan plan;
    plan.AddCall(pd, {{DNNL_ARG_SRC_0, md, In(0)}, {DNNL_ARG_SRC_1, md, In(1)}, {DNNL_ARG_DST, md, Out(0)}});
    return std::optional<DnnlPlan>(std::move(plan));
  }
  bool commutes = k == "add" || k == "mul" || k == "maximum" || k == "minimum";
  int src0 = 0, src1 = 1;
  if (pa != po) {
    // Both broadcast, or src0 of a kind that does not commute: the native loop.
    if (pb != po || !commutes) return std::optional<DnnlPlan>();
    std::swap(pa, pb);
    std::swap(src0, src1);
  }
  dn::memory::desc md0 = PlainMd(pa), md1 = PlainMd(pb), mdo = PlainMd(po);
  dn::binary::primitive_desc pd(dn::binary::desc(BinaryAlgorithm(k), md0, md1, mdo), UserScratchpad(), Engine());
  DnnlPlan plan;
  plan.AddCall(pd, {{DNNL_ARG_SRC_0, md0, In(src0)}, {DNNL_ARG_SRC_1, md1, In(src1)}, {DNNL_ARG_DST, mdo, Out(0)}});
  return std::optional<DnnlPlan>(std::move(plan));
}

namespace {

// The src dims with the reduced axes set to 1. Errors: InvalidArgument for an axis out of
// range or repeated, or a dst that is neither the kept nor the dropped shape.
StatusOr<Shape> KeptShape(const StepDesc& desc) {
  const Shape& src = desc.inputs[0].dims;
  ASSIGN_OR_RETURN(std::vector<int64_t> axes, GetInts(desc, "axes", 0, {}));
  auto rank = static_cast<int64_t>(src.size());
  Shape kept = src, dropped;
  std::vector<bool> reduced(src.size(), false);
  for (int64_t axis : axes) {
    int64_t n = axis < 0 ? axis + rank : axis;
    if (n < 0 || n >= rank || reduced[static_cast<size_t>(n)]) {
      return InvalidOperands(desc, "axes " + ShapeToString(axes) + " are out of range or repeated");
    }
    reduced[static_cast<size_t>(n)] = true;
    kept[static_cast<size_t>(n)] = 1;
  }
  for (size_t i = 0; i < src.size(); ++i) {
    if (!reduced[i]) dropped.push_back(src[i]);
  }
  const Shape& dst = desc.outputs[0].dims;
  if (dst != kept && dst != dropped) {
    return InvalidOperands(desc, "dst must have shape " + ShapeToString(kept) + " or " + ShapeToString(dropped));
  }
  return kept;
}

Status CopyKernel(const StepDesc& desc, const runtime::ExecContext& ctx) {
  const void* src = ctx.Ptr(desc.inputs[0]);
  void* dst = ctx.Ptr(desc.outputs[0]);
  if (src != dst) std::copy_n(static_cast<const uint8_t*>(src), desc.outputs[0].size_bytes(), static_cast<uint8_t*>(dst));
  return OkStatus();
}

}  // namespace

StatusOr<std::optional<DnnlPlan>> PlanReduce(const StepDesc& desc) {
  ASSIGN_OR_RETURN(Shape kept, KeptShape(desc));
  const Shape& src = desc.inputs[0].dims;
  // Reducing only size-1 axes (or none) is a copy; oneDNN also rejects src == dst dims.
  if (kept == src) return std::optional<DnnlPlan>();
  dn::memory::desc src_md = PlainMd(src), dst_md = PlainMd(kept);
  algorithm alg = desc.kind == "reduce_sum" ? algorithm::reduction_sum : algorithm::reduction_mean;
  dn::reduction::primitive_desc pd(dn::reduction::desc(alg, src_md, dst_md, /*p=*/0.f, /*eps=*/0.f), UserScratchpad(),
                                   Engine());
  DnnlPlan plan;
  plan.AddCall(pd, {{DNNL_ARG_SRC, src_md, In(0)}, {DNNL_ARG_DST, dst_md, Out(0)}});
  return std::optional<DnnlPlan>(std::move(plan));
}

StatusOr<NativeFn> NativeReduce(const StepDesc& desc) {
  ASSIGN_OR_RETURN(Shape kept, KeptShape(desc));
  if (kept != desc.inputs[0].dims) return Internal(Describe(desc, "a real reduction has no native kernel"));
  return NativeFn(CopyKernel);
}

}  // namespace kiln::backends::cpu::internal
