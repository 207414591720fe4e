#include "passes/fusion.h"

#include <set>

namespace kiln::passes {

StatusOr<bool> FuseActivation::Run(ir::Graph& g) {
  std::set<ir::ValueId> pinned;  // graph outputs and update values keep their producer
  for (const auto& [name, v] : g.outputs()) pinned.insert(v);
  for (const auto& [target, v] : g.updates()) pinned.insert(v);
  std::vector<std::vector<ir::NodeId>> users = g.ComputeUsers();
  bool changed = false;
  // Index by node id: fusing edits the producer's attributes only, never the schedule.
  std::map<ir::NodeId, size_t> position;
  for (size_t i = 0; i < g.nodes().size(); ++i) position[g.nodes()[i].id] = i;
  for (size_t i = 0; i < g.nodes().size(); ++i) {
    const ir::Node& act = g.nodes()[i];
    if (act.op != "relu" && act.op != "sigmoid" && act.op != "tanh") continue;
    ir::ValueId x = act.inputs[0];
    const ir::Node* p = g.Producer(x);
    if (p == nullptr || (p->op != "conv2d" && p->op != "dense")) continue;
    if (!p->attrs.GetString("activation", "").empty()) continue;
    if (pinned.count(x) || users[static_cast<size_t>(x)].size() != 1) continue;
    ir::ValueId y = act.outputs[0];
    std::string op = act.op;
    g.mutable_nodes()[position.at(p->id)].attrs.Set("activation", op);
    g.ReplaceAllUsesWith(y, x);
    changed = true;
  }
  if (changed) g.RemoveDeadNodes();
  return changed;
}

}  // namespace kiln::passes
