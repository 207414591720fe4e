#include "runtime/step.h"

namespace kiln::runtime {

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

StatusOr<StepFactory::Layouts> StepFactory::ChooseLayouts(const StepDesc& desc) const {
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

}  // namespace kiln::runtime
