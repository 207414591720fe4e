// Tensor: an owning, 64-byte-aligned, dense row-major host buffer with a dtype and a shape.
// Used at API boundaries (inputs, outputs, parameters); layouts are plain (NCHW, OIHW, NC).
#pragma once

#include <cstdint>
#include <cstring>
#include <memory>

#include "base/dtype.h"

namespace kiln {

class Tensor {
 public:
  Tensor() = default;
  // Zero-filled tensor of the given type.
  Tensor(DType dtype, Shape shape);
  Tensor(const Tensor& other);
  Tensor& operator=(const Tensor& other);
  Tensor(Tensor&&) noexcept = default;
  Tensor& operator=(Tensor&&) noexcept = default;

  DType dtype() const { return dtype_; }
  const Shape& shape() const { return shape_; }
  int64_t num_elements() const { return num_elements_; }
  int64_t size_bytes() const { return num_elements_ * DTypeSizeBytes(dtype_); }
  bool empty() const { return data_ == nullptr; }

  void* data() { return data_.get(); }
  const void* data() const { return data_.get(); }
  // Typed views; KILN_CHECK the dtype.
  float* f32();
  const float* f32() const;
  int32_t* s32();
  const int32_t* s32() const;

  // Same bytes, new shape with the same number of elements.
  StatusOr<Tensor> Reshaped(Shape shape) const;

 private:
  struct Free {
    void operator()(void* p) const;
  };
  DType dtype_ = DType::kF32;
  Shape shape_;
  int64_t num_elements_ = 0;
  std::unique_ptr<uint8_t[], Free> data_;
};

// Allocates `bytes` aligned to 64 bytes (one cache line, the widest AVX-512 load).
void* AlignedAlloc(int64_t bytes);
void AlignedFree(void* p);

}  // namespace kiln
