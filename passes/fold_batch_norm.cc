#include "passes/fold_batch_norm.h"

#include <algorithm>
#include <map>
#include <set>

#include "ir/builder.h"

namespace kiln::passes {

namespace {

// A parameter no update of the graph writes.
bool IsConstantParameter(const ir::Graph& g, ir::ValueId v, const std::set<ir::ValueId>& updated) {
  return g.value(v).kind == ir::ValueKind::kParameter && !updated.count(v);
}

}  // namespace

StatusOr<bool> FoldBatchNorm::Run(ir::Graph& g) {
  std::set<ir::ValueId> pinned = OutputAndUpdateValues(g);
  std::set<ir::ValueId> updated;
  for (const auto& [target, value] : g.updates()) updated.insert(target);
  std::vector<std::vector<ir::NodeId>> users = g.ComputeUsers();
  size_t old_nodes = g.nodes().size();
  ir::Builder b(g);
  // (batch_norm node id, convolution node id, W', b') per fold; applied after the scan so
  // the scan's node references stay valid while the builder appends.
  struct Fold {
    ir::NodeId bn, conv;
    ir::ValueId weight, bias;
    size_t first, end;  // the fold's nodes: positions [first, end) of the schedule
  };
  std::vector<Fold> folds;
  for (size_t i = 0; i < old_nodes; ++i) {
    const ir::Node bn = g.nodes()[i];
    if (bn.op != "batch_norm" || bn.inputs.size() != 5) continue;
    const ir::Node* conv_ptr = g.Producer(bn.inputs[0]);
    if (conv_ptr == nullptr || conv_ptr->op != "conv2d") continue;
    const ir::Node conv = *conv_ptr;
    if (conv.inputs.size() > 3 || !conv.attrs.GetString("activation", "").empty()) continue;
    ir::ValueId x = conv.outputs[0];
    if (pinned.count(x) || users[static_cast<size_t>(x)].size() != 1) continue;
    bool constant = true;
    for (size_t k = 1; k < conv.inputs.size(); ++k) constant &= IsConstantParameter(g, conv.inputs[k], updated);
    for (size_t k = 1; k < 5; ++k) constant &= IsConstantParameter(g, bn.inputs[k], updated);
    if (!constant) continue;
    const ir::ValueId w = conv.inputs[1], scale = bn.inputs[1], shift = bn.inputs[2], mean = bn.inputs[3],
                      var = bn.inputs[4];
    const Shape wshape = b.type(w).shape;
    const int64_t channels = wshape[0];
    const std::string base = bn.name + ".fold";
    const size_t first_new = g.nodes().size();
    Tensor eps(DType::kF32, {channels});
    std::fill(eps.f32(), eps.f32() + channels, static_cast<float>(bn.attrs.GetFloat("epsilon", 1e-5)));
    ir::ValueId eps_v = g.AddConstant(g.UniqueName(base + ".epsilon"), std::move(eps));
    ASSIGN_OR_RETURN(ir::ValueId v_eps, b.Emit1("add", {var, eps_v}, {}, base + ".var_eps"));
    ASSIGN_OR_RETURN(ir::ValueId stddev, b.Emit1("sqrt", {v_eps}, {}, base + ".std"));
    ASSIGN_OR_RETURN(ir::ValueId s, b.Emit1("div", {scale, stddev}, {}, base + ".scale"));
    Shape per_out(wshape.size(), 1);
    per_out[0] = channels;
    ASSIGN_OR_RETURN(ir::ValueId s_o, b.Emit1("reshape", {s}, ir::Attrs{{"shape", per_out}}, base + ".scale_oihw"));
    ASSIGN_OR_RETURN(ir::ValueId w2, b.Emit1("mul", {w, s_o}, {}, base + ".weight"));
    ir::ValueId centered;
    if (conv.inputs.size() == 3) {
      ASSIGN_OR_RETURN(centered, b.Emit1("sub", {conv.inputs[2], mean}, {}, base + ".centered"));
    } else {
      ASSIGN_OR_RETURN(centered, b.Emit1("neg", {mean}, {}, base + ".centered"));
    }
    ASSIGN_OR_RETURN(ir::ValueId scaled, b.Emit1("mul", {centered, s}, {}, base + ".bias_scaled"));
    ASSIGN_OR_RETURN(ir::ValueId b2, b.Emit1("add", {scaled, shift}, {}, base + ".bias"));
    folds.push_back({bn.id, conv.id, w2, b2, first_new, g.nodes().size()});
  }
  if (folds.empty()) return false;
  for (const Fold& f : folds) {
    ir::Node& conv = g.mutable_nodes()[static_cast<size_t>(g.ScheduleIndex(f.conv))];
    conv.inputs.resize(3);
    conv.inputs[1] = f.weight;
    conv.inputs[2] = f.bias;
    const ir::Node& bn = g.nodes()[static_cast<size_t>(g.ScheduleIndex(f.bn))];
    std::string act = bn.attrs.GetString("activation", "");
    ir::ValueId y = bn.outputs[0], x = conv.outputs[0];
    if (!act.empty()) conv.attrs.Set("activation", act);
    g.ReplaceAllUsesWith(y, x);
  }
  // Each fold's nodes read only parameters and constants: they go right before their
  // convolution, so a folded weight lives only until its convolution (or its prepack
  // reorder) reads it.
  std::map<size_t, const Fold*> before;  // convolution position -> its fold
  for (const Fold& f : folds) before[static_cast<size_t>(g.ScheduleIndex(f.conv))] = &f;
  std::vector<size_t> order;
  for (size_t i = 0; i < old_nodes; ++i) {
    if (auto it = before.find(i); it != before.end()) {
      for (size_t k = it->second->first; k < it->second->end; ++k) order.push_back(k);
    }
    order.push_back(i);
  }
  g.PermuteSchedule(order);
  g.RemoveDeadNodes();
  return true;
}

}  // namespace kiln::passes
