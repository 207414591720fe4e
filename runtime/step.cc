#include "runtime/step.h"

#include <algorithm>

namespace kiln::runtime {

const char* DeviceName(Device device) {
  switch (device) {
    case Device::kHost: return "host";
    case Device::kCuda: return "cuda";
  }
  return "?";
}

const char* BufferKindName(BufferKind kind) {
  switch (kind) {
    case BufferKind::kArena: return "arena";
    case BufferKind::kInput: return "input";
    case BufferKind::kOutput: return "output";
    case BufferKind::kParam: return "param";
    case BufferKind::kConstant: return "const";
  }
  return "?";
}

std::string TensorRef::ToString() const {
  std::string where = BufferKindName(kind);
  if (kind != BufferKind::kArena) where += std::to_string(index);
  std::string s = where + "+" + std::to_string(offset) + " " + std::string(DTypeName(dtype)) + ShapeToString(dims);
  if (!dense()) s += " " + layout;
  return s;
}

StatusOr<StepFactory::Layouts> StepFactory::ChooseLayouts(const StepDesc& desc) const { return DenseLayouts(desc); }

StepFactory::Layouts StepFactory::DenseLayouts(const StepDesc& desc) {
  Layouts l;
  l.inputs.assign(desc.inputs.size(), "");
  l.input_bytes.assign(desc.inputs.size(), 0);
  l.outputs.assign(desc.outputs.size(), "");
  l.output_bytes.assign(desc.outputs.size(), 0);
  return l;
}

void* ExecContext::Ptr(const TensorRef& ref) const {
  uint8_t* base = nullptr;
  switch (ref.kind) {
    case BufferKind::kArena: base = arena; break;
    case BufferKind::kInput: base = static_cast<uint8_t*>(inputs[ref.index]); break;
    case BufferKind::kOutput: base = static_cast<uint8_t*>(outputs[ref.index]); break;
    case BufferKind::kParam: base = static_cast<uint8_t*>(params[ref.index]); break;
    case BufferKind::kConstant: base = const_cast<uint8_t*>(static_cast<const uint8_t*>(constants[ref.index])); break;
  }
  return base + ref.offset;
}

bool IsGroupKind(const std::string& kind) {
  return kind.size() > 6 && kind.compare(kind.size() - 6, 6, "_group") == 0;
}

StatusOr<std::vector<StepDesc>> SplitGroup(const StepDesc& group) {
  if (!IsGroupKind(group.kind)) return InvalidArgument(group.Where() + ": not a group kind");
  auto it = group.ints.find("group_size");
  if (it == group.ints.end() || it->second.size() != 1 || it->second[0] < 1) {
    return InvalidArgument(group.Where() + ": needs ints group_size {k}, k >= 1");
  }
  auto k = static_cast<size_t>(it->second[0]);
  if (group.inputs.size() % k != 0 || group.outputs.size() % k != 0) {
    return InvalidArgument(group.Where() + ": " + std::to_string(group.inputs.size()) + " inputs and " +
                           std::to_string(group.outputs.size()) + " outputs do not divide into " +
                           std::to_string(k) + " members");
  }
  size_t ni = group.inputs.size() / k, no = group.outputs.size() / k;
  std::vector<StepDesc> members;
  for (size_t m = 0; m < k; ++m) {
    StepDesc d;
    d.kind = group.kind.substr(0, group.kind.size() - 6);
    d.node_name = group.node_name + "#" + std::to_string(m);
    d.ints = group.ints;
    d.ints.erase("group_size");
    d.floats = group.floats;
    d.strings = group.strings;
    d.inputs.assign(group.inputs.begin() + static_cast<long>(m * ni), group.inputs.begin() + static_cast<long>((m + 1) * ni));
    d.outputs.assign(group.outputs.begin() + static_cast<long>(m * no),
                     group.outputs.begin() + static_cast<long>((m + 1) * no));
    members.push_back(std::move(d));
  }
  return members;
}

namespace {

class GroupStep final : public Step {
 public:
  GroupStep(StepDesc desc, std::vector<std::unique_ptr<Step>> members)
      : Step(std::move(desc)), members_(std::move(members)) {}
  Status Run(const ExecContext& ctx) const override {
    for (const auto& m : members_) RETURN_IF_ERROR(m->Run(ctx));
    return OkStatus();
  }

 private:
  std::vector<std::unique_ptr<Step>> members_;
};

}  // namespace

StatusOr<std::unique_ptr<Step>> CreateGroupStep(const StepDesc& group, const StepFactory& factory) {
  ASSIGN_OR_RETURN(std::vector<StepDesc> members, SplitGroup(group));
  std::vector<std::unique_ptr<Step>> steps;
  for (const StepDesc& m : members) {
    ASSIGN_OR_RETURN(auto step, factory.Create(m));
    steps.push_back(std::move(step));
  }
  return std::unique_ptr<Step>(new GroupStep(group, std::move(steps)));
}

StatusOr<int64_t> GroupScratchBytes(const StepDesc& group, const StepFactory& factory) {
  ASSIGN_OR_RETURN(std::vector<StepDesc> members, SplitGroup(group));
  int64_t bytes = 0;
  for (const StepDesc& m : members) {
    ASSIGN_OR_RETURN(int64_t b, factory.ScratchBytes(m));
    bytes = std::max(bytes, b);
  }
  return bytes;
}

}  // namespace kiln::runtime
