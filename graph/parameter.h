// Parameters and initializers, as Gluon's (GLUON_SEMANTICS.md section 1).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <random>
#include <string>

#include "base/status.h"
#include "base/tensor.h"
#include "runtime/parameter_store.h"

namespace kiln::graph {

// The generator every initializer and the DataLoader default draw from. Seed it for
// reproducible runs. (MXNet's own generator is not reproduced bit for bit; the
// distributions are the same.)
std::mt19937_64& GlobalRng();
void Seed(uint64_t seed);

class Initializer {
 public:
  virtual ~Initializer() = default;
  // Fills `t` (f32). Errors: InvalidArgument naming `name` when the initializer does not
  // apply to the shape (e.g. Xavier on a vector).
  virtual Status Fill(const std::string& name, Tensor& t, std::mt19937_64& rng) const = 0;
  virtual std::shared_ptr<Initializer> Clone() const = 0;
};

// Xavier/Glorot: hw = prod(shape[2:]); fan_in = shape[1]*hw, fan_out = shape[0]*hw;
// factor = (fan_in+fan_out)/2 ("avg"), fan_in ("in") or fan_out ("out");
// scale = sqrt(magnitude/factor); "uniform" draws U(-scale, scale), "gaussian" N(0, scale).
// Source: MXNet initializer.py Xavier (defaults uniform/avg/3); Glorot & Bengio 2010.
class Xavier final : public Initializer {
 public:
  explicit Xavier(double magnitude = 3.0, std::string rnd_type = "uniform", std::string factor_type = "avg")
      : magnitude_(magnitude), rnd_type_(std::move(rnd_type)), factor_type_(std::move(factor_type)) {}
  Status Fill(const std::string& name, Tensor& t, std::mt19937_64& rng) const override;
  std::shared_ptr<Initializer> Clone() const override { return std::make_shared<Xavier>(*this); }

 private:
  double magnitude_;
  std::string rnd_type_, factor_type_;
};

// U(-scale, scale); Gluon's default global initializer is Uniform(0.07).
class Uniform final : public Initializer {
 public:
  explicit Uniform(double scale = 0.07) : scale_(scale) {}
  Status Fill(const std::string& name, Tensor& t, std::mt19937_64& rng) const override;
  std::shared_ptr<Initializer> Clone() const override { return std::make_shared<Uniform>(*this); }

 private:
  double scale_;
};

// N(0, sigma) (sigma is the standard deviation).
class Normal final : public Initializer {
 public:
  explicit Normal(double sigma = 0.01) : sigma_(sigma) {}
  Status Fill(const std::string& name, Tensor& t, std::mt19937_64& rng) const override;
  std::shared_ptr<Initializer> Clone() const override { return std::make_shared<Normal>(*this); }

 private:
  double sigma_;
};

// Every element `value` (Zero() for biases, as Gluon's bias_initializer='zeros').
class Constant final : public Initializer {
 public:
  explicit Constant(double value = 0.0) : value_(value) {}
  Status Fill(const std::string& name, Tensor& t, std::mt19937_64& rng) const override;
  std::shared_ptr<Initializer> Clone() const override { return std::make_shared<Constant>(*this); }

 private:
  double value_;
};
inline std::shared_ptr<Initializer> Zero() { return std::make_shared<Constant>(0.0); }

// A trainable f32 tensor with deferred shape: dims of 0 are unknown until the first forward
// pass infers them (Gluon's in_channels=0 / in_units=0).
class Parameter {
 public:
  // `init` is the parameter's own initializer (wins over the global one); null = global.
  Parameter(std::string local_name, Shape shape, std::shared_ptr<Initializer> init = nullptr)
      : local_name_(std::move(local_name)), name_(local_name_), shape_(std::move(shape)), init_(std::move(init)) {}

  // Structural name ("0.weight"), set by Block::CollectParams on the root block.
  const std::string& name() const { return name_; }
  void set_name(std::string name) { name_ = std::move(name); }
  const std::string& local_name() const { return local_name_; }
  // Gluon's grad_req: "write" (the default: trained, the optimizer updates it) or "null"
  // (no gradient and no optimizer update: BatchNorm's running statistics, MXNet's auxiliary
  // states, and gamma/beta of BatchNorm(scale=false / center=false)). Saved and loaded
  // with the others.
  const std::string& grad_req() const { return grad_req_; }
  void set_grad_req(std::string grad_req) { grad_req_ = std::move(grad_req); }
  const Shape& shape() const { return shape_; }
  bool shape_known() const;
  bool initialized() const { return entry_ && !entry_->value().empty(); }

  // Fills in unknown dims from `shape` (called by layers during tracing); once the shape is
  // complete, finishes a deferred initialization. Errors: InvalidArgument when a known dim
  // differs ("shape incompatible, expected [6,0,5,5] vs inferred [6,3,5,5]").
  Status SetShape(const Shape& shape);

  // Initializes with the parameter's own initializer, else `global`. With unknown dims the
  // initialization is deferred until SetShape completes the shape. An initialized
  // parameter is left alone unless `force_reinit`.
  Status Initialize(const Initializer& global, bool force_reinit = false);

  // The value, for reading or writing in place (runtime::ParamEntry::Mutable: a session
  // holding a newer resident copy writes it back first, and sessions re-read the value
  // before their next run). Errors: FailedPrecondition, with Gluon's wording, when
  // initialization was deferred and no forward pass has run yet, or Initialize was never
  // called; the holder's write-back error.
  StatusOr<Tensor*> Data();
  // The value without checks and without syncing (null if not initialized): for binding
  // the buffer's address, not for reading values.
  Tensor* data_or_null() { return initialized() ? &entry_->value() : nullptr; }
  // The entry that owns the value (runtime/parameter_store.h): dense value, version and
  // residency; sessions bind it. Null until initialized.
  const std::shared_ptr<runtime::ParamEntry>& entry() const { return entry_; }
  // Replaces the value; the shape must match the known dims (a 0 dim, still to be
  // inferred, takes the value's). Errors: InvalidArgument for another shape, a value with a
  // dim < 1 or a dtype other than f32; the holder's write-back error.
  Status SetData(Tensor value);

  // Writes a session's newer resident copy back into the dense value, if a compiled
  // training step holds one (TrainStep with resident parameters); Data(), SetData() and
  // Initialize() do it themselves. Not thread-safe (as Gluon's parameters).
  // Errors: the write-back's.
  Status Sync() { return entry_ ? entry_->Sync() : OkStatus(); }

 private:
  std::string local_name_, name_;
  std::string grad_req_ = "write";
  Shape shape_;
  std::shared_ptr<Initializer> init_;
  std::shared_ptr<Initializer> deferred_;  // set while waiting for the shape
  std::shared_ptr<runtime::ParamEntry> entry_;  // the one owner of the value
};

}  // namespace kiln::graph
