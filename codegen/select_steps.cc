#include "codegen/select_steps.h"

#include <map>
#include <optional>
#include <set>
#include <variant>

#include "ir/verifier.h"
#include "runtime/step_kinds.h"

namespace kiln::codegen {

using runtime::BufferKind;
using runtime::StepDesc;
using runtime::TensorRef;

namespace {

TensorRef Ref(BufferKind kind, int32_t index, const ir::TensorType& t) {
  TensorRef r;
  r.kind = kind;
  r.index = index;
  r.dtype = t.dtype;
  r.dims = t.shape;
  return r;
}

// "<src value id> <geometry>" of a max pool2d / pool2d_backward node; "" for other nodes.
std::string PoolKey(const ir::Node& n) {
  if ((n.op != "pool2d" && n.op != "pool2d_backward") || n.attrs.GetString("kind") != "max") return "";
  ir::ValueId src = n.op == "pool2d" ? n.inputs[0] : n.inputs[1];
  std::string key = std::to_string(src);
  for (const char* k : {"kernel", "stride", "padding_begin", "padding_end"}) key += " " + ShapeToString(n.attrs.GetInts(k));
  return key;
}

class Selection {
 public:
  Selection(const ir::Graph& g, const SelectOptions& options)
      : g_(g), options_(options), buf_(static_cast<size_t>(g.num_values())) {}

  StatusOr<runtime::StepProgram> Run();

 private:
  TensorRef NewBuffer(const ir::TensorType& t, const std::string& name) {
    TensorRef r = Ref(BufferKind::kArena, static_cast<int32_t>(p_.buffers.size()), t);
    p_.buffers.push_back(runtime::BufferDesc{std::max<int64_t>(r.size_bytes(), 1), name, false});
    return r;
  }
  TensorRef& Buf(ir::ValueId v) { return *buf_[static_cast<size_t>(v)]; }
  void Copy(const std::string& name, const TensorRef& src, const TensorRef& dst) {
    StepDesc d;
    d.kind = "copy";
    d.node_name = name;
    d.inputs = {src};
    d.outputs = {dst};
    p_.steps.push_back(std::move(d));
  }

  const ir::Graph& g_;
  SelectOptions options_;
  std::vector<std::optional<TensorRef>> buf_;
  runtime::StepProgram p_;
};

StatusOr<runtime::StepProgram> Selection::Run() {
  RETURN_IF_ERROR(ir::Verify(g_));
  p_.name = g_.name();
  std::map<ir::ValueId, size_t> param_index;
  for (const ir::Value& v : g_.values()) {
    runtime::TensorSpec spec{v.name, v.type.dtype, v.type.shape};
    switch (v.kind) {
      case ir::ValueKind::kInput:
        buf_[static_cast<size_t>(v.id)] = Ref(BufferKind::kInput, static_cast<int32_t>(p_.inputs.size()), v.type);
        p_.inputs.push_back(spec);
        break;
      case ir::ValueKind::kParameter:
      case ir::ValueKind::kState:
        param_index[v.id] = p_.params.size();
        buf_[static_cast<size_t>(v.id)] = Ref(BufferKind::kParam, static_cast<int32_t>(p_.params.size()), v.type);
        p_.params.push_back(spec);
        p_.param_info.push_back(runtime::ParamInfo{v.kind == ir::ValueKind::kState, false});
        break;
      case ir::ValueKind::kConstant:
        buf_[static_cast<size_t>(v.id)] =
            Ref(BufferKind::kConstant, static_cast<int32_t>(p_.constants.size()), v.type);
        p_.constants.push_back(g_.constants().at(v.id));
        break;
      case ir::ValueKind::kIntermediate: break;
    }
  }

  // Graph outputs produced by nodes are written straight into the caller's buffers.
  std::vector<std::pair<ir::ValueId, int32_t>> output_copies;
  for (const auto& [name, v] : g_.outputs()) {
    auto index = static_cast<int32_t>(p_.outputs.size());
    p_.outputs.push_back({name, g_.value(v).type.dtype, g_.value(v).type.shape});
    if (g_.value(v).kind == ir::ValueKind::kIntermediate && !buf_[static_cast<size_t>(v)] &&
        g_.Producer(v)->op != "reshape") {
      buf_[static_cast<size_t>(v)] = Ref(BufferKind::kOutput, index, g_.value(v).type);
    } else {
      output_copies.emplace_back(v, index);
    }
  }

  // In-place updates: the new value shares the parameter's buffer when its producer writes
  // over that parameter (runtime/step_kinds.h in-place pairs); otherwise it is copied back.
  std::vector<std::pair<ir::ValueId, ir::ValueId>> update_copies;
  for (const auto& [target, nv] : g_.updates()) {
    if (auto it = param_index.find(target); it != param_index.end()) p_.param_info[it->second].updated = true;
  }
  for (const auto& [target, nv] : g_.updates()) {
    const ir::Node* p = g_.Producer(nv);
    int in = p ? runtime::UpdateInPlaceInput(p->op, g_.value(nv).output_index) : -1;
    if (p && in >= 0 && in < static_cast<int>(p->inputs.size()) && p->inputs[static_cast<size_t>(in)] == target &&
        !buf_[static_cast<size_t>(nv)]) {
      buf_[static_cast<size_t>(nv)] = buf_[static_cast<size_t>(target)];
    } else {
      update_copies.emplace_back(target, nv);
    }
  }

  std::set<std::string> backward_pools;
  for (const ir::Node& n : g_.nodes()) {
    p_.has_backward = p_.has_backward || n.op.find("_backward") != std::string::npos;
    if (options_.pool_workspace && n.op == "pool2d_backward" && !PoolKey(n).empty()) {
      const Shape& src = g_.value(n.inputs[1]).type.shape;
      if (src.size() >= 2 && src[1] >= options_.pool_workspace_min_channels) backward_pools.insert(PoolKey(n));
    }
  }
  std::map<std::string, TensorRef> workspaces;
  for (const ir::Node& n : g_.nodes()) {
    if (n.op == "reshape" && !buf_[static_cast<size_t>(n.outputs[0])]) {
      // Free: a view of the input's bytes with new dims (assign_layouts makes it dense).
      TensorRef r = Buf(n.inputs[0]);
      r.dims = g_.value(n.outputs[0]).type.shape;
      buf_[static_cast<size_t>(n.outputs[0])] = r;
      continue;
    }
    std::vector<TensorRef> ins, outs;
    for (ir::ValueId v : n.inputs) ins.push_back(Buf(v));
    for (ir::ValueId v : n.outputs) {
      if (!buf_[static_cast<size_t>(v)]) buf_[static_cast<size_t>(v)] = NewBuffer(g_.value(v).type, g_.value(v).name);
      outs.push_back(Buf(v));
    }
    std::string pool_key = PoolKey(n);
    bool writes_workspace = n.op == "pool2d" && backward_pools.count(pool_key) != 0;
    if (writes_workspace) {
      // Sized and laid out by the target in assign_layouts.
      TensorRef ws = NewBuffer(g_.value(n.outputs[0]).type, g_.value(n.outputs[0]).name + ".workspace");
      outs.push_back(ws);
      workspaces[pool_key] = ws;
    }
    if (n.op == "pool2d_backward") {
      if (auto it = workspaces.find(pool_key); it != workspaces.end()) ins.push_back(it->second);
    }
    StepDesc d = MakeStepDesc(n, std::move(ins), std::move(outs));
    if (writes_workspace) d.ints["with_workspace"] = {1};
    p_.steps.push_back(std::move(d));
  }
  for (const auto& [v, index] : output_copies) {
    Copy("copy_to_output_" + p_.outputs[static_cast<size_t>(index)].name, Buf(v),
         Ref(BufferKind::kOutput, index, g_.value(v).type));
  }
  for (const auto& [target, nv] : update_copies) Copy("update_" + g_.value(target).name, Buf(nv), Buf(target));
  return std::move(p_);
}

}  // namespace

StatusOr<runtime::StepProgram> SelectSteps(const ir::Graph& graph, const SelectOptions& options) {
  Selection s(graph, options);
  return s.Run();
}

StepDesc MakeStepDesc(const ir::Node& node, std::vector<TensorRef> inputs, std::vector<TensorRef> outputs) {
  StepDesc d;
  d.kind = node.op;
  d.node_name = node.name;
  for (const auto& [key, v] : node.attrs.map()) {
    if (auto* i = std::get_if<int64_t>(&v)) {
      d.ints[key] = {*i};
    } else if (auto* f = std::get_if<double>(&v)) {
      d.floats[key] = *f;
    } else if (auto* l = std::get_if<std::vector<int64_t>>(&v)) {
      d.ints[key] = *l;
    } else {
      d.strings[key] = std::get<std::string>(v);
    }
  }
  d.inputs = std::move(inputs);
  d.outputs = std::move(outputs);
  return d;
}

}  // namespace kiln::codegen
