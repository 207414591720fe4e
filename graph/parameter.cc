#include "graph/parameter.h"

#include <cmath>

namespace kiln::graph {

std::mt19937_64& GlobalRng() {
  static std::mt19937_64 rng(0);
  return rng;
}

void Seed(uint64_t seed) { GlobalRng().seed(seed); }

Status Xavier::Fill(const std::string& name, Tensor& t, std::mt19937_64& rng) const {
  const Shape& s = t.shape();
  if (s.size() < 2) {
    return InvalidArgument("Xavier initializer cannot be applied to vector " + name + " " + ShapeToString(s) +
                           ". It requires at least 2D.");
  }
  double hw = 1;
  for (size_t i = 2; i < s.size(); ++i) hw *= static_cast<double>(s[i]);
  double fan_in = static_cast<double>(s[1]) * hw, fan_out = static_cast<double>(s[0]) * hw;
  double factor;
  if (factor_type_ == "avg") {
    factor = (fan_in + fan_out) / 2.0;
  } else if (factor_type_ == "in") {
    factor = fan_in;
  } else if (factor_type_ == "out") {
    factor = fan_out;
  } else {
    return InvalidArgument("Xavier: factor_type must be avg, in or out, got '" + factor_type_ + "'");
  }
  double scale = std::sqrt(magnitude_ / factor);
  if (rnd_type_ == "uniform") {
    std::uniform_real_distribution<float> d(static_cast<float>(-scale), static_cast<float>(scale));
    for (int64_t i = 0; i < t.num_elements(); ++i) t.f32()[i] = d(rng);
  } else if (rnd_type_ == "gaussian") {
    std::normal_distribution<float> d(0.f, static_cast<float>(scale));
    for (int64_t i = 0; i < t.num_elements(); ++i) t.f32()[i] = d(rng);
  } else {
    return InvalidArgument("Xavier: rnd_type must be uniform or gaussian, got '" + rnd_type_ + "'");
  }
  return OkStatus();
}

Status Uniform::Fill(const std::string&, Tensor& t, std::mt19937_64& rng) const {
  std::uniform_real_distribution<float> d(static_cast<float>(-scale_), static_cast<float>(scale_));
  for (int64_t i = 0; i < t.num_elements(); ++i) t.f32()[i] = d(rng);
  return OkStatus();
}

Status Normal::Fill(const std::string&, Tensor& t, std::mt19937_64& rng) const {
  std::normal_distribution<float> d(0.f, static_cast<float>(sigma_));
  for (int64_t i = 0; i < t.num_elements(); ++i) t.f32()[i] = d(rng);
  return OkStatus();
}

Status Constant::Fill(const std::string&, Tensor& t, std::mt19937_64&) const {
  for (int64_t i = 0; i < t.num_elements(); ++i) t.f32()[i] = static_cast<float>(value_);
  return OkStatus();
}

bool Parameter::shape_known() const {
  if (shape_.empty()) return false;
  for (int64_t d : shape_) {
    if (d <= 0) return false;
  }
  return true;
}

Status Parameter::SetShape(const Shape& shape) {
  bool ok = shape.size() == shape_.size();
  for (size_t i = 0; ok && i < shape.size(); ++i) ok = shape_[i] == 0 || shape_[i] == shape[i];
  if (!ok) {
    return InvalidArgument("parameter '" + name_ + "': shape incompatible, expected " + ShapeToString(shape_) +
                           " vs inferred " + ShapeToString(shape));
  }
  shape_ = shape;
  if (deferred_ && !initialized()) {
    auto init = std::move(deferred_);
    deferred_.reset();
    return Initialize(*init);
  }
  return OkStatus();
}

Status Parameter::Initialize(const Initializer& global, bool force_reinit) {
  if (initialized() && !force_reinit) return OkStatus();
  RETURN_IF_ERROR(Sync());
  const Initializer& init = init_ ? *init_ : global;
  if (!shape_known()) {
    deferred_ = init.Clone();
    return OkStatus();
  }
  Tensor t(DType::kF32, shape_);
  RETURN_IF_ERROR(init.Fill(name_, t, GlobalRng()));
  if (entry_) return entry_->Write(std::move(t));  // same buffer when the shape agrees
  entry_ = std::make_shared<runtime::ParamEntry>(std::move(t));
  return OkStatus();
}

StatusOr<Tensor*> Parameter::Data() {
  if (initialized()) return entry_->Mutable();
  if (deferred_) {
    return FailedPrecondition("Parameter '" + name_ + "' " + ShapeToString(shape_) +
                              " has not been initialized yet because initialization was deferred. Actual "
                              "initialization happens during the first forward pass. Please pass one batch of data "
                              "through the network before accessing Parameters.");
  }
  return FailedPrecondition("Parameter '" + name_ + "' has not been initialized. Call Initialize() on the block "
                            "(Block::Initialize) before the first forward pass.");
}

Status Parameter::SetData(Tensor value) {
  RETURN_IF_ERROR(Sync());
  for (int64_t d : value.shape()) {
    if (d < 1) {
      return InvalidArgument("parameter '" + name_ + "': SetData got " + ShapeToString(value.shape()) +
                             ", a value with no elements (every dim must be >= 1; expected " + ShapeToString(shape_) +
                             ", 0 = inferred from the first batch)");
    }
  }
  RETURN_IF_ERROR(SetShape(value.shape()));
  if (value.dtype() != DType::kF32) return InvalidArgument("parameter '" + name_ + "' must be f32");
  deferred_.reset();
  if (entry_) return entry_->Write(std::move(value));  // same buffer when the shape agrees
  entry_ = std::make_shared<runtime::ParamEntry>(std::move(value));
  return OkStatus();
}

}  // namespace kiln::graph
