#include "passes/elementwise_fusion.h"

#include <algorithm>
#include <cstdio>
#include <map>
#include <set>

#include "ir/fused_expr.h"
#include "ir/op_registry.h"

namespace kiln::passes {
namespace {

// Fusable: the op defines its elementwise expression (ir::OpDef::elementwise).
bool IsElementwise(const std::string& op) {
  const ir::OpDef* def = ir::FindOp(op);
  return def != nullptr && def->elementwise != nullptr;
}
bool IsReduce(const std::string& op) { return op == "reduce_sum" || op == "reduce_mean"; }

bool AllF32(const ir::Graph& g, const ir::Node& n) {
  for (ir::ValueId v : n.inputs) {
    if (g.value(v).type.dtype != DType::kF32) return false;
  }
  for (ir::ValueId v : n.outputs) {
    if (g.value(v).type.dtype != DType::kF32) return false;
  }
  return n.outputs.size() == 1;
}

}  // namespace

StatusOr<bool> ElementwiseFusion::Run(ir::Graph& g) {
  std::set<ir::ValueId> pinned = OutputAndUpdateValues(g);
  std::vector<std::vector<ir::NodeId>> users = g.ComputeUsers();
  std::set<ir::NodeId> assigned;
  struct Rewrite {
    size_t pos;
    std::vector<ir::ValueId> inputs;
    std::string expr;
  };
  std::vector<Rewrite> rewrites;

  for (size_t ri = g.nodes().size(); ri-- > 0;) {
    const ir::Node& root = g.nodes()[ri];
    if (assigned.count(root.id) || !AllF32(g, root)) continue;
    bool reduce = IsReduce(root.op);
    if (!reduce && (!IsElementwise(root.op) || root.op == "fill")) continue;
    Shape iter = reduce ? g.value(root.inputs[0]).type.shape : g.value(root.outputs[0]).type.shape;
    int64_t iter_n = NumElements(iter);
    std::set<ir::NodeId> group = {root.id};
    // Grow backwards: a producer joins when every reader of its output is in the group.
    bool grew = true;
    while (grew) {
      grew = false;
      for (ir::NodeId id : std::vector<ir::NodeId>(group.begin(), group.end())) {
        const ir::Node& n = g.nodes()[static_cast<size_t>(g.ScheduleIndex(id))];
        for (ir::ValueId v : n.inputs) {
          const ir::Node* p = g.Producer(v);
          if (p == nullptr || group.count(p->id) || assigned.count(p->id)) continue;
          if (!IsElementwise(p->op) || !AllF32(g, *p) || pinned.count(v)) continue;
          if (p->op != "fill" && p->op != "broadcast_to" && g.value(v).type.num_elements() != iter_n) continue;
          bool all_in = true;
          for (ir::NodeId u : users[static_cast<size_t>(v)]) all_in = all_in && group.count(u);
          if (!all_in) continue;
          group.insert(p->id);
          grew = true;
        }
      }
    }
    int compute = 0;
    for (ir::NodeId id : group) compute += g.nodes()[static_cast<size_t>(g.ScheduleIndex(id))].op != "fill";
    if (compute < 2) continue;
    // Members in schedule order; build the expression.
    std::vector<size_t> members;
    for (ir::NodeId id : group) members.push_back(static_cast<size_t>(g.ScheduleIndex(id)));
    std::sort(members.begin(), members.end());
    std::vector<std::string> st;
    std::map<ir::ValueId, int> index;  // value -> expression value number
    std::vector<ir::ValueId> inputs;
    std::vector<Shape> input_shapes;
    auto operand = [&](ir::ValueId v) -> int {
      auto it = index.find(v);
      if (it != index.end()) return it->second;
      inputs.push_back(v);
      input_shapes.push_back(g.value(v).type.shape);
      st.push_back("in " + std::to_string(inputs.size() - 1));
      return index[v] = static_cast<int>(st.size()) - 1;
    };
    auto emit = [&](const std::string& s) {
      st.push_back(s);
      return static_cast<int>(st.size()) - 1;
    };
    auto num = [](int i) { return std::to_string(i); };
    std::string reduce_stmt;
    for (size_t pos : members) {
      const ir::Node& n = g.nodes()[pos];
      if (IsReduce(n.op)) {
        std::vector<int64_t> axes;
        int64_t rank = static_cast<int64_t>(iter.size());
        for (int64_t a : n.attrs.GetInts("axes")) axes.push_back(a < 0 ? a + rank : a);
        std::sort(axes.begin(), axes.end());
        std::string list;
        for (size_t i = 0; i < axes.size(); ++i) list += (i ? "," : "") + std::to_string(axes[i]);
        operand(n.inputs[0]);
        reduce_stmt = std::string("reduce ") + (n.op == "reduce_sum" ? "sum" : "mean") + (list.empty() ? "" : " " + list) +
                      (n.attrs.GetInt("keepdims") ? " keepdims" : "");
        continue;
      }
      // The op's own expression (ir::OpDef::elementwise) over its operands' statements.
      struct Emitter final : ir::ElementwiseEmitter {
        std::function<int(const std::string&)> emit;
        int Emit(const std::string& statement) override { return emit(statement); }
      } emitter;
      emitter.emit = emit;
      std::vector<int> args;
      if (n.op != "fill") {
        for (ir::ValueId v : n.inputs) args.push_back(operand(v));
      }
      int r = ir::FindOp(n.op)->elementwise(emitter, n, args);
      index[n.outputs[0]] = r;
    }
    if (inputs.empty() || inputs.size() > 16) continue;
    // The root's value must be the last statement.
    ir::ValueId root_value = reduce ? root.inputs[0] : root.outputs[0];
    int rv = index.at(root_value);
    if (rv != static_cast<int>(st.size()) - 1) emit("add " + num(rv) + " " + num(emit("const 0")));
    std::string shape;
    for (size_t i = 0; i < iter.size(); ++i) shape += (i ? "," : "") + std::to_string(iter[i]);
    std::string text = "iter " + shape;
    for (const std::string& s : st) text += "; " + s;
    if (!reduce_stmt.empty()) text += "; " + reduce_stmt;
    auto parsed = ir::fused::ParseExpr(text, input_shapes);
    if (!parsed.ok()) return Internal("fuse_elementwise: bad expression for node \"" + root.name + "\": " +
                                      parsed.status().message() + " in \"" + text + "\"");
    for (ir::NodeId id : group) assigned.insert(id);
    rewrites.push_back({ri, inputs, ir::fused::PrintExpr(*parsed)});
  }
  for (const Rewrite& r : rewrites) {
    ir::Node& n = g.mutable_nodes()[r.pos];
    std::string layout = g.value(n.outputs[0]).type.layout;
    n.op = "fused_elementwise";
    n.inputs = r.inputs;
    n.attrs = ir::Attrs{{"expr", r.expr}, {"layout", layout}};
  }
  if (!rewrites.empty()) g.RemoveDeadNodes();
  return !rewrites.empty();
}

}  // namespace kiln::passes
