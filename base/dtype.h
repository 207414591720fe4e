// Element types and shapes shared by the compiler (ir/) and the runtime (runtime/).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"

namespace kiln {

// Element type of a tensor. f32 is the compute type; s32 holds class labels and argmax results.
enum class DType : uint8_t { kF32 = 0, kS32 = 1 };

// "f32" / "s32".
std::string_view DTypeName(DType dtype);
StatusOr<DType> ParseDType(std::string_view name);
// Size of one element in bytes (4 for both).
int64_t DTypeSizeBytes(DType dtype);

using Shape = std::vector<int64_t>;

// Number of elements: the product of the dims (1 for a rank-0 shape).
int64_t NumElements(const Shape& shape);
// "[8,3,32,32]".
std::string ShapeToString(const Shape& shape);

}  // namespace kiln
