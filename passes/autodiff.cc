#include "passes/autodiff.h"

#include <algorithm>
#include <set>

#include "ir/builder.h"

namespace kiln::passes {

using ir::ValueId;

namespace {

// Sums `grad` over the axes it was broadcast along so it gets `target`'s shape.
StatusOr<ValueId> ReduceToShape(ir::Builder& b, ValueId grad, const ir::TensorType& target, const std::string& name) {
  // Copies: emitting nodes may reallocate the graph's value table.
  const Shape gs = b.type(grad).shape;
  const Shape ts = target.shape;
  if (gs == ts) return grad;
  if (ts.size() > gs.size()) return Internal("gradient " + ShapeToString(gs) + " has lower rank than " + ShapeToString(ts));
  std::vector<int64_t> axes;
  size_t off = gs.size() - ts.size();
  for (size_t i = 0; i < gs.size(); ++i) {
    if (i < off || (ts[i - off] == 1 && gs[i] != 1)) axes.push_back(static_cast<int64_t>(i));
  }
  ASSIGN_OR_RETURN(ValueId r, b.Emit1("reduce_sum", {grad}, ir::Attrs{{"axes", axes}, {"keepdims", int64_t{0}}},
                                      name + "_sum_to"));
  if (b.type(r).shape != ts) {
    ASSIGN_OR_RETURN(r, b.Emit1("reshape", {r}, ir::Attrs{{"shape", ts}}, name + "_sum_to_shape"));
  }
  return r;
}

}  // namespace

StatusOr<std::map<ValueId, ValueId>> AppendBackward(ir::Graph& g, ValueId loss, const std::vector<ValueId>& wrt) {
  ir::Builder b(g);
  const size_t num_forward = g.nodes().size();
  // relevant = depends on some wrt value AND the loss depends on it.
  std::vector<bool> from_wrt(static_cast<size_t>(g.num_values()), false), to_loss(static_cast<size_t>(g.num_values()), false);
  for (ValueId w : wrt) from_wrt[static_cast<size_t>(w)] = true;
  for (size_t i = 0; i < num_forward; ++i) {
    const ir::Node& n = g.nodes()[i];
    bool any = std::any_of(n.inputs.begin(), n.inputs.end(), [&](ValueId v) { return from_wrt[static_cast<size_t>(v)]; });
    if (any) {
      for (ValueId o : n.outputs) from_wrt[static_cast<size_t>(o)] = true;
    }
  }
  to_loss[static_cast<size_t>(loss)] = true;
  for (size_t i = num_forward; i-- > 0;) {
    const ir::Node& n = g.nodes()[i];
    bool any = std::any_of(n.outputs.begin(), n.outputs.end(), [&](ValueId v) { return to_loss[static_cast<size_t>(v)]; });
    if (any) {
      for (ValueId v : n.inputs) to_loss[static_cast<size_t>(v)] = true;
    }
  }
  auto relevant = [&](ValueId v) { return from_wrt[static_cast<size_t>(v)] && to_loss[static_cast<size_t>(v)]; };

  std::map<ValueId, ValueId> grad;
  {
    const ir::TensorType& lt = g.value(loss).type;
    ASSIGN_OR_RETURN(ValueId seed, b.Emit1("fill", {}, ir::Attrs{{"shape", lt.shape}, {"value", 1.0}},
                                           g.value(loss).name + "_head_grad"));
    grad[loss] = seed;
  }
  for (size_t i = num_forward; i-- > 0;) {
    const ir::Node n = g.nodes()[i];  // a copy: emitting nodes may reallocate the node list
    std::vector<ValueId> out_grads;
    bool any_out = false;
    for (ValueId o : n.outputs) {
      auto it = grad.find(o);
      out_grads.push_back(it == grad.end() ? -1 : it->second);
      any_out = any_out || it != grad.end();
    }
    std::vector<bool> needs;
    bool any_in = false;
    for (ValueId v : n.inputs) {
      needs.push_back(relevant(v));
      any_in = any_in || relevant(v);
    }
    if (!any_out || !any_in) continue;
    const ir::OpDef* def = ir::FindOp(n.op);
    if (!def->grad) {
      return InvalidArgument(n.op + " \"" + n.name + "\": the loss depends on its inputs but " + n.op +
                             " has no gradient rule");
    }
    ir::GradCtx ctx(b, n, out_grads, needs);
    RETURN_IF_ERROR(def->grad(ctx));
    for (size_t k = 0; k < n.inputs.size(); ++k) {
      ValueId gk = ctx.input_grads()[k];
      if (!needs[k] || gk < 0) continue;
      ValueId in = n.inputs[k];
      ASSIGN_OR_RETURN(gk, ReduceToShape(b, gk, g.value(in).type, n.name + "_grad" + std::to_string(k)));
      auto it = grad.find(in);
      if (it == grad.end()) {
        grad[in] = gk;
      } else {
        ASSIGN_OR_RETURN(ValueId sum, b.Emit1("add", {it->second, gk}, {}, g.value(in).name + "_grad_sum"));
        it->second = sum;
      }
    }
  }
  std::map<ValueId, ValueId> out;
  for (ValueId w : wrt) {
    auto it = grad.find(w);
    if (it != grad.end()) {
      out[w] = it->second;
    } else {
      ASSIGN_OR_RETURN(ValueId z, b.Emit1("fill", {}, ir::Attrs{{"shape", g.value(w).type.shape}, {"value", 0.0}},
                                          g.value(w).name + "_zero_grad"));
      out[w] = z;
    }
  }
  return out;
}

Status AppendSgdUpdate(ir::Graph& g, const std::map<ValueId, ValueId>& grads, const SgdOptions& o) {
  ir::Builder b(g);
  ValueId lr = g.AddInput(g.UniqueName("lr"), ir::TensorType{DType::kF32, {}, ""});
  ValueId rescale = g.AddInput(g.UniqueName("rescale_grad"), ir::TensorType{DType::kF32, {}, ""});
  std::vector<std::pair<std::string, ValueId>> params;
  for (const auto& [p, gr] : grads) params.emplace_back(g.value(p).name, p);
  std::sort(params.begin(), params.end());
  ir::Attrs attrs{{"wd", o.wd}, {"momentum", o.momentum}, {"clip_gradient", o.clip_gradient}};
  for (const auto& [name, p] : params) {
    std::vector<ValueId> in{p, grads.at(p), lr, rescale};
    ValueId mom = -1;
    if (o.momentum > 0) {
      mom = g.AddState(name + ".momentum", g.value(p).type);
      in.push_back(mom);
    }
    ASSIGN_OR_RETURN(auto outs, b.Emit("sgd_update", in, attrs, name + "_sgd"));
    g.AddUpdate(p, outs[0]);
    if (mom >= 0) g.AddUpdate(mom, outs[1]);
  }
  return OkStatus();
}

Status AppendAdamUpdate(ir::Graph& g, const std::map<ValueId, ValueId>& grads, const AdamOptions& o) {
  ir::Builder b(g);
  ValueId lr = g.AddInput(g.UniqueName("lr"), ir::TensorType{DType::kF32, {}, ""});
  ValueId rescale = g.AddInput(g.UniqueName("rescale_grad"), ir::TensorType{DType::kF32, {}, ""});
  std::vector<std::pair<std::string, ValueId>> params;
  for (const auto& [p, gr] : grads) params.emplace_back(g.value(p).name, p);
  std::sort(params.begin(), params.end());
  ir::Attrs attrs{{"beta1", o.beta1},
                  {"beta2", o.beta2},
                  {"epsilon", o.epsilon},
                  {"wd", o.wd},
                  {"clip_gradient", o.clip_gradient}};
  for (const auto& [name, p] : params) {
    ValueId mean = g.AddState(name + ".mean", g.value(p).type);
    ValueId var = g.AddState(name + ".var", g.value(p).type);
    ASSIGN_OR_RETURN(auto outs, b.Emit("adam_update", {p, grads.at(p), mean, var, lr, rescale}, attrs, name + "_adam"));
    g.AddUpdate(p, outs[0]);
    g.AddUpdate(mean, outs[1]);
    g.AddUpdate(var, outs[2]);
  }
  return OkStatus();
}

StatusOr<bool> BuildTrainingGraph::Run(ir::Graph& g) {
  auto loss = g.FindOutput(loss_output_);
  if (!loss) return NotFound("the graph has no output '" + loss_output_ + "' to differentiate");
  std::vector<ValueId> params = g.ValuesOfKind(ir::ValueKind::kParameter);
  ASSIGN_OR_RETURN(auto grads, AppendBackward(g, *loss, params));
  if (output_gradients_) {
    for (const auto& [p, gr] : grads) g.AddOutput("grad:" + g.value(p).name, gr);
  }
  if (!apply_updates_) return true;
  RETURN_IF_ERROR(adam_ ? AppendAdamUpdate(g, grads, *adam_) : AppendSgdUpdate(g, grads, sgd_));
  return true;
}

}  // namespace kiln::passes
