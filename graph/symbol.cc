#include "graph/symbol.h"

#include "graph/parameter.h"

namespace kiln::graph {

const ir::TensorType& Sym::type() const { return tracer->graph().value(id).type; }

Tracer::Tracer(std::string graph_name)
    : graph_(std::make_unique<ir::Graph>(std::move(graph_name))), builder_(*graph_) {}

Sym Tracer::Input(const std::string& name, DType dtype, const Shape& shape) {
  std::string layout = dtype == DType::kF32 ? ir::DefaultLayout(static_cast<int64_t>(shape.size())) : "N";
  return Sym{this, graph_->AddInput(name, ir::TensorType{dtype, shape, layout})};
}

StatusOr<Sym> Tracer::Param(Parameter& p) {
  auto it = params_.find(&p);
  if (it != params_.end()) return Sym{this, it->second};
  ASSIGN_OR_RETURN(Tensor * data, p.Data());
  const Shape& s = data->shape();
  std::string layout = s.size() == 4 ? "OIHW" : s.size() == 2 ? "OI" : s.size() == 1 ? "C" : "";
  ir::TensorType type{DType::kF32, s, layout};
  ir::ValueId v = p.grad_req() == "null" && training_ ? graph_->AddState(p.name(), type)
                                                      : graph_->AddParameter(p.name(), type);
  params_[&p] = v;
  return Sym{this, v};
}

Sym Tracer::DropoutSeed() {
  if (auto v = graph_->FindValue("dropout_seed")) return Sym{this, *v};
  return Sym{this, graph_->AddInput("dropout_seed", ir::TensorType{DType::kS32, {}, ""})};
}

StatusOr<std::vector<Sym>> Tracer::EmitMulti(const std::string& op, const std::vector<Sym>& inputs,
                                             const ir::Attrs& attrs, const std::string& name) {
  std::vector<ir::ValueId> ids;
  for (const Sym& s : inputs) ids.push_back(s.id);
  ASSIGN_OR_RETURN(std::vector<ir::ValueId> vs, builder_.Emit(op, ids, attrs, name));
  std::vector<Sym> out;
  for (ir::ValueId v : vs) {
    if (shape_log_) {
      *shape_log_ << graph_->Producer(v)->name << " " << op << ": " << graph_->value(v).type.ToString() << "\n";
    }
    out.push_back(Sym{this, v});
  }
  return out;
}

StatusOr<Sym> Tracer::Emit(const std::string& op, const std::vector<Sym>& inputs, const ir::Attrs& attrs,
                           const std::string& name) {
  std::vector<ir::ValueId> ids;
  for (const Sym& s : inputs) ids.push_back(s.id);
  ASSIGN_OR_RETURN(ir::ValueId v, builder_.Emit1(op, ids, attrs, name));
  if (shape_log_) {
    *shape_log_ << graph_->Producer(v)->name << " " << op << ": " << graph_->value(v).type.ToString() << "\n";
  }
  return Sym{this, v};
}

}  // namespace kiln::graph
