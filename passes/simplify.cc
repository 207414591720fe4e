#include "passes/simplify.h"

#include <map>
#include <tuple>

#include "ir/interpreter.h"
#include "ir/op_registry.h"

namespace kiln::passes {

StatusOr<bool> CommonSubexpressionElimination::Run(ir::Graph& g) {
  std::map<std::tuple<std::string, std::vector<ir::ValueId>, std::string>, size_t> seen;
  bool changed = false;
  for (size_t i = 0; i < g.nodes().size(); ++i) {
    const ir::Node& n = g.nodes()[i];
    auto key = std::make_tuple(n.op, n.inputs, ir::AttrsToString(n.attrs));
    auto [it, inserted] = seen.emplace(key, i);
    if (inserted) continue;
    const ir::Node& first = g.nodes()[it->second];
    std::vector<ir::ValueId> from = n.outputs, to = first.outputs;
    for (size_t k = 0; k < from.size(); ++k) g.ReplaceAllUsesWith(from[k], to[k]);
    changed = true;
  }
  if (changed) g.RemoveDeadNodes();
  return changed;
}

StatusOr<bool> ConstantFolding::Run(ir::Graph& g) {
  bool changed = false;
  for (bool again = true; again;) {
    again = false;
    for (size_t i = 0; i < g.nodes().size(); ++i) {
      const ir::Node& n = g.nodes()[i];
      bool all_const = true;
      for (ir::ValueId v : n.inputs) all_const = all_const && g.value(v).kind == ir::ValueKind::kConstant;
      if (!all_const) continue;
      const ir::OpDef* def = ir::FindOp(n.op);
      if (def == nullptr || !def->reference) continue;
      int64_t bytes = 0;
      for (ir::ValueId o : n.outputs) bytes += g.value(o).type.size_bytes();
      if (bytes > max_bytes_) continue;
      std::vector<ir::RefTensor> in_refs;
      for (ir::ValueId v : n.inputs) in_refs.push_back(ir::ToRef(g.constants().at(v)));
      std::vector<const ir::RefTensor*> ins;
      for (const auto& r : in_refs) ins.push_back(&r);
      std::vector<ir::RefTensor> outs;
      for (ir::ValueId o : n.outputs) outs.emplace_back(g.value(o).type.shape);
      Status s = def->reference(n, ins, outs);
      if (!s.ok()) return s.WithContext("constant folding " + n.op + " \"" + n.name + "\"");
      std::vector<ir::ValueId> outputs = n.outputs;
      std::string name = n.name;
      for (size_t k = 0; k < outputs.size(); ++k) {
        // Copies, not a reference: AddConstant grows the value table and would leave a
        // `const Value&` dangling (a heap-use-after-free under AddressSanitizer).
        const ir::Value v = g.value(outputs[k]);
        ir::ValueId c = g.AddConstant(g.UniqueName(v.name + ".folded"), ir::FromRef(outs[k], v.type.dtype));
        g.mutable_value(c).type.layout = v.type.layout;
        g.ReplaceAllUsesWith(outputs[k], c);
      }
      g.RemoveDeadNodes();
      changed = again = true;
      break;  // the node list changed: rescan
    }
  }
  return changed;
}

}  // namespace kiln::passes
