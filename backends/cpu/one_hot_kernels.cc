// Native loop for one_hot (ir/ops/one_hot.cc; MXNet nd.one_hot):
//   indices N [N] s32 -> dst NC [N, depth] f32; dst[n, c] = on_value if c == indices[n] else off_value.
// An index outside [0, depth) leaves its row all off_value, as MXNet does (not an error).
// ints depth {D} (must equal dst's C); floats on_value (default 1), off_value (default 0).
#include <algorithm>

#include "backends/cpu/kernels_internal.h"

namespace kiln::backends::cpu::internal {
namespace {

Status OneHotKernel(const StepDesc& desc, const runtime::ExecContext& ctx) {
  int64_t n = desc.outputs[0].dims[0], depth = desc.outputs[0].dims[1];
  const auto* idx = static_cast<const int32_t*>(ctx.Ptr(desc.inputs[0]));
  auto* dst = static_cast<float*>(ctx.Ptr(desc.outputs[0]));
  auto on = static_cast<float>(GetFloat(desc, "on_value", 1.0));
  auto off = static_cast<float>(GetFloat(desc, "off_value", 0.0));
  std::fill_n(dst, n * depth, off);
  for (int64_t i = 0; i < n; ++i) {
    if (idx[i] >= 0 && idx[i] < depth) dst[i * depth + idx[i]] = on;
  }
  return OkStatus();
}

}  // namespace

StatusOr<NativeFn> NativeOneHot(const StepDesc& desc) {
  RETURN_IF_ERROR(CheckRank(desc, desc.inputs[0], "indices", 1));
  RETURN_IF_ERROR(CheckRank(desc, desc.outputs[0], "dst", 2));
  int64_t depth = GetInt(desc, "depth", -1);
  if (desc.outputs[0].dims != Shape{desc.inputs[0].dims[0], depth}) {
    return InvalidOperands(desc, "dst must have shape [N, depth] with depth=" + std::to_string(depth));
  }
  return NativeFn(OneHotKernel);
}

}  // namespace kiln::backends::cpu::internal
