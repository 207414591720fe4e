// concat, split and transpose (ir/ops/concat.cc) as native loops over dense row-major
// operands of any 4-byte dtype: concat and split copy contiguous chunks of
// dims[axis] * inner elements per outer index (memcpy), transpose walks dst in order with
// an odometer over src strides. Rows are split over the OpenMP team when large.
#include <cstring>

#include "backends/cpu/kernels_internal.h"

namespace kiln::backends::cpu::internal {
namespace {

int64_t NormalizedAxis(const StepDesc& desc, size_t rank) {
  int64_t axis = GetInt(desc, "axis", 1);
  return axis < 0 ? axis + static_cast<int64_t>(rank) : axis;
}

void OuterInner(const Shape& s, int64_t axis, int64_t* outer, int64_t* inner) {
  *outer = 1;
  *inner = 1;
  for (int64_t i = 0; i < axis; ++i) *outer *= s[static_cast<size_t>(i)];
  for (size_t i = static_cast<size_t>(axis) + 1; i < s.size(); ++i) *inner *= s[i];
}

// The pieces (concat's inputs or split's outputs) of `whole` along axis: checks ranks and
// dims. Errors: InvalidArgument naming the step.
Status CheckPieces(const StepDesc& desc, const TensorRef& whole, const std::vector<TensorRef>& pieces) {
  int64_t axis = NormalizedAxis(desc, whole.dims.size());
  if (axis < 0 || axis >= static_cast<int64_t>(whole.dims.size())) return InvalidOperands(desc, "axis out of range");
  int64_t total = 0;
  for (const TensorRef& p : pieces) {
    if (p.dims.size() != whole.dims.size() || p.dtype != whole.dtype || DTypeSizeBytes(p.dtype) != 4) {
      return InvalidOperands(desc, "pieces must have the rank and 4-byte dtype of the whole");
    }
    for (size_t k = 0; k < p.dims.size(); ++k) {
      if (static_cast<int64_t>(k) != axis && p.dims[k] != whole.dims[k]) {
        return InvalidOperands(desc, "pieces must have equal dims except along axis");
      }
    }
    total += p.dims[static_cast<size_t>(axis)];
  }
  if (total != whole.dims[static_cast<size_t>(axis)]) return InvalidOperands(desc, "pieces must sum to the axis");
  return OkStatus();
}

// Copies between the whole and its pieces; `to_whole` for concat.
void MovePieces(const StepDesc& desc, const runtime::ExecContext& ctx, const TensorRef& whole,
                const std::vector<TensorRef>& pieces, bool to_whole) {
  int64_t axis = NormalizedAxis(desc, whole.dims.size());
  int64_t outer, inner;
  OuterInner(whole.dims, axis, &outer, &inner);
  auto* w = static_cast<uint8_t*>(ctx.Ptr(whole));
  int64_t row = whole.dims[static_cast<size_t>(axis)] * inner * 4;
  int64_t offset = 0;
  for (const TensorRef& p : pieces) {
    auto* q = static_cast<uint8_t*>(ctx.Ptr(p));
    int64_t chunk = p.dims[static_cast<size_t>(axis)] * inner * 4;
#pragma omp parallel for schedule(static) if (outer * chunk >= (1 << 20))
    for (int64_t o = 0; o < outer; ++o) {
      if (to_whole) {
        std::memcpy(w + o * row + offset, q + o * chunk, static_cast<size_t>(chunk));
      } else {
        std::memcpy(q + o * chunk, w + o * row + offset, static_cast<size_t>(chunk));
      }
    }
    offset += chunk;
  }
}

Status ConcatKernel(const StepDesc& desc, const runtime::ExecContext& ctx) {
  MovePieces(desc, ctx, desc.outputs[0], desc.inputs, /*to_whole=*/true);
  return OkStatus();
}

Status SplitKernel(const StepDesc& desc, const runtime::ExecContext& ctx) {
  MovePieces(desc, ctx, desc.inputs[0], desc.outputs, /*to_whole=*/false);
  return OkStatus();
}

Status TransposeKernel(const StepDesc& desc, const runtime::ExecContext& ctx) {
  const Shape& src = desc.inputs[0].dims;
  const Shape& dst = desc.outputs[0].dims;
  std::vector<int64_t> axes = desc.ints.at("axes");
  size_t rank = dst.size();
  std::vector<int64_t> src_strides(rank, 1);
  for (size_t k = rank; k-- > 1;) src_strides[k - 1] = src_strides[k] * src[k];
  std::vector<int64_t> step(rank);  // src stride of each dst dim
  for (size_t k = 0; k < rank; ++k) step[k] = src_strides[static_cast<size_t>(axes[k])];
  const auto* in = static_cast<const uint32_t*>(ctx.Ptr(desc.inputs[0]));
  auto* out = static_cast<uint32_t*>(ctx.Ptr(desc.outputs[0]));
  int64_t n = NumElements(dst);
  if (n == 0) return OkStatus();
  if (rank == 0) {
    out[0] = in[0];
    return OkStatus();
  }
  int64_t last = dst[rank - 1], rows = n / last;
#pragma omp parallel for schedule(static) if (n >= (1 << 18))
  for (int64_t r = 0; r < rows; ++r) {
    // The src offset of the row's first element from its dst multi-index.
    int64_t rem = r, s = 0;
    for (size_t k = rank - 1; k-- > 0;) {
      s += (rem % dst[k]) * step[k];
      rem /= dst[k];
    }
    uint32_t* o = out + r * last;
    for (int64_t i = 0; i < last; ++i) o[i] = in[s + i * step[rank - 1]];
  }
  return OkStatus();
}

}  // namespace

StatusOr<NativeFn> NativeConcat(const StepDesc& desc) {
  RETURN_IF_ERROR(CheckPieces(desc, desc.outputs[0], desc.inputs));
  return NativeFn(ConcatKernel);
}

StatusOr<NativeFn> NativeSplit(const StepDesc& desc) {
  RETURN_IF_ERROR(CheckPieces(desc, desc.inputs[0], desc.outputs));
  return NativeFn(SplitKernel);
}

StatusOr<NativeFn> NativeTranspose(const StepDesc& desc) {
  auto it = desc.ints.find("axes");
  const Shape& src = desc.inputs[0].dims;
  const Shape& dst = desc.outputs[0].dims;
  if (it == desc.ints.end() || it->second.size() != src.size() || dst.size() != src.size()) {
    return InvalidOperands(desc, "axes must have one entry per dim of src");
  }
  std::vector<bool> seen(src.size(), false);
  for (size_t k = 0; k < it->second.size(); ++k) {
    int64_t a = it->second[k];
    if (a < 0 || a >= static_cast<int64_t>(src.size()) || seen[static_cast<size_t>(a)] ||
        dst[k] != src[static_cast<size_t>(a)]) {
      return InvalidOperands(desc, "axes must be a permutation with dst dim i = src dim axes[i]");
    }
    seen[static_cast<size_t>(a)] = true;
  }
  if (DTypeSizeBytes(desc.inputs[0].dtype) != 4) return InvalidOperands(desc, "transpose moves 4-byte elements");
  return NativeFn(TransposeKernel);
}

}  // namespace kiln::backends::cpu::internal
