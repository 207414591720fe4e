#include "runtime/check_numerics.h"

#include <cmath>
#include <cstring>

#include "runtime/step_kinds.h"

namespace kiln::runtime {
namespace {

constexpr uint32_t kExponentMask = 0x7f800000u;

// True when the bits are NaN or +-Inf (all exponent bits set).
inline bool NonFiniteBits(uint32_t bits) { return (bits & kExponentMask) == kExponentMask; }

std::string Describe(const NonFinite& bad, int64_t n) {
  return " (" + std::to_string(bad.count) + " of " + std::to_string(n) + " elements non-finite)";
}

// Who wrote output `k` of `desc`: the step itself, or for a group step (sgd_update_group)
// the member that owns it, with the output's index and operand name in that member.
struct Writer {
  std::string kind, node, operand, group;
  size_t output = 0;
};
Writer FindWriter(const StepDesc& desc, size_t k) {
  Writer w{desc.kind, desc.node_name, "", "", k};
  const StepKindInfo* info = FindStepKind(desc.kind);
  if (info) {
    if (k < info->outputs.size()) w.operand = info->outputs[k].name;
    return w;
  }
  auto members = SplitGroup(desc);
  if (!members.ok()) return w;
  size_t first = 0;
  for (size_t m = 0; m < members->size(); ++m) {
    const StepDesc& member = (*members)[m];
    if (k < first + member.outputs.size()) {
      const StepKindInfo* mi = FindStepKind(member.kind);
      w = {member.kind, member.node_name, "", desc.kind + " \"" + desc.node_name + "\" member " + std::to_string(m),
           k - first};
      if (mi && w.output < mi->outputs.size()) w.operand = mi->outputs[w.output].name;
      return w;
    }
    first += member.outputs.size();
  }
  return w;
}

// Output k is opaque bytes (a workspace) by the table.
bool OpaqueOutput(const StepDesc& desc, size_t k) {
  const StepKindInfo* info = FindStepKind(desc.kind);
  return info && k < info->outputs.size() && info->outputs[k].opaque;
}

}  // namespace

std::optional<NonFinite> FindNonFinite(const float* data, int64_t n) {
  // A branch-free pass first (vectorizes): most checks find nothing.
  const auto* bits = reinterpret_cast<const uint8_t*>(data);
  uint32_t any = 0;
  for (int64_t i = 0; i < n; ++i) {
    uint32_t b;
    std::memcpy(&b, bits + 4 * i, 4);
    any |= static_cast<uint32_t>(NonFiniteBits(b));
  }
  if (!any) return std::nullopt;
  NonFinite bad;
  bad.index = -1;
  for (int64_t i = 0; i < n; ++i) {
    uint32_t b;
    std::memcpy(&b, bits + 4 * i, 4);
    if (!NonFiniteBits(b)) continue;
    if (bad.index < 0) {
      bad.index = i;
      bad.value = data[i];
    }
    ++bad.count;
  }
  return bad;
}

std::string MultiIndexToString(const Shape& dims, int64_t index) {
  Shape idx(dims.size());
  for (size_t d = dims.size(); d-- > 0;) {
    int64_t extent = dims[d] > 0 ? dims[d] : 1;
    idx[d] = index % extent;
    index /= extent;
  }
  return ShapeToString(idx);
}

std::string NonFiniteName(float value) {
  if (std::isnan(value)) return "NaN";
  return value > 0 ? "+Inf" : "-Inf";
}

Status CheckInputNumerics(const std::string& name, DType dtype, const Shape& dims, const void* data) {
  if (dtype != DType::kF32) return OkStatus();
  int64_t n = NumElements(dims);
  auto bad = FindNonFinite(static_cast<const float*>(data), n);
  if (!bad) return OkStatus();
  return InvalidArgument("check_numerics: input '" + name + "' " + std::string(DTypeName(dtype)) +
                         ShapeToString(dims) + " holds " + NonFiniteName(bad->value) + " at index " +
                         std::to_string(bad->index) + " " + MultiIndexToString(dims, bad->index) + Describe(*bad, n));
}

Status CheckStepNumerics(const StepDesc& desc, size_t index, size_t num_steps, const ExecContext& ctx,
                         const std::vector<std::string>& param_names) {
  if (ctx.device != Device::kHost) {
    return Unimplemented("check_numerics: step " + desc.Where() + " runs on " + DeviceName(ctx.device) +
                         " memory; numerics checking reads host memory only");
  }
  for (size_t k = 0; k < desc.outputs.size(); ++k) {
    const TensorRef& r = desc.outputs[k];
    if (r.dtype != DType::kF32 || OpaqueOutput(desc, k)) continue;
    int64_t n = r.size_bytes() / 4;
    auto bad = FindNonFinite(static_cast<const float*>(ctx.Ptr(r)), n);
    if (!bad) continue;
    Writer w = FindWriter(desc, k);
    std::string bound;
    if (r.kind == BufferKind::kParam && r.index >= 0 && static_cast<size_t>(r.index) < param_names.size()) {
      bound = " (parameter '" + param_names[static_cast<size_t>(r.index)] + "')";
    }
    std::string where = r.dense() ? "index " + std::to_string(bad->index) + " " + MultiIndexToString(r.dims, bad->index)
                                  : "element " + std::to_string(bad->index) + " of its " + r.layout + " layout";
    return InvalidArgument("check_numerics: step " + std::to_string(index) + " of " + std::to_string(num_steps) +
                           ", op " + w.kind + " node \"" + w.node + "\"" + (w.group.empty() ? "" : " (" + w.group + ")") +
                           ", wrote " + NonFiniteName(bad->value) + " to output " + std::to_string(w.output) +
                           (w.operand.empty() ? "" : " '" + w.operand + "'") + " " + std::string(DTypeName(r.dtype)) +
                           ShapeToString(r.dims) + bound + " at " + where + Describe(*bad, n));
  }
  return OkStatus();
}

}  // namespace kiln::runtime
