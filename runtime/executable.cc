#include "runtime/executable.h"

#include <chrono>
#include <cstdio>
#include <new>

#include "runtime/check_numerics.h"

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
  for (const auto& step : exe_->steps()) {
    for (const TensorRef& r : step->desc().outputs) writes_params_ = writes_params_ || r.kind == BufferKind::kParam;
  }
  writes_params_ = writes_params_ || !exe_->writeback_steps().empty();
  step_seconds_.assign(exe_->steps().size(), 0.0);
}

StatusOr<std::unique_ptr<Session>> Session::Create(std::shared_ptr<const Executable> exe, ParameterStore* store) {
  std::map<std::string, std::shared_ptr<ParamEntry>> entries;
  if (store) {
    for (const TensorSpec& spec : exe->params()) {
      if (auto e = store->entry(spec.name)) entries[spec.name] = e;
    }
  }
  return Create(std::move(exe), entries);
}

StatusOr<std::unique_ptr<Session>> Session::Create(std::shared_ptr<const Executable> exe,
                                                   const std::map<std::string, std::shared_ptr<ParamEntry>>& entries) {
  std::map<std::string, Tensor*> bindings;
  std::vector<std::shared_ptr<ParamEntry>> bound;
  for (const TensorSpec& spec : exe->params()) {
    auto it = entries.find(spec.name);
    if (it == entries.end() || !it->second || it->second->value().empty()) continue;  // NotFound below
    bindings[spec.name] = &it->second->value();
    bound.push_back(it->second);
  }
  ASSIGN_OR_RETURN(auto session, Create(std::move(exe), bindings));
  session->BindEntries(std::move(bound));
  return session;
}

void Session::BindEntries(std::vector<std::shared_ptr<ParamEntry>> entries) {
  entries_ = std::move(entries);
  seen_versions_.assign(entries_.size(), 0);
  for (size_t i = 0; i < entries_.size(); ++i) seen_versions_[i] = entries_[i]->version();
}

Session::~Session() {
  if (!holding_) return;
  Status s = Release();
  if (!s.ok()) std::fprintf(stderr, "kiln: session: writing resident parameters back failed: %s\n", s.ToString().c_str());
}

Status Session::SyncBindings() {
  if (entries_.empty()) return OkStatus();
  for (const auto& e : entries_) {
    if (e->holder() != nullptr && e->holder() != this) RETURN_IF_ERROR(e->holder()->Release());
  }
  bool stale = false;
  for (size_t i = 0; i < entries_.size(); ++i) stale = stale || entries_[i]->version() != seen_versions_[i];
  if (stale) {
    // Someone wrote a dense value since this session last ran: re-read it (prepack). A
    // holder released its copies before any write, so nothing newer is dropped.
    Invalidate();
    for (size_t i = 0; i < entries_.size(); ++i) seen_versions_[i] = entries_[i]->version();
  }
  return OkStatus();
}

Status Session::Release() {
  Status s = WriteBack();
  for (const auto& e : entries_) {
    if (e->holder() == this) e->set_holder(nullptr);
  }
  holding_ = false;
  return s;
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
    if (t->empty() || t->dtype() != s.dtype || t->shape() != s.shape) {
      try {
        *t = Tensor(s.dtype, s.shape);
      } catch (const std::bad_alloc&) {
        return InvalidArgument("cannot allocate output '" + s.name + "' " + std::string(DTypeName(s.dtype)) +
                               ShapeToString(s.shape) + " (" + std::to_string(NumElements(s.shape) * DTypeSizeBytes(s.dtype)) +
                               " bytes)");
      }
    }
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
  RETURN_IF_ERROR(SyncBindings());
  if (!prepacked_) RETURN_IF_ERROR(Repack());
  if (!entries_.empty() && writes_params_) {
    // The run updates parameters in place (dense or resident): other sessions' copies of
    // them become stale, this one's stay current.
    for (size_t i = 0; i < entries_.size(); ++i) {
      entries_[i]->BumpVersion();
      seen_versions_[i] = entries_[i]->version();
    }
  }
  if (!entries_.empty() && !exe_->writeback_steps().empty()) {
    // From now on the resident copies are newer than the dense values.
    for (const auto& e : entries_) e->set_holder(this);
    holding_ = true;
  }
  ExecContext ctx;
  ctx.device = exe_->device();
  ctx.arena = arena_.get();
  ctx.inputs = inputs.data();
  ctx.outputs = outputs.data();
  ctx.params = params_.data();
  ctx.constants = constants_.data();
  const auto& steps = exe_->steps();
  if (check_numerics_) {
    const auto& specs = exe_->inputs();
    for (size_t i = 0; i < specs.size(); ++i) {
      RETURN_IF_ERROR(CheckInputNumerics(specs[i].name, specs[i].dtype, specs[i].shape, inputs[i]));
    }
  }
  // Set before the steps run: a run that fails part-way may have updated resident copies.
  if (!exe_->writeback_steps().empty()) resident_newer_ = true;
  for (size_t i = 0; i < steps.size(); ++i) {
    auto start = profiling_ ? std::chrono::steady_clock::now() : std::chrono::steady_clock::time_point();
    Status s = steps[i]->Run(ctx);
    if (!s.ok()) return s;
    if (check_numerics_) RETURN_IF_ERROR(CheckStepNumerics(steps[i]->desc(), i, steps.size(), ctx, param_names_));
    if (profiling_) {
      step_seconds_[i] += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    }
  }
  return OkStatus();
}

void Session::SetCheckNumerics(bool on) {
  check_numerics_ = on;
  param_names_.clear();
  if (on) {
    for (const auto& p : exe_->params()) param_names_.push_back(p.name);
  }
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
