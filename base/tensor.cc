#include "base/tensor.h"

#include <cstdlib>
#include <new>

namespace kiln {

void* AlignedAlloc(int64_t bytes) {
  size_t rounded = static_cast<size_t>((bytes + 63) / 64 * 64);
  if (rounded == 0) rounded = 64;
  void* p = std::aligned_alloc(64, rounded);
  if (!p) throw std::bad_alloc();
  return p;
}

void AlignedFree(void* p) { std::free(p); }

void Tensor::Free::operator()(void* p) const { AlignedFree(p); }

Tensor::Tensor(DType dtype, Shape shape)
    : dtype_(dtype), shape_(std::move(shape)), num_elements_(NumElements(shape_)) {
  data_.reset(static_cast<uint8_t*>(AlignedAlloc(size_bytes())));
  std::memset(data_.get(), 0, static_cast<size_t>(size_bytes()));
}

Tensor::Tensor(const Tensor& other) : dtype_(other.dtype_), shape_(other.shape_), num_elements_(other.num_elements_) {
  if (other.data_) {
    data_.reset(static_cast<uint8_t*>(AlignedAlloc(size_bytes())));
    std::memcpy(data_.get(), other.data_.get(), static_cast<size_t>(size_bytes()));
  }
}

Tensor& Tensor::operator=(const Tensor& other) {
  if (this != &other) *this = Tensor(other);
  return *this;
}

float* Tensor::f32() {
  KILN_CHECK(dtype_ == DType::kF32, "tensor is not f32");
  return reinterpret_cast<float*>(data_.get());
}
const float* Tensor::f32() const {
  KILN_CHECK(dtype_ == DType::kF32, "tensor is not f32");
  return reinterpret_cast<const float*>(data_.get());
}
int32_t* Tensor::s32() {
  KILN_CHECK(dtype_ == DType::kS32, "tensor is not s32");
  return reinterpret_cast<int32_t*>(data_.get());
}
const int32_t* Tensor::s32() const {
  KILN_CHECK(dtype_ == DType::kS32, "tensor is not s32");
  return reinterpret_cast<const int32_t*>(data_.get());
}

StatusOr<Tensor> Tensor::Reshaped(Shape shape) const {
  if (NumElements(shape) != num_elements_) {
    return InvalidArgument("cannot reshape " + ShapeToString(shape_) + " to " + ShapeToString(shape));
  }
  Tensor t(*this);
  t.shape_ = std::move(shape);
  return t;
}

}  // namespace kiln
