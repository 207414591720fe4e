#include "codegen/assign_layouts.h"

#include <map>
#include <set>
#include <tuple>

namespace kiln::codegen {

using runtime::BufferKind;
using runtime::StepDesc;
using runtime::TensorRef;

namespace {

StepDesc Reorder(const std::string& name, const TensorRef& src, const TensorRef& dst) {
  StepDesc d;
  d.kind = "reorder";
  d.node_name = name;
  d.inputs = {src};
  d.outputs = {dst};
  return d;
}

class Assignment {
 public:
  Assignment(runtime::StepProgram& p, const runtime::StepFactory& factory, const LayoutOptions& options)
      : p_(p), factory_(factory), options_(options) {}

  Status Run();

 private:
  using Key = std::tuple<int, int32_t, Shape, std::string>;  // buffer kind, index, dims, layout

  TensorRef NewBuffer(const TensorRef& like, const std::string& layout, int64_t bytes, const std::string& name) {
    TensorRef r;
    r.kind = BufferKind::kArena;
    r.index = static_cast<int32_t>(buffers_.size());
    r.dtype = like.dtype;
    r.dims = like.dims;
    r.layout = layout;
    r.layout_bytes = layout.empty() ? 0 : bytes;
    buffers_.push_back(runtime::BufferDesc{std::max<int64_t>(r.size_bytes(), 1), name, false});
    return r;
  }
  std::string NameOf(const TensorRef& r) const {
    switch (r.kind) {
      case BufferKind::kArena: return p_.buffers[static_cast<size_t>(r.index)].name;
      case BufferKind::kParam: return p_.params[static_cast<size_t>(r.index)].name;
      case BufferKind::kInput: return p_.inputs[static_cast<size_t>(r.index)].name;
      case BufferKind::kOutput: return p_.outputs[static_cast<size_t>(r.index)].name;
      case BufferKind::kConstant: return "const" + std::to_string(r.index);
    }
    return "?";
  }
  // Where the value behind dense-program operand `r` lives now (its layout included).
  TensorRef Home(const TensorRef& r) const {
    if (r.kind == BufferKind::kArena) return home_.at(r.index);
    if (r.kind == BufferKind::kParam) {
      if (auto it = resident_.find(r.index); it != resident_.end()) return it->second;
    }
    return r;
  }
  // The dims of the whole tensor in `r`'s buffer (a free reshape's view has other dims).
  const Shape& HomeDims(const TensorRef& r) const {
    switch (r.kind) {
      case BufferKind::kArena: return home_.at(r.index).dims;
      case BufferKind::kParam: return p_.params[static_cast<size_t>(r.index)].shape;
      case BufferKind::kInput: return p_.inputs[static_cast<size_t>(r.index)].shape;
      case BufferKind::kOutput: return p_.outputs[static_cast<size_t>(r.index)].shape;
      case BufferKind::kConstant: return p_.constants[static_cast<size_t>(r.index)].shape();
    }
    return r.dims;
  }
  bool IsView(const TensorRef& r) const { return r.dims != HomeDims(r); }
  // Operand `r` in `layout` (`bytes` when blocked): its home, or a reorder of it made once
  // per buffer, dims and layout.
  StatusOr<TensorRef> InLayout(const TensorRef& r, const std::string& layout, int64_t bytes);
  Status AddStep(StepDesc desc);
  Status AddCopy(const std::string& name, const TensorRef& src, const TensorRef& dst);
  Status AssignStep(const StepDesc& d);

  runtime::StepProgram& p_;
  const runtime::StepFactory& factory_;
  LayoutOptions options_;
  std::vector<runtime::BufferDesc> buffers_;  // the renumbered buffers
  std::map<int32_t, TensorRef> home_;         // dense-program buffer -> its buffer and layout
  std::map<int32_t, TensorRef> resident_;     // parameter -> its resident copy
  std::set<int32_t> dense_read_;              // parameters a step read in their dense bound buffer
  std::set<int32_t> written_;                 // parameters a step has written (updated) so far
  std::map<Key, TensorRef> reordered_;
  std::vector<StepDesc> steps_, prepack_, writeback_;
};

StatusOr<TensorRef> Assignment::InLayout(const TensorRef& r, const std::string& layout, int64_t bytes) {
  if (IsView(r)) {
    // A free reshape: the dense form of the buffer, seen with the view's dims.
    TensorRef base = r;
    base.dims = HomeDims(r);
    ASSIGN_OR_RETURN(TensorRef dense, InLayout(base, "", 0));
    dense.dims = r.dims;
    if (layout.empty()) return dense;
    Key key{static_cast<int>(r.kind), r.index, r.dims, layout};
    if (auto it = reordered_.find(key); it != reordered_.end()) return it->second;
    TensorRef dst = NewBuffer(dense, layout, bytes, NameOf(r) + ".view." + layout);
    RETURN_IF_ERROR(AddStep(Reorder(NameOf(r) + ".view." + layout, dense, dst)));
    reordered_.emplace(key, dst);
    return dst;
  }
  const TensorRef home = Home(r);
  bool original_param = r.kind == BufferKind::kParam && !written_.count(r.index);
  if (home.layout == layout) {
    if (home.kind == BufferKind::kParam && original_param) dense_read_.insert(r.index);
    return home;
  }
  Key key{static_cast<int>(r.kind), r.index, r.dims, layout};
  if (auto it = reordered_.find(key); it != reordered_.end()) return it->second;
  std::string name = NameOf(r) + "." + (layout.empty() ? std::string("dense") : layout);
  TensorRef dst = NewBuffer(home, layout, bytes, name);
  const runtime::ParamInfo* info = r.kind == BufferKind::kParam ? &p_.param_info[static_cast<size_t>(r.index)] : nullptr;
  if (options_.resident_params && home.kind == BufferKind::kParam && !layout.empty() && original_param &&
      info->updated && !dense_read_.count(r.index)) {
    // The resident copy becomes the parameter's home for the rest of the program and
    // across runs: filled once per session, written back on request, never reused.
    buffers_.back().pinned = true;
    prepack_.push_back(Reorder(name, home, dst));
    writeback_.push_back(Reorder(NameOf(r) + ".writeback", dst, home));
    resident_[r.index] = dst;
    return dst;
  }
  if (options_.constant_params && original_param && !info->state && !info->updated) {
    // Once per session: the buffer stays live for the whole run.
    buffers_.back().pinned = true;
    prepack_.push_back(Reorder(name, home, dst));
  } else {
    RETURN_IF_ERROR(AddStep(Reorder(name, home, dst)));
  }
  reordered_.emplace(key, dst);
  return dst;
}

Status Assignment::AddStep(StepDesc desc) {
  auto scratch = factory_.ScratchBytes(desc);
  if (!scratch.ok()) return scratch.status().WithContext("lowering " + desc.Where());
  if (*scratch > 0) {
    TensorRef like;
    like.dtype = DType::kF32;
    like.dims = {(*scratch + 3) / 4};
    desc.scratch.push_back(NewBuffer(like, "", 0, desc.node_name + ".scratch"));
  }
  steps_.push_back(std::move(desc));
  return OkStatus();
}

Status Assignment::AddCopy(const std::string& name, const TensorRef& src, const TensorRef& dst) {
  if (src.dense() && dst.dense()) {
    StepDesc d;
    d.kind = "reshape";  // a plain copy between dense buffers
    d.node_name = name;
    d.ints["shape"] = dst.dims;
    d.inputs = {src};
    d.outputs = {dst};
    return AddStep(std::move(d));
  }
  return AddStep(Reorder(name, src, dst));
}

Status Assignment::AssignStep(const StepDesc& d) {
  if (d.kind == "copy") {
    TensorRef src = d.inputs[0];
    if (IsView(src)) {
      ASSIGN_OR_RETURN(src, InLayout(src, "", 0));
    } else {
      src = Home(src);
    }
    return AddCopy(d.node_name, src, Home(d.outputs[0]));
  }
  bool writes_workspace = d.kind == "pool2d" && d.ints.count("with_workspace") != 0;
  // The step as the target sees it: inputs where they live now (views made dense first),
  // outputs with dims and dtype only.
  std::vector<TensorRef> ins, outs;
  for (size_t i = 0; i < d.inputs.size(); ++i) {
    if (IsView(d.inputs[i])) {
      ASSIGN_OR_RETURN(TensorRef dense, InLayout(d.inputs[i], "", 0));
      ins.push_back(dense);
    } else {
      ins.push_back(Home(d.inputs[i]));
    }
  }
  for (const TensorRef& r : d.outputs) {
    TensorRef q;
    q.kind = BufferKind::kArena;
    q.index = -1;
    q.dtype = r.dtype;
    q.dims = r.dims;
    outs.push_back(q);
  }
  runtime::StepFactory::Layouts layouts;
  if (options_.blocked_layouts) {
    StepDesc query = d;
    query.inputs = ins;
    query.outputs = outs;
    if (p_.has_backward) query.ints["layout_for_training"] = {1};
    auto chosen = factory_.ChooseLayouts(query);
    if (!chosen.ok()) return chosen.status().WithContext("choosing layouts for " + d.kind + " \"" + d.node_name + "\"");
    layouts = std::move(chosen).value();
  } else {
    layouts = runtime::StepFactory::DenseLayouts(d);
  }
  for (size_t i = 0; i < d.inputs.size(); ++i) {
    // The max-pooling workspace is read as its forward step wrote it.
    if (d.kind == "pool2d_backward" && i == 2) continue;
    ASSIGN_OR_RETURN(ins[i], InLayout(d.inputs[i], layouts.inputs[i], layouts.input_bytes[i]));
  }
  size_t num_values = d.outputs.size() - (writes_workspace ? 1 : 0);
  if (writes_workspace) {
    const TensorRef& ws = d.outputs.back();
    outs.back() = NewBuffer(ws, layouts.outputs.back(), layouts.output_bytes.back(), NameOf(ws));
    home_[ws.index] = outs.back();
  }
  // Outputs bound to caller buffers (graph outputs, in-place parameter updates) are dense:
  // a blocked result goes to the arena first and is reordered into them after the step.
  std::vector<std::pair<TensorRef, TensorRef>> after;
  for (size_t k = 0; k < num_values; ++k) {
    const TensorRef& r = d.outputs[k];
    const std::string& layout = layouts.outputs[k];
    int64_t bytes = layouts.output_bytes[k];
    if (r.kind == BufferKind::kParam) {
      written_.insert(r.index);
      // Reorders of the parameter made before this update are stale from here on.
      for (auto it = reordered_.begin(); it != reordered_.end();) {
        if (std::get<0>(it->first) == static_cast<int>(BufferKind::kParam) && std::get<1>(it->first) == r.index) {
          it = reordered_.erase(it);
        } else {
          ++it;
        }
      }
    }
    auto resident = r.kind == BufferKind::kParam ? resident_.find(r.index) : resident_.end();
    if (resident != resident_.end()) {
      // An in-place update of a resident parameter writes its resident copy.
      if (layout == resident->second.layout) {
        outs[k] = resident->second;
      } else {
        outs[k] = NewBuffer(r, layout, bytes, NameOf(r) + ".new");
        after.emplace_back(outs[k], resident->second);
      }
    } else if (r.kind != BufferKind::kArena) {
      if (layout.empty()) {
        outs[k] = r;
      } else {
        outs[k] = NewBuffer(r, layout, bytes, NameOf(r) + "." + layout);
        after.emplace_back(outs[k], r);
      }
    } else {
      outs[k] = NewBuffer(r, layout, bytes, NameOf(r));
      home_[r.index] = outs[k];
    }
  }
  StepDesc step = d;
  step.inputs = std::move(ins);
  step.outputs = std::move(outs);
  RETURN_IF_ERROR(AddStep(std::move(step)));
  for (const auto& [src, dst] : after) RETURN_IF_ERROR(AddCopy(d.node_name + ".to_dense", src, dst));
  return OkStatus();
}

Status Assignment::Run() {
  if (p_.planned) return FailedPrecondition("assign_layouts: program \"" + p_.name + "\" is already planned");
  for (const StepDesc& d : p_.steps) RETURN_IF_ERROR(AssignStep(d));
  p_.steps = std::move(steps_);
  p_.prepack_steps = std::move(prepack_);
  p_.writeback_steps = std::move(writeback_);
  p_.buffers = std::move(buffers_);
  return OkStatus();
}

}  // namespace

Status AssignLayouts(runtime::StepProgram& program, const runtime::StepFactory& target_steps,
                     const LayoutOptions& options) {
  Assignment a(program, target_steps, options);
  return a.Run();
}

}  // namespace kiln::codegen
