#include "passes/fusion.h"

#include <set>

namespace kiln::passes {

StatusOr<bool> FuseActivation::Run(ir::Graph& g) {
  std::set<ir::ValueId> pinned = OutputAndUpdateValues(g);  // they keep their producer
  std::vector<std::vector<ir::NodeId>> users = g.ComputeUsers();
  bool changed = false;
  // Fusing edits the producer's attributes only, never the schedule (ScheduleIndex stays valid).
  for (size_t i = 0; i < g.nodes().size(); ++i) {
    const ir::Node& act = g.nodes()[i];
    if (act.op == "relu_backward") {
      // relu_backward(pool2d_backward(dy, y), y) -> pool2d_backward(dy, y) {activation=relu}.
      ir::ValueId d = act.inputs[0], y = act.inputs[1];
      const ir::Node* p = g.Producer(d);
      if (p == nullptr || p->op != "pool2d_backward" || p->inputs[1] != y) continue;
      if (!Supports("pool2d_backward", "relu")) continue;
      if (!p->attrs.GetString("activation", "").empty()) continue;
      if (pinned.count(d) || users[static_cast<size_t>(d)].size() != 1) continue;
      g.mutable_nodes()[static_cast<size_t>(g.ScheduleIndex(p->id))].attrs.Set("activation", std::string("relu"));
      g.ReplaceAllUsesWith(act.outputs[0], d);
      changed = true;
      continue;
    }
    if (act.op != "relu" && act.op != "sigmoid" && act.op != "tanh" && act.op != "clip") continue;
    ir::ValueId x = act.inputs[0];
    const ir::Node* p = g.Producer(x);
    // conv2d / dense take any of the three; inference batch_norm a ReLU (oneDNN's
    // fuse_norm_relu flag).
    // (clip, e.g. relu6, as oneDNN's eltwise_clip post-op with its bounds.)
    if (p == nullptr || (p->op != "conv2d" && p->op != "dense" && !(p->op == "batch_norm" && act.op == "relu"))) {
      continue;
    }
    if (!Supports(p->op, act.op)) continue;
    if (!p->attrs.GetString("activation", "").empty()) continue;
    if (pinned.count(x) || users[static_cast<size_t>(x)].size() != 1) continue;
    ir::ValueId y = act.outputs[0];
    std::string op = act.op;
    ir::Attrs& attrs = g.mutable_nodes()[static_cast<size_t>(g.ScheduleIndex(p->id))].attrs;
    attrs.Set("activation", op);
    if (op == "clip") {
      attrs.Set("activation_min", act.attrs.GetFloat("a_min", 0.0));
      attrs.Set("activation_max", act.attrs.GetFloat("a_max", 6.0));
    }
    g.ReplaceAllUsesWith(y, x);
    changed = true;
  }
  if (changed) g.RemoveDeadNodes();
  return changed;
}

StatusOr<bool> FuseSum::Run(ir::Graph& g) {
  std::set<ir::ValueId> pinned = OutputAndUpdateValues(g);
  std::vector<std::vector<ir::NodeId>> users = g.ComputeUsers();
  // Schedule position of each value's definition (-1 for graph arguments).
  auto defined_at = [&](ir::ValueId v) -> long {
    const ir::Node* p = g.Producer(v);
    return p == nullptr ? -1 : static_cast<long>(g.ScheduleIndex(p->id));
  };
  bool changed = false;
  for (size_t i = 0; i < g.nodes().size(); ++i) {
    const ir::Node& add = g.nodes()[i];
    if (add.op != "add") continue;
    for (int side = 0; side < 2; ++side) {
      ir::ValueId x = add.inputs[static_cast<size_t>(side)], r = add.inputs[static_cast<size_t>(1 - side)];
      const ir::Node* conv = g.Producer(x);
      if (conv == nullptr || conv->op != "conv2d" || conv->inputs.size() != 3) continue;
      if (!Supports("conv2d", "sum")) continue;
      if (!conv->attrs.GetString("activation", "").empty()) continue;
      if (x == r || pinned.count(x) || users[static_cast<size_t>(x)].size() != 1) continue;
      if (g.value(r).type.shape != g.value(x).type.shape || g.value(r).type.dtype != DType::kF32) continue;
      size_t conv_pos = static_cast<size_t>(g.ScheduleIndex(conv->id));
      if (defined_at(r) >= static_cast<long>(conv_pos)) continue;
      ir::ValueId y = add.outputs[0];
      g.mutable_nodes()[conv_pos].inputs.push_back(r);
      g.ReplaceAllUsesWith(y, x);
      changed = true;
      break;
    }
  }
  if (changed) g.RemoveDeadNodes();
  return changed;
}

}  // namespace kiln::passes
