#include "base/dtype.h"

namespace kiln {

std::string_view DTypeName(DType dtype) {
  switch (dtype) {
    case DType::kF32: return "f32";
    case DType::kS32: return "s32";
  }
  return "?";
}

StatusOr<DType> ParseDType(std::string_view name) {
  if (name == "f32") return DType::kF32;
  if (name == "s32") return DType::kS32;
  return InvalidArgument("unknown dtype '" + std::string(name) + "' (expected f32 or s32)");
}

int64_t DTypeSizeBytes(DType) { return 4; }

int64_t NumElements(const Shape& shape) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

std::string ShapeToString(const Shape& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i) s += ",";
    s += std::to_string(shape[i]);
  }
  return s + "]";
}

}  // namespace kiln
