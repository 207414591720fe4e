#include "runtime/executable.h"

#include <chrono>

namespace kiln::runtime {

Executable::Executable(std::vector<TensorSpec> inputs, std::vector<TensorSpec> outputs, std::vector<TensorSpec> params,
                       std::vector<Tensor> constants, std::vector<std::unique_ptr<Step>> steps, int64_t arena_bytes)
    : inputs_(std::move(inputs)),
      outputs_(std::move(outputs)),
      params_(std::move(params)),
      constants_(std::move(constants)),
      steps_(std::move(steps)),
      arena_bytes_(arena_bytes) {}

int Executable::InputIndex(const std::string& name) const {
  for (size_t i = 0; i < inputs_.size(); ++i) {
    if (inputs_[i].name == name) return static_cast<int>(i);
  }
  return -1;
}

int Executable::OutputIndex(const std::string& name) const {
  for (size_t i = 0; i < outputs_.size(); ++i) {
    if (outputs_[i].name == name) return static_cast<int>(i);
  }
  return -1;
}

std::string Executable::DescribeSteps() const {
  std::string s;
  for (const auto& step : steps_) {
    const StepDesc& d = step->desc();
    s += d.Where() + ":";
    for (const auto& r : d.inputs) s += " " + r.ToString();
    s += " ->";
    for (const auto& r : d.outputs) s += " " + r.ToString();
    s += "\n";
  }
  return s;
}

Session::Session(std::shared_ptr<const Executable> exe, std::vector<void*> params)
    : exe_(std::move(exe)),
      params_(std::move(params)),
      arena_(static_cast<uint8_t*>(exe_->target() ? exe_->target()->AllocateArena(exe_->arena_bytes())
                                                  : AlignedAlloc(exe_->arena_bytes())),
             ArenaDeleter{exe_->target()}) {
  for (const Tensor& t : exe_->constants()) constants_.push_back(t.data());
  step_seconds_.assign(exe_->steps().size(), 0.0);
}

StatusOr<std::unique_ptr<Session>> Session::Create(std::shared_ptr<const Executable> exe, ParameterStore* store) {
  std::map<std::string, Tensor*> bindings;
  if (store) {
    for (const TensorSpec& spec : exe->params()) bindings[spec.name] = store->Find(spec.name);
  }
  return Create(std::move(exe), bindings);
}

StatusOr<std::unique_ptr<Session>> Session::Create(std::shared_ptr<const Executable> exe,
                                                   const std::map<std::string, Tensor*>& bindings) {
  std::vector<void*> params;
  for (const TensorSpec& spec : exe->params()) {
    auto it = bindings.find(spec.name);
    Tensor* t = it == bindings.end() ? nullptr : it->second;
    if (!t) return NotFound("parameter '" + spec.name + "' " + ShapeToString(spec.shape) + " is not in the parameter store");
    if (t->dtype() != spec.dtype || t->shape() != spec.shape) {
      return InvalidArgument("parameter '" + spec.name + "': the graph expects " + std::string(DTypeName(spec.dtype)) +
                             ShapeToString(spec.shape) + " but the store holds " + std::string(DTypeName(t->dtype())) +
                             ShapeToString(t->shape()));
    }
    params.push_back(t->data());
  }
  return std::unique_ptr<Session>(new Session(std::move(exe), std::move(params)));
}

StatusOr<std::unique_ptr<Session>> Session::CreateWithAddresses(std::shared_ptr<const Executable> exe,
                                                                std::vector<void*> param_addresses) {
  if (param_addresses.size() != exe->params().size()) {
    return InvalidArgument("expected " + std::to_string(exe->params().size()) + " parameter addresses, got " +
                           std::to_string(param_addresses.size()));
  }
  for (size_t i = 0; i < param_addresses.size(); ++i) {
    if (!param_addresses[i]) return InvalidArgument("parameter '" + exe->params()[i].name + "' has a null address");
  }
  return std::unique_ptr<Session>(new Session(std::move(exe), std::move(param_addresses)));
}

Status Session::Run(const std::vector<const Tensor*>& inputs, const std::vector<Tensor*>& outputs) {
  const auto& in_specs = exe_->inputs();
  const auto& out_specs = exe_->outputs();
  if (inputs.size() != in_specs.size()) {
    return InvalidArgument("expected " + std::to_string(in_specs.size()) + " inputs, got " + std::to_string(inputs.size()));
  }
  if (outputs.size() != out_specs.size()) {
    return InvalidArgument("expected " + std::to_string(out_specs.size()) + " outputs, got " +
                           std::to_string(outputs.size()));
  }
  std::vector<void*> in_ptrs, out_ptrs;
  for (size_t i = 0; i < inputs.size(); ++i) {
    const Tensor* t = inputs[i];
    const TensorSpec& s = in_specs[i];
    if (!t || t->dtype() != s.dtype || t->shape() != s.shape) {
      return InvalidArgument("input '" + s.name + "' must be " + std::string(DTypeName(s.dtype)) + ShapeToString(s.shape) +
                             ", got " + (t ? std::string(DTypeName(t->dtype())) + ShapeToString(t->shape()) : "null"));
    }
    in_ptrs.push_back(const_cast<void*>(t->data()));
  }
  for (size_t i = 0; i < outputs.size(); ++i) {
    Tensor* t = outputs[i];
    const TensorSpec& s = out_specs[i];
    if (!t) return InvalidArgument("output '" + s.name + "' is null");
    if (t->empty() || t->dtype() != s.dtype || t->shape() != s.shape) *t = Tensor(s.dtype, s.shape);
    out_ptrs.push_back(t->data());
  }
  return RunWithAddresses(in_ptrs, out_ptrs);
}

Status Session::RunWithAddresses(const std::vector<void*>& inputs, const std::vector<void*>& outputs) {
  if (inputs.size() != exe_->inputs().size() || outputs.size() != exe_->outputs().size()) {
    return InvalidArgument("expected " + std::to_string(exe_->inputs().size()) + " input and " +
                           std::to_string(exe_->outputs().size()) + " output addresses, got " +
                           std::to_string(inputs.size()) + " and " + std::to_string(outputs.size()));
  }
  if (!prepacked_) RETURN_IF_ERROR(Repack());
  ExecContext ctx;
  ctx.device = exe_->device();
  ctx.arena = arena_.get();
  ctx.inputs = inputs.data();
  ctx.outputs = outputs.data();
  ctx.params = params_.data();
  ctx.constants = constants_.data();
  const auto& steps = exe_->steps();
  // Set before the steps run: a run that fails part-way may have updated resident copies.
  if (!exe_->writeback_steps().empty()) resident_newer_ = true;
  for (size_t i = 0; i < steps.size(); ++i) {
    auto start = profiling_ ? std::chrono::steady_clock::now() : std::chrono::steady_clock::time_point();
    Status s = steps[i]->Run(ctx);
    if (!s.ok()) return s;
    if (profiling_) {
      step_seconds_[i] += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    }
  }
  return OkStatus();
}

Status Session::WriteBack() {
  if (!resident_newer_ || !prepacked_) return OkStatus();
  ExecContext ctx;
  ctx.device = exe_->device();
  ctx.arena = arena_.get();
  ctx.params = params_.data();
  ctx.constants = constants_.data();
  for (const auto& step : exe_->writeback_steps()) RETURN_IF_ERROR(step->Run(ctx));
  resident_newer_ = false;
  return OkStatus();
}

Status Session::Repack() {
  ExecContext ctx;
  ctx.device = exe_->device();
  ctx.arena = arena_.get();
  ctx.params = params_.data();
  ctx.constants = constants_.data();
  for (const auto& step : exe_->prepack_steps()) RETURN_IF_ERROR(step->Run(ctx));
  prepacked_ = true;
  resident_newer_ = false;
  return OkStatus();
}

}  // namespace kiln::runtime
