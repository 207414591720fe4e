#include "passes/batch_separable.h"

#include <string>
#include <vector>

#include "ir/op_registry.h"
#include "ir/ops/op_util.h"

namespace kiln::passes {

namespace {

std::string Describe(const ir::Graph& g, const ir::Node& n) {
  std::string s = n.op + " \"" + n.name + "\" (";
  for (size_t i = 0; i < n.inputs.size(); ++i) {
    s += (i ? ", " : "") + g.value(n.inputs[i]).name + " " + ShapeToString(g.value(n.inputs[i]).type.shape);
  }
  return s + ")";
}

}  // namespace

Status CheckBatchSeparable(const ir::Graph& g) {
  std::vector<bool> batched(static_cast<size_t>(g.num_values()), false);
  int64_t batch = -1;
  for (const ir::Value& v : g.values()) {
    if (v.kind != ir::ValueKind::kInput) continue;
    if (v.type.shape.empty() || (batch >= 0 && v.type.shape[0] != batch)) {
      return FailedPrecondition("not batch separable: input '" + v.name + "' " + ShapeToString(v.type.shape) +
                                " does not have the batch axis of the other inputs");
    }
    batch = v.type.shape[0];
    batched[static_cast<size_t>(v.id)] = true;
  }
  if (batch < 0) return FailedPrecondition("not batch separable: the graph has no inputs");
  auto is_batched = [&](ir::ValueId v) { return batched[static_cast<size_t>(v)]; };
  auto shape = [&](ir::ValueId v) -> const Shape& { return g.value(v).type.shape; };
  for (const ir::Node& n : g.nodes()) {
    bool any = false;
    for (ir::ValueId v : n.inputs) any = any || is_batched(v);
    if (!any) continue;  // computed from parameters and constants only
    bool ok = false;
    const Shape& out = shape(n.outputs[0]);
    bool out_keeps_batch = !out.empty() && out[0] == batch;
    // The op's rule is a trait of its definition (ir::OpDef::batch_rule).
    const ir::OpDef* def = ir::FindOp(n.op);
    ir::BatchRule rule = def ? def->batch_rule : ir::BatchRule::kMixes;
    if (rule == ir::BatchRule::kPerSampleData) {
      // src batched; weights and bias not; a fused sum operand (input 3) has dst's shape.
      ok = is_batched(n.inputs[0]) && out_keeps_batch;
      for (size_t i = 1; i < n.inputs.size(); ++i) {
        bool sum_operand = i == 3 && shape(n.inputs[i]) == out;
        ok = ok && (!is_batched(n.inputs[i]) || sum_operand);
      }
    } else if (rule == ir::BatchRule::kRowWise) {
      ok = is_batched(n.inputs[0]) && out_keeps_batch;
      for (size_t i = 1; i < n.inputs.size(); ++i) ok = ok && (!is_batched(n.inputs[i]) || shape(n.inputs[i])[0] == batch);
    } else if (rule == ir::BatchRule::kAlongAxis) {
      auto rank = static_cast<int64_t>(shape(n.inputs[0]).size());
      ok = out_keeps_batch && ir::ops::NormalizeAxis(n.attrs.GetInt("axis", -1), rank) > 0;
    } else if (rule == ir::BatchRule::kAlongAxes) {
      auto rank = static_cast<int64_t>(shape(n.inputs[0]).size());
      std::vector<int64_t> axes = n.attrs.GetInts("axes");
      ok = !axes.empty() && out_keeps_batch;
      for (int64_t a : axes) ok = ok && ir::ops::NormalizeAxis(a, rank) > 0;
    } else if (rule == ir::BatchRule::kBroadcasting) {
      ok = out_keeps_batch;
      for (ir::ValueId v : n.inputs) {
        ok = ok && (!is_batched(v) || (shape(v).size() == out.size() && shape(v)[0] == batch));
      }
    } else if (rule == ir::BatchRule::kReshape) {
      ok = out_keeps_batch && shape(n.inputs[0])[0] == batch;
    }
    if (!ok) return FailedPrecondition("not batch separable: " + Describe(g, n) + " mixes the samples of the batch");
    for (ir::ValueId v : n.outputs) batched[static_cast<size_t>(v)] = true;
  }
  for (const auto& [name, v] : g.outputs()) {
    if (!is_batched(v) || shape(v).empty() || shape(v)[0] != batch) {
      return FailedPrecondition("not batch separable: output '" + name + "' " + ShapeToString(shape(v)) +
                                " is not computed per sample");
    }
  }
  return OkStatus();
}

}  // namespace kiln::passes
