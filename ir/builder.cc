#include "ir/builder.h"

namespace kiln::ir {

StatusOr<std::vector<ValueId>> Builder::Emit(const std::string& op, const std::vector<ValueId>& inputs,
                                             const Attrs& attrs, const std::string& name) {
  const OpDef* def = FindOp(op);
  if (!def) return NotFound("unknown op '" + op + "'");
  Node probe;
  probe.op = op;
  probe.name = graph_.UniqueName(name.empty() ? op : name);
  probe.inputs = inputs;
  probe.attrs = attrs;
  std::vector<TensorType> in_types;
  for (ValueId v : inputs) {
    if (v < 0 || v >= graph_.num_values()) {
      return InvalidArgument(op + " \"" + probe.name + "\": input value id " + std::to_string(v) + " does not exist");
    }
    in_types.push_back(graph_.value(v).type);
  }
  ASSIGN_OR_RETURN(std::vector<TensorType> out_types, InferNodeTypes(probe, in_types));
  Node& n = graph_.AppendNode(op, probe.name, inputs, attrs, out_types);
  return n.outputs;
}

StatusOr<ValueId> Builder::Emit1(const std::string& op, const std::vector<ValueId>& inputs, const Attrs& attrs,
                                 const std::string& name) {
  ASSIGN_OR_RETURN(std::vector<ValueId> outs, Emit(op, inputs, attrs, name));
  if (outs.size() != 1) return Internal(op + " has " + std::to_string(outs.size()) + " outputs, expected 1");
  return outs[0];
}

StatusOr<std::vector<ValueId>> GradCtx::Emit(const std::string& op, const std::vector<ValueId>& inputs,
                                             const Attrs& attrs, const std::string& suffix) {
  auto r = b_.Emit(op, inputs, attrs, node_.name + "_" + suffix);
  if (!r.ok()) return Internal("gradient rule of " + node_.op + " \"" + node_.name + "\": " + r.status().message());
  return r;
}

StatusOr<ValueId> GradCtx::Emit1(const std::string& op, const std::vector<ValueId>& inputs, const Attrs& attrs,
                                 const std::string& suffix) {
  ASSIGN_OR_RETURN(std::vector<ValueId> outs, Emit(op, inputs, attrs, suffix));
  return outs.at(0);
}

}  // namespace kiln::ir
