#include "graph/lowlevel.h"

#include "passes/autodiff.h"

namespace kiln::graph {

StatusOr<Parameter*> ParameterSet::Add(const std::string& name, const Shape& shape, const Initializer& init) {
  if (by_name_.count(name)) return InvalidArgument("ParameterSet: parameter '" + name + "' already exists");
  for (int64_t d : shape) {
    if (d <= 0) return InvalidArgument("ParameterSet: parameter '" + name + "' needs a known shape, got " + ShapeToString(shape));
  }
  Parameter* p = AddParameter(name, shape);
  p->set_name(name);
  RETURN_IF_ERROR(p->Initialize(init));
  by_name_[name] = p;
  return p;
}

Parameter* ParameterSet::Find(const std::string& name) {
  auto it = by_name_.find(name);
  return it == by_name_.end() ? nullptr : it->second;
}

StatusOr<Sym> ParameterSet::Forward(Sym) {
  return Unimplemented("ParameterSet holds parameters only; it has no forward pass");
}

StatusOr<std::vector<Sym>> Grad(Sym loss, const std::vector<Sym>& wrt) {
  if (wrt.empty()) return InvalidArgument("Grad: no values to differentiate with respect to");
  std::vector<ir::ValueId> ids;
  for (const Sym& s : wrt) {
    if (s.tracer != loss.tracer) {
      return InvalidArgument("Grad: value '" + s.tracer->graph().value(s.id).name + "' belongs to another graph than the loss");
    }
    ids.push_back(s.id);
  }
  ASSIGN_OR_RETURN(auto grads, passes::AppendBackward(loss.tracer->graph(), loss.id, ids));
  std::vector<Sym> out;
  for (ir::ValueId id : ids) out.push_back(Sym{loss.tracer, grads.at(id)});
  return out;
}

Status Update(Sym param, Sym new_value) {
  if (param.tracer != new_value.tracer) return InvalidArgument("Update: the parameter and the new value belong to different graphs");
  ir::Graph& g = param.tracer->graph();
  const ir::Value& p = g.value(param.id);
  if (p.kind != ir::ValueKind::kParameter) {
    return InvalidArgument("Update: '" + p.name + "' is a " + std::string(ir::ValueKindName(p.kind)) +
                           ", not a parameter (use Tracer::Param)");
  }
  const ir::TensorType& nt = g.value(new_value.id).type;
  if (nt.dtype != p.type.dtype || nt.shape != p.type.shape) {
    return InvalidArgument("Update: parameter '" + p.name + "' " + p.type.ToString() + " cannot take new value '" +
                           g.value(new_value.id).name + "' " + nt.ToString());
  }
  for (const auto& [target, v] : g.updates()) {
    if (target == param.id) return InvalidArgument("Update: parameter '" + p.name + "' already has an update");
  }
  g.AddUpdate(param.id, new_value.id);
  return OkStatus();
}

StatusOr<CompiledGraph> CompiledGraph::Compile(Tracer& tracer, nn::Block& params, const CompileOptions& options) {
  CompiledGraph c;
  ASSIGN_OR_RETURN(c.session_, CompileGraph(tracer.TakeGraph(), params, options, &c.text_));
  for (auto& [name, p] : params.CollectParams()) c.params_.push_back(p);
  return c;
}

Status CompiledGraph::Run(const std::map<std::string, const Tensor*>& inputs,
                          const std::map<std::string, Tensor*>& outputs) {
  const runtime::Executable& exe = session_->executable();
  std::vector<const Tensor*> in;
  for (const auto& spec : exe.inputs()) {
    auto it = inputs.find(spec.name);
    if (it == inputs.end()) return InvalidArgument("CompiledGraph::Run: missing input '" + spec.name + "' (" + spec.ToString() + ")");
    in.push_back(it->second);
  }
  for (const auto& [name, t] : inputs) {
    bool known = false;
    for (const auto& spec : exe.inputs()) known = known || spec.name == name;
    if (!known) return InvalidArgument("CompiledGraph::Run: the graph has no input '" + name + "'");
  }
  std::vector<Tensor*> out;
  for (const auto& spec : exe.outputs()) {
    auto it = outputs.find(spec.name);
    out.push_back(it != outputs.end() ? it->second : &scratch_outputs_[spec.name]);
  }
  for (const auto& [name, t] : outputs) {
    bool known = false;
    for (const auto& spec : exe.outputs()) known = known || spec.name == name;
    if (!known) return InvalidArgument("CompiledGraph::Run: the graph has no output '" + name + "'");
  }
  // The session binds the parameters' entries: a TrainStep holding newer values of them
  // writes them back first, by itself (runtime/parameter_store.h).
  return session_->Run(in, out);
}

}  // namespace kiln::graph
