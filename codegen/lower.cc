#include "codegen/lower.h"

#include <chrono>
#include <map>
#include <numeric>
#include <set>
#include <variant>

#include "ir/op_registry.h"
#include "ir/verifier.h"

namespace kiln::codegen {

using runtime::BufferKind;
using runtime::StepDesc;
using runtime::TensorRef;

namespace {

constexpr int64_t kAlignmentBytes = 64;
// Largest parameter (bytes) whose optimizer update GroupUpdates may delay into a group.
constexpr int64_t kGroupMaxBytes = 256 * 1024;

TensorRef Ref(BufferKind kind, int32_t index, int64_t offset, const ir::TensorType& t) {
  TensorRef r;
  r.kind = kind;
  r.index = index;
  r.offset = offset;
  r.dtype = t.dtype;
  r.dims = t.shape;
  return r;
}

// For in-place updates: which input of `op` output `k` may overwrite.
int InplaceInputOf(const std::string& op, int k) {
  if (op == "sgd_update") return k == 0 ? 0 : k == 1 ? 4 : -1;
  if (op == "adam_update") return k == 0 ? 0 : k == 1 ? 2 : k == 2 ? 3 : -1;
  return -1;
}

// "<src value id> <geometry>" of a max pool2d / pool2d_backward node; "" for other nodes.
std::string PoolKey(const ir::Node& n) {
  if ((n.op != "pool2d" && n.op != "pool2d_backward") || n.attrs.GetString("kind") != "max") return "";
  ir::ValueId src = n.op == "pool2d" ? n.inputs[0] : n.inputs[1];
  std::string key = std::to_string(src);
  for (const char* k : {"kernel", "stride", "padding_begin", "padding_end"}) key += " " + ShapeToString(n.attrs.GetInts(k));
  return key;
}

// The lowering's state. Arena tensors first live in virtual buffers (TensorRef::index is
// the buffer id, offset 0) so that memory planning can place them once every step's
// operands are known; Finish() rewrites them to arena offsets.
class Lowering {
 public:
  Lowering(const ir::Graph& g, const runtime::StepFactory& factory, const LowerOptions& options)
      : g_(g), factory_(factory), options_(options), buf_(static_cast<size_t>(g.num_values())) {}

  StatusOr<std::shared_ptr<runtime::Executable>> Run(LowerStats* stats);

 private:
  // A new virtual arena buffer for a tensor of type `t` in `layout` (`bytes` when blocked).
  TensorRef NewBuffer(const ir::TensorType& t, const std::string& layout = "", int64_t bytes = 0) {
    TensorRef r = Ref(BufferKind::kArena, static_cast<int32_t>(buffer_bytes_.size()), 0, t);
    r.layout = layout;
    r.layout_bytes = layout.empty() ? 0 : bytes;
    buffer_bytes_.push_back(std::max<int64_t>(r.size_bytes(), 1));
    return r;
  }
  TensorRef& Buf(ir::ValueId v) { return *buf_[static_cast<size_t>(v)]; }

  // `v` in `layout`: its own buffer, or a reorder of it (made once per value and layout).
  StatusOr<TensorRef> InLayout(ir::ValueId v, const std::string& layout, int64_t bytes);
  // Appends a step (planning its scratch).
  Status AddStep(StepDesc desc, bool in_place_capable = false);
  Status LowerNode(const ir::Node& n);
  Status AddCopy(const std::string& name, const TensorRef& src, const TensorRef& dst);
  // Merges runs of consecutive update steps with the same kind, attributes and
  // hyper-parameter operands (lr, rescale_grad) into "<kind>_group" steps.
  void GroupUpdates();
  // Plans the arena and rewrites every arena TensorRef; returns the arena size.
  StatusOr<int64_t> Finish(LowerStats* stats);

  const ir::Graph& g_;
  const runtime::StepFactory& factory_;
  LowerOptions options_;
  std::vector<std::optional<TensorRef>> buf_;
  std::map<std::pair<ir::ValueId, std::string>, TensorRef> reordered_;
  // Max pooling forward/backward pairs (same source value and geometry): keys of the
  // backward nodes, and the workspace buffers the forward steps wrote.
  std::set<std::string> backward_pools_;
  // The graph has backward ops: layouts favour the backward pass (ChooseLayouts hint).
  bool training_ = false;
  // Constant parameters (LowerOptions::constant_params): prepack reorders and the buffers
  // they write, live for the whole run.
  std::set<ir::ValueId> updated_;
  std::set<int32_t> pinned_;
  std::vector<StepDesc> prepack_descs_;
  // Resident parameters (LowerOptions::resident_params): value -> its resident buffer; the
  // parameters some step read in their dense bound buffer (these cannot become resident);
  // updated value -> the parameter it replaces in place; the write-back reorders.
  std::map<ir::ValueId, TensorRef> resident_;
  std::set<ir::ValueId> dense_read_;
  std::map<ir::ValueId, ir::ValueId> update_target_;
  std::vector<StepDesc> writeback_descs_;
  std::map<std::string, TensorRef> workspaces_;
  std::vector<int64_t> buffer_bytes_;
  std::vector<StepDesc> descs_;
  std::vector<bool> in_place_capable_;
  int num_reorders_ = 0;
};

StatusOr<TensorRef> Lowering::InLayout(ir::ValueId v, const std::string& layout, int64_t bytes) {
  const TensorRef home = Buf(v);
  if (home.layout == layout) {
    if (home.kind == BufferKind::kParam) dense_read_.insert(v);
    return home;
  }
  auto key = std::make_pair(v, layout);
  if (auto it = reordered_.find(key); it != reordered_.end()) return it->second;
  TensorRef dst = NewBuffer(g_.value(v).type, layout, bytes);
  ir::Node n;
  n.op = "reorder";
  n.name = g_.value(v).name + "." + (layout.empty() ? std::string("dense") : layout);
  if (options_.resident_params && home.kind == BufferKind::kParam && !layout.empty() && updated_.count(v) &&
      !dense_read_.count(v)) {
    // The resident copy becomes the value's home for the rest of the graph and across
    // runs: filled once per session, written back on request, never reused by the plan.
    pinned_.insert(dst.index);
    prepack_descs_.push_back(MakeStepDesc(n, {home}, {dst}));
    ir::Node back;
    back.op = "reorder";
    back.name = g_.value(v).name + ".writeback";
    writeback_descs_.push_back(MakeStepDesc(back, {dst}, {home}));
    resident_[v] = dst;
    buf_[static_cast<size_t>(v)] = dst;
    ++num_reorders_;
    return dst;
  }
  if (options_.constant_params && g_.value(v).kind == ir::ValueKind::kParameter && !updated_.count(v)) {
    // Once per session: the buffer stays live for the whole run (no scratch: a reorder
    // without its slice uses the per-thread fallback).
    pinned_.insert(dst.index);
    prepack_descs_.push_back(MakeStepDesc(n, {home}, {dst}));
  } else {
    RETURN_IF_ERROR(AddStep(MakeStepDesc(n, {home}, {dst})));
  }
  ++num_reorders_;
  reordered_.emplace(key, dst);
  return dst;
}

Status Lowering::AddStep(StepDesc desc, bool in_place_capable) {
  ASSIGN_OR_RETURN(int64_t scratch, factory_.ScratchBytes(desc));
  if (scratch > 0) desc.scratch.push_back(NewBuffer(ir::TensorType{DType::kF32, {(scratch + 3) / 4}, ""}));
  descs_.push_back(std::move(desc));
  in_place_capable_.push_back(in_place_capable);
  return OkStatus();
}

Status Lowering::AddCopy(const std::string& name, const TensorRef& src, const TensorRef& dst) {
  ir::Node n;
  n.name = name;
  if (src.dense() && dst.dense()) {
    n.op = "reshape";  // a plain copy between dense buffers
    n.attrs.Set("shape", dst.dims);
  } else {
    n.op = "reorder";
    ++num_reorders_;
  }
  return AddStep(MakeStepDesc(n, {src}, {dst}));
}

Status Lowering::LowerNode(const ir::Node& n) {
  if (n.op == "reshape" && !buf_[static_cast<size_t>(n.outputs[0])]) {
    // Free: same bytes, new dims (of the dense form).
    ASSIGN_OR_RETURN(TensorRef r, InLayout(n.inputs[0], "", 0));
    r.dims = g_.value(n.outputs[0]).type.shape;
    buf_[static_cast<size_t>(n.outputs[0])] = r;
    return OkStatus();
  }
  std::vector<TensorRef> ins;
  for (ir::ValueId v : n.inputs) ins.push_back(Buf(v));
  std::vector<TensorRef> outs;
  for (ir::ValueId v : n.outputs) outs.push_back(Ref(BufferKind::kArena, -1, 0, g_.value(v).type));
  // Max pooling in a training graph: the forward step keeps its workspace for the backward.
  std::string pool_key = PoolKey(n);
  bool writes_workspace = n.op == "pool2d" && backward_pools_.count(pool_key) != 0;
  std::optional<TensorRef> reads_workspace;
  if (n.op == "pool2d_backward") {
    if (auto it = workspaces_.find(pool_key); it != workspaces_.end()) reads_workspace = it->second;
  }
  if (writes_workspace) outs.push_back(Ref(BufferKind::kArena, -1, 0, g_.value(n.outputs[0]).type));
  if (reads_workspace) ins.push_back(*reads_workspace);
  auto make_desc = [&](std::vector<TensorRef> in, std::vector<TensorRef> out) {
    StepDesc d = MakeStepDesc(n, std::move(in), std::move(out));
    if (writes_workspace) d.ints["with_workspace"] = {1};
    return d;
  };
  runtime::StepFactory::Layouts layouts;
  if (options_.blocked_layouts) {
    StepDesc query = make_desc(ins, outs);
    if (training_) query.ints["layout_for_training"] = {1};
    auto chosen = factory_.ChooseLayouts(query);
    if (!chosen.ok()) return chosen.status().WithContext("choosing layouts for " + n.op + " \"" + n.name + "\"");
    layouts = std::move(chosen).value();
  } else {
    layouts.inputs.assign(ins.size(), "");
    layouts.input_bytes.assign(ins.size(), 0);
    layouts.outputs.assign(outs.size(), "");
    layouts.output_bytes.assign(outs.size(), 0);
  }
  for (size_t i = 0; i < n.inputs.size(); ++i) {
    ASSIGN_OR_RETURN(ins[i], InLayout(n.inputs[i], layouts.inputs[i], layouts.input_bytes[i]));
  }
  if (writes_workspace) {
    outs.back() = NewBuffer(g_.value(n.outputs[0]).type, layouts.outputs.back(), layouts.output_bytes.back());
    workspaces_[pool_key] = outs.back();
  }
  // Outputs bound to caller buffers (graph outputs, in-place parameter updates) are dense:
  // a blocked result goes to the arena first and is reordered into them after the step.
  std::vector<std::pair<TensorRef, TensorRef>> after;
  for (size_t k = 0; k < n.outputs.size(); ++k) {
    ir::ValueId v = n.outputs[k];
    const ir::TensorType& t = g_.value(v).type;
    auto target = update_target_.find(v);
    auto resident = target == update_target_.end() ? resident_.end() : resident_.find(target->second);
    if (resident != resident_.end()) {
      // An in-place update of a resident parameter writes its resident copy.
      if (layouts.outputs[k] == resident->second.layout) {
        outs[k] = resident->second;
      } else {
        outs[k] = NewBuffer(t, layouts.outputs[k], layouts.output_bytes[k]);
        after.emplace_back(outs[k], resident->second);
      }
      buf_[static_cast<size_t>(v)] = resident->second;
    } else if (buf_[static_cast<size_t>(v)]) {
      if (layouts.outputs[k].empty()) {
        outs[k] = Buf(v);
      } else {
        outs[k] = NewBuffer(t, layouts.outputs[k], layouts.output_bytes[k]);
        after.emplace_back(outs[k], Buf(v));
      }
    } else {
      outs[k] = NewBuffer(t, layouts.outputs[k], layouts.output_bytes[k]);
      buf_[static_cast<size_t>(v)] = outs[k];
    }
  }
  const ir::OpDef* def = ir::FindOp(n.op);
  RETURN_IF_ERROR(AddStep(make_desc(std::move(ins), std::move(outs)), def != nullptr && def->inplace_on_input0));
  for (const auto& [src, dst] : after) RETURN_IF_ERROR(AddCopy(n.name + ".to_dense", src, dst));
  return OkStatus();
}

void Lowering::GroupUpdates() {
  // Only small updates are grouped: delaying an update keeps its gradient alive, and the
  // step saved (a few microseconds) is not worth holding a large gradient longer (the
  // schedule_updates pass puts each update right after its gradient to free it early).
  auto groupable = [](const StepDesc& d) {
    return (d.kind == "sgd_update" || d.kind == "adam_update") && d.inputs[0].size_bytes() <= kGroupMaxBytes;
  };
  // Updates group when kind, attributes and the hyper-parameter operands (lr, rescale_grad:
  // inputs 2, 3 of sgd_update, 4, 5 of adam_update) agree.
  auto key = [](const StepDesc& d) {
    size_t first = d.kind == "sgd_update" ? 2 : 4;
    std::string k = d.kind + "|" + d.inputs[first].ToString() + "|" + d.inputs[first + 1].ToString() + "|" +
                    std::to_string(d.inputs.size());
    for (const auto& [name, v] : d.ints) k += "|" + name + ShapeToString(v);
    for (const auto& [name, v] : d.floats) k += "|" + name + "=" + std::to_string(v);
    for (const auto& [name, v] : d.strings) k += "|" + name + "=" + v;
    return k;
  };
  auto buffer = [](const TensorRef& r) { return std::make_pair(static_cast<int>(r.kind), r.index); };
  // An update may be delayed past step `x` when x neither reads what the update writes
  // (the parameter and its state) nor writes what the update reads.
  auto independent = [&](const StepDesc& update, const StepDesc& x) {
    for (const TensorRef& w : update.outputs) {
      for (const auto* refs : {&x.inputs, &x.outputs}) {
        for (const TensorRef& r : *refs) {
          if (buffer(r) == buffer(w)) return false;
        }
      }
    }
    for (const TensorRef& in : update.inputs) {
      for (const TensorRef& r : x.outputs) {
        if (buffer(r) == buffer(in)) return false;
      }
    }
    return true;
  };
  std::vector<StepDesc> out;
  std::vector<bool> out_in_place;
  std::vector<StepDesc> pending;  // updates of the open group, in order
  std::string pending_key;
  auto flush = [&]() {
    if (pending.empty()) return;
    if (pending.size() == 1) {
      out.push_back(std::move(pending[0]));
    } else {
      StepDesc group;
      group.kind = pending[0].kind + "_group";
      group.node_name = pending[0].node_name + "+" + std::to_string(pending.size() - 1);
      group.ints = pending[0].ints;
      group.ints["group_size"] = {static_cast<int64_t>(pending.size())};
      group.floats = pending[0].floats;
      group.strings = pending[0].strings;
      for (const StepDesc& d : pending) {
        group.inputs.insert(group.inputs.end(), d.inputs.begin(), d.inputs.end());
        group.outputs.insert(group.outputs.end(), d.outputs.begin(), d.outputs.end());
      }
      out.push_back(std::move(group));
    }
    out_in_place.push_back(false);
    pending.clear();
  };
  for (size_t i = 0; i < descs_.size(); ++i) {
    StepDesc& d = descs_[i];
    if (groupable(d) && d.scratch.empty()) {
      if (!pending.empty() && key(d) != pending_key) flush();
      pending_key = key(d);
      pending.push_back(std::move(d));
      continue;
    }
    bool ok = true;
    for (const StepDesc& u : pending) ok = ok && independent(u, d);
    if (!ok) flush();
    out.push_back(std::move(d));
    out_in_place.push_back(in_place_capable_[i]);
  }
  flush();
  descs_ = std::move(out);
  in_place_capable_ = std::move(out_in_place);
}

StatusOr<int64_t> Lowering::Finish(LowerStats* stats) {
  size_t nb = buffer_bytes_.size();
  std::vector<BufferLifetime> life(nb);
  std::vector<bool> used(nb, false);
  for (size_t b = 0; b < nb; ++b) life[b].bytes = buffer_bytes_[b];
  auto touch = [&](const TensorRef& r, int step) {
    if (r.kind != BufferKind::kArena) return;
    auto b = static_cast<size_t>(r.index);
    if (!used[b]) {
      life[b].first_step = life[b].last_step = step;
      used[b] = true;
    }
    life[b].first_step = std::min(life[b].first_step, step);
    life[b].last_step = std::max(life[b].last_step, step);
  };
  for (size_t i = 0; i < descs_.size(); ++i) {
    for (const auto* refs : {&descs_[i].inputs, &descs_[i].outputs, &descs_[i].scratch}) {
      for (const TensorRef& r : *refs) touch(r, static_cast<int>(i));
    }
  }
  for (int32_t b : pinned_) {
    used[static_cast<size_t>(b)] = true;
    life[static_cast<size_t>(b)].first_step = 0;
    life[static_cast<size_t>(b)].last_step = std::max<int>(0, static_cast<int>(descs_.size()) - 1);
  }
  // In-place reuse: an output takes over its input 0's buffer when that buffer is last
  // read by this step, has the same size and layout, and the output's buffer starts here.
  std::vector<size_t> parent(nb);
  std::iota(parent.begin(), parent.end(), 0);
  auto root = [&](size_t b) {
    while (parent[b] != b) b = parent[b];
    return b;
  };
  int in_place = 0;
  if (options_.plan_memory) {
    for (size_t i = 0; i < descs_.size(); ++i) {
      const StepDesc& d = descs_[i];
      if (!in_place_capable_[i] || d.inputs.empty() || d.outputs.empty()) continue;
      const TensorRef &in = d.inputs[0], &out = d.outputs[0];
      if (in.kind != BufferKind::kArena || out.kind != BufferKind::kArena) continue;
      size_t a = root(static_cast<size_t>(in.index)), b = root(static_cast<size_t>(out.index));
      if (a == b || in.layout != out.layout || in.offset != 0 || life[a].bytes != life[b].bytes) continue;
      if (pinned_.count(static_cast<int32_t>(a)) || pinned_.count(static_cast<int32_t>(b))) continue;
      if (life[a].last_step != static_cast<int>(i) || life[b].first_step != static_cast<int>(i)) continue;
      // Another operand of this step in buffer a would also be overwritten while read.
      bool shared = false;
      for (size_t j = 1; j < d.inputs.size(); ++j) {
        shared |= d.inputs[j].kind == BufferKind::kArena && root(static_cast<size_t>(d.inputs[j].index)) == a;
      }
      if (shared) continue;
      parent[b] = a;
      life[a].last_step = std::max(life[a].last_step, life[b].last_step);
      ++in_place;
    }
  }
  // Pinned buffers (prepacked constant weights, resident training parameters) hold
  // parameter data for the session's lifetime: they go in a region after the planned
  // transient part, so the plan and its report cover the run's own tensors.
  std::vector<int> slot(nb, -1);
  std::vector<BufferLifetime> planned;
  for (size_t b = 0; b < nb; ++b) {
    if (!used[b] || root(b) != b || pinned_.count(static_cast<int32_t>(b))) continue;
    slot[b] = static_cast<int>(planned.size());
    planned.push_back(life[b]);
  }
  MemoryPlan plan = options_.plan_memory ? PlanMemory(planned, kAlignmentBytes) : NaivePlan(planned, kAlignmentBytes);
  RETURN_IF_ERROR(CheckPlan(planned, plan, kAlignmentBytes));
  auto aligned = [](int64_t bytes) { return (bytes + kAlignmentBytes - 1) / kAlignmentBytes * kAlignmentBytes; };
  std::map<size_t, int64_t> pinned_offsets;
  int64_t pinned_bytes = 0;
  for (int32_t b : pinned_) {
    pinned_offsets[static_cast<size_t>(b)] = aligned(plan.arena_bytes) + pinned_bytes;
    pinned_bytes += aligned(life[static_cast<size_t>(b)].bytes);
  }
  for (std::vector<StepDesc>* list : {&descs_, &prepack_descs_, &writeback_descs_}) {
    for (StepDesc& d : *list) {
      for (auto* refs : {&d.inputs, &d.outputs, &d.scratch}) {
        for (TensorRef& r : *refs) {
          if (r.kind != BufferKind::kArena) continue;
          size_t b = root(static_cast<size_t>(r.index));
          auto pinned = pinned_offsets.find(b);
          r.offset += pinned != pinned_offsets.end() ? pinned->second : plan.offsets[static_cast<size_t>(slot[b])];
          r.index = 0;
        }
      }
    }
  }
  if (stats) {
    stats->memory.arena_bytes = plan.arena_bytes;
    // Naive and lower bound count every tensor on its own (no in-place sharing).
    std::vector<BufferLifetime> all;
    for (size_t b = 0; b < nb; ++b) {
      if (used[b] && !pinned_.count(static_cast<int32_t>(b))) {
        all.push_back(BufferLifetime{life[b].bytes, life[b].first_step, life[b].last_step});
      }
    }
    stats->memory.naive_bytes = NaiveBytes(all, kAlignmentBytes);
    stats->memory.lower_bound_bytes = LowerBoundBytes(planned, kAlignmentBytes);
    stats->memory.num_buffers = static_cast<int>(all.size());
    stats->memory.num_in_place = in_place;
    stats->memory.num_reorders = num_reorders_;
    stats->memory.resident_bytes = pinned_bytes;
  }
  return std::max<int64_t>(aligned(plan.arena_bytes) + pinned_bytes, 64);
}

StatusOr<std::shared_ptr<runtime::Executable>> Lowering::Run(LowerStats* stats) {
  auto start = std::chrono::steady_clock::now();
  RETURN_IF_ERROR(ir::Verify(g_));
  std::vector<runtime::TensorSpec> in_specs, out_specs, param_specs;
  std::vector<Tensor> constants;
  for (const ir::Value& v : g_.values()) {
    runtime::TensorSpec spec{v.name, v.type.dtype, v.type.shape};
    switch (v.kind) {
      case ir::ValueKind::kInput:
        buf_[static_cast<size_t>(v.id)] = Ref(BufferKind::kInput, static_cast<int32_t>(in_specs.size()), 0, v.type);
        in_specs.push_back(spec);
        break;
      case ir::ValueKind::kParameter:
      case ir::ValueKind::kState:
        buf_[static_cast<size_t>(v.id)] = Ref(BufferKind::kParam, static_cast<int32_t>(param_specs.size()), 0, v.type);
        param_specs.push_back(spec);
        break;
      case ir::ValueKind::kConstant:
        buf_[static_cast<size_t>(v.id)] =
            Ref(BufferKind::kConstant, static_cast<int32_t>(constants.size()), 0, v.type);
        constants.push_back(g_.constants().at(v.id));
        break;
      case ir::ValueKind::kIntermediate: break;
    }
  }

  // Graph outputs produced by nodes are written straight into the caller's buffers.
  std::vector<std::pair<ir::ValueId, int32_t>> output_copies;  // outputs that are graph arguments
  for (const auto& [name, v] : g_.outputs()) {
    auto index = static_cast<int32_t>(out_specs.size());
    out_specs.push_back({name, g_.value(v).type.dtype, g_.value(v).type.shape});
    if (g_.value(v).kind == ir::ValueKind::kIntermediate && !buf_[static_cast<size_t>(v)] &&
        g_.Producer(v)->op != "reshape") {
      buf_[static_cast<size_t>(v)] = Ref(BufferKind::kOutput, index, 0, g_.value(v).type);
    } else {
      output_copies.emplace_back(v, index);
    }
  }

  // In-place updates: the new value shares the parameter's buffer when its producer writes
  // over that parameter; otherwise it is copied back at the end.
  std::vector<std::pair<ir::ValueId, ir::ValueId>> update_copies;
  for (const auto& [target, nv] : g_.updates()) updated_.insert(target);
  for (const auto& [target, nv] : g_.updates()) {
    const ir::Node* p = g_.Producer(nv);
    int in = p ? InplaceInputOf(p->op, g_.value(nv).output_index) : -1;
    if (p && in >= 0 && in < static_cast<int>(p->inputs.size()) && p->inputs[static_cast<size_t>(in)] == target &&
        !buf_[static_cast<size_t>(nv)]) {
      buf_[static_cast<size_t>(nv)] = buf_[static_cast<size_t>(target)];
      update_target_[nv] = target;
    } else {
      update_copies.emplace_back(target, nv);
    }
  }

  for (const ir::Node& n : g_.nodes()) {
    training_ = training_ || n.op.find("_backward") != std::string::npos;
  }
  if (options_.pool_workspace && options_.blocked_layouts) {
    for (const ir::Node& n : g_.nodes()) {
      if (n.op == "pool2d_backward" && !PoolKey(n).empty()) backward_pools_.insert(PoolKey(n));
    }
  }
  for (const ir::Node& n : g_.nodes()) RETURN_IF_ERROR(LowerNode(n));
  if (options_.group_updates) GroupUpdates();
  for (const auto& [v, index] : output_copies) {
    TensorRef dst = Ref(BufferKind::kOutput, index, 0, g_.value(v).type);
    RETURN_IF_ERROR(AddCopy("copy_to_output_" + out_specs[static_cast<size_t>(index)].name, Buf(v), dst));
  }
  for (const auto& [target, nv] : update_copies) {
    RETURN_IF_ERROR(AddCopy("update_" + g_.value(target).name, Buf(nv), Buf(target)));
  }

  ASSIGN_OR_RETURN(int64_t arena, Finish(stats));
  std::vector<std::unique_ptr<runtime::Step>> steps;
  for (const StepDesc& d : descs_) {
    auto step = factory_.Create(d);
    if (!step.ok()) return step.status().WithContext("lowering " + d.Where());
    steps.push_back(std::move(step).value());
  }
  std::vector<std::unique_ptr<runtime::Step>> prepack;
  for (const StepDesc& d : prepack_descs_) {
    auto step = factory_.Create(d);
    if (!step.ok()) return step.status().WithContext("lowering prepack " + d.Where());
    prepack.push_back(std::move(step).value());
  }
  std::vector<std::unique_ptr<runtime::Step>> writeback;
  for (const StepDesc& d : writeback_descs_) {
    auto step = factory_.Create(d);
    if (!step.ok()) return step.status().WithContext("lowering write-back " + d.Where());
    writeback.push_back(std::move(step).value());
  }
  auto exe = std::make_shared<runtime::Executable>(std::move(in_specs), std::move(out_specs), std::move(param_specs),
                                                   std::move(constants), std::move(steps), arena);
  exe->SetPrepackSteps(std::move(prepack));
  exe->SetWritebackSteps(std::move(writeback));
  if (stats) {
    stats->arena_bytes = exe->arena_bytes();
    stats->num_steps = static_cast<int>(exe->steps().size());
    stats->compile_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  }
  return exe;
}

}  // namespace

runtime::StepDesc MakeStepDesc(const ir::Node& node, std::vector<TensorRef> inputs, std::vector<TensorRef> outputs) {
  runtime::StepDesc d;
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

StatusOr<std::shared_ptr<runtime::Executable>> Lower(const ir::Graph& g, const runtime::StepFactory& factory,
                                                     LowerStats* stats, const LowerOptions& options) {
  Lowering lowering(g, factory, options);
  return lowering.Run(stats);
}

}  // namespace kiln::codegen
