#include "ir/verifier.h"

#include <set>

#include "ir/op_registry.h"

namespace kiln::ir {

Status Verify(const Graph& g) {
  std::vector<bool> defined(static_cast<size_t>(g.num_values()), false);
  for (const Value& v : g.values()) {
    if (v.kind != ValueKind::kIntermediate) {
      defined[static_cast<size_t>(v.id)] = true;
      if (v.producer != kNoNode) return InvalidArgument("value %" + v.name + " is a graph argument but has a producer");
    }
  }
  std::set<ValueId> produced;
  for (const Node& n : g.nodes()) {
    std::string where = n.op + " \"" + n.name + "\"";
    std::vector<TensorType> in_types;
    for (ValueId in : n.inputs) {
      if (in < 0 || in >= g.num_values()) return InvalidArgument(where + ": input id " + std::to_string(in) + " does not exist");
      if (!defined[static_cast<size_t>(in)]) {
        return InvalidArgument(where + ": input %" + g.value(in).name + " is used before it is defined (schedule order)");
      }
      in_types.push_back(g.value(in).type);
    }
    auto inferred = InferNodeTypes(n, in_types);
    if (!inferred.ok()) return inferred.status();
    if (inferred->size() != n.outputs.size()) {
      return InvalidArgument(where + ": has " + std::to_string(n.outputs.size()) + " outputs, shape inference gives " +
                             std::to_string(inferred->size()));
    }
    for (size_t i = 0; i < n.outputs.size(); ++i) {
      ValueId o = n.outputs[i];
      const Value& v = g.value(o);
      if (!produced.insert(o).second) return InvalidArgument(where + ": value %" + v.name + " has two producers");
      if (v.producer != n.id || v.output_index != static_cast<int32_t>(i)) {
        return InvalidArgument(where + ": value %" + v.name + " does not record this node as its producer");
      }
      if (v.type != (*inferred)[i]) {
        return InvalidArgument(where + ": output %" + v.name + " is stored as " + v.type.ToString() +
                               " but shape inference gives " + (*inferred)[i].ToString());
      }
      defined[static_cast<size_t>(o)] = true;
    }
  }
  for (const auto& [name, v] : g.outputs()) {
    if (v < 0 || v >= g.num_values() || !defined[static_cast<size_t>(v)]) {
      return InvalidArgument("output '" + name + "' refers to an undefined value");
    }
  }
  auto users = g.ComputeUsers();
  std::set<ValueId> targets;
  for (const auto& [target, nv] : g.updates()) {
    const Value& t = g.value(target);
    if (t.kind != ValueKind::kParameter && t.kind != ValueKind::kState) {
      return InvalidArgument("update target %" + t.name + " is a " + std::string(ValueKindName(t.kind)) +
                             ", not a parameter or state");
    }
    if (!targets.insert(target).second) return InvalidArgument("update target %" + t.name + " is updated twice");
    if (nv < 0 || nv >= g.num_values() || !defined[static_cast<size_t>(nv)]) {
      return InvalidArgument("update of %" + t.name + " refers to an undefined value");
    }
    if (g.value(nv).type.shape != t.type.shape || g.value(nv).type.dtype != t.type.dtype) {
      return InvalidArgument("update of %" + t.name + " " + t.type.ToString() + " from %" + g.value(nv).name + " " +
                             g.value(nv).type.ToString() + ": types differ");
    }
    const Node* p = g.Producer(nv);
    if (p) {
      int at = g.ScheduleIndex(p->id);
      for (NodeId u : users[static_cast<size_t>(target)]) {
        if (g.ScheduleIndex(u) > at) {
          return InvalidArgument("update of %" + t.name + ": node \"" + g.nodes()[static_cast<size_t>(g.ScheduleIndex(u))].name +
                                 "\" reads it after the update node \"" + p->name + "\"");
        }
      }
    }
  }
  return OkStatus();
}

}  // namespace kiln::ir
