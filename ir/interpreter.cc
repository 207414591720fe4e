#include "ir/interpreter.h"

namespace kiln::ir {

Status RunReference(const Graph& g, RefEnv& env, bool apply_updates) {
  for (const Value& v : g.values()) {
    if (v.kind == ValueKind::kIntermediate) continue;
    if (v.kind == ValueKind::kConstant && !env.count(v.id)) env[v.id] = ToRef(g.constants().at(v.id));
    auto it = env.find(v.id);
    if (it == env.end()) {
      return InvalidArgument(std::string(ValueKindName(v.kind)) + " %" + v.name + " " + v.type.ToString() +
                             " was not given to the reference interpreter");
    }
    if (it->second.shape != v.type.shape) {
      return InvalidArgument(std::string(ValueKindName(v.kind)) + " %" + v.name + " expects shape " +
                             ShapeToString(v.type.shape) + ", got " + ShapeToString(it->second.shape));
    }
  }
  for (const Node& n : g.nodes()) {
    const OpDef* def = FindOp(n.op);
    if (!def || !def->reference) return Unimplemented(n.op + " \"" + n.name + "\": no reference kernel");
    std::vector<const RefTensor*> in;
    for (ValueId v : n.inputs) in.push_back(&env.at(v));
    std::vector<RefTensor> out;
    for (ValueId v : n.outputs) out.emplace_back(g.value(v).type.shape);
    RETURN_IF_ERROR(def->reference(n, in, out));
    for (size_t i = 0; i < out.size(); ++i) env[n.outputs[i]] = std::move(out[i]);
  }
  if (apply_updates) {
    std::vector<std::pair<ValueId, RefTensor>> staged;
    for (const auto& [target, nv] : g.updates()) staged.emplace_back(target, env.at(nv));
    for (auto& [target, t] : staged) env[target] = std::move(t);
  }
  return OkStatus();
}

RefTensor ToRef(const Tensor& t) {
  RefTensor r(t.shape());
  for (int64_t i = 0; i < t.num_elements(); ++i) {
    r[i] = t.dtype() == DType::kF32 ? static_cast<double>(t.f32()[i]) : static_cast<double>(t.s32()[i]);
  }
  return r;
}

Tensor FromRef(const RefTensor& r, DType dtype) {
  Tensor t(dtype, r.shape);
  for (int64_t i = 0; i < t.num_elements(); ++i) {
    if (dtype == DType::kF32) {
      t.f32()[i] = static_cast<float>(r[i]);
    } else {
      t.s32()[i] = static_cast<int32_t>(r[i]);
    }
  }
  return t;
}

}  // namespace kiln::ir
