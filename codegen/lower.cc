#include "codegen/lower.h"

#include <chrono>
#include <variant>

#include "ir/verifier.h"

namespace kiln::codegen {

using runtime::BufferKind;
using runtime::TensorRef;

namespace {

constexpr int64_t kAlignmentBytes = 64;

int64_t AlignUp(int64_t x) { return (x + kAlignmentBytes - 1) / kAlignmentBytes * kAlignmentBytes; }

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
  return -1;
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
                                                     LowerStats* stats) {
  auto start = std::chrono::steady_clock::now();
  RETURN_IF_ERROR(ir::Verify(g));
  std::vector<std::optional<TensorRef>> buf(static_cast<size_t>(g.num_values()));
  std::vector<runtime::TensorSpec> in_specs, out_specs, param_specs;
  std::vector<Tensor> constants;

  for (const ir::Value& v : g.values()) {
    runtime::TensorSpec spec{v.name, v.type.dtype, v.type.shape};
    switch (v.kind) {
      case ir::ValueKind::kInput:
        buf[static_cast<size_t>(v.id)] = Ref(BufferKind::kInput, static_cast<int32_t>(in_specs.size()), 0, v.type);
        in_specs.push_back(spec);
        break;
      case ir::ValueKind::kParameter:
      case ir::ValueKind::kState:
        buf[static_cast<size_t>(v.id)] = Ref(BufferKind::kParam, static_cast<int32_t>(param_specs.size()), 0, v.type);
        param_specs.push_back(spec);
        break;
      case ir::ValueKind::kConstant:
        buf[static_cast<size_t>(v.id)] = Ref(BufferKind::kConstant, static_cast<int32_t>(constants.size()), 0, v.type);
        constants.push_back(g.constants().at(v.id));
        break;
      case ir::ValueKind::kIntermediate:
        break;
    }
  }

  // Graph outputs produced by nodes are written straight into the caller's buffers.
  std::vector<std::pair<ir::ValueId, int32_t>> output_copies;  // outputs that are graph arguments
  for (const auto& [name, v] : g.outputs()) {
    int32_t index = static_cast<int32_t>(out_specs.size());
    out_specs.push_back({name, g.value(v).type.dtype, g.value(v).type.shape});
    if (g.value(v).kind == ir::ValueKind::kIntermediate && !buf[static_cast<size_t>(v)] &&
        g.Producer(v)->op != "reshape") {
      buf[static_cast<size_t>(v)] = Ref(BufferKind::kOutput, index, 0, g.value(v).type);
    } else {
      output_copies.emplace_back(v, index);
    }
  }

  // In-place updates: the new value shares the parameter's buffer when its producer writes
  // over that parameter; otherwise it is copied back at the end.
  std::vector<std::pair<ir::ValueId, ir::ValueId>> update_copies;
  for (const auto& [target, nv] : g.updates()) {
    const ir::Node* p = g.Producer(nv);
    int in = p ? InplaceInputOf(p->op, g.value(nv).output_index) : -1;
    if (p && in >= 0 && in < static_cast<int>(p->inputs.size()) && p->inputs[static_cast<size_t>(in)] == target &&
        !buf[static_cast<size_t>(nv)]) {
      buf[static_cast<size_t>(nv)] = buf[static_cast<size_t>(target)];
    } else {
      update_copies.emplace_back(target, nv);
    }
  }

  int64_t arena = 0;
  auto arena_slice = [&](const ir::TensorType& t) {
    TensorRef r = Ref(BufferKind::kArena, 0, arena, t);
    arena += AlignUp(std::max<int64_t>(t.size_bytes(), 1));
    return r;
  };

  std::vector<std::unique_ptr<runtime::Step>> steps;
  auto add_step = [&](runtime::StepDesc desc) -> Status {
    ASSIGN_OR_RETURN(int64_t scratch, factory.ScratchBytes(desc));
    if (scratch > 0) {
      ir::TensorType st{DType::kF32, {(scratch + 3) / 4}, ""};
      desc.scratch.push_back(arena_slice(st));
    }
    auto step = factory.Create(desc);
    if (!step.ok()) return step.status().WithContext("lowering " + desc.Where());
    steps.push_back(std::move(step).value());
    return OkStatus();
  };

  for (const ir::Node& n : g.nodes()) {
    std::vector<TensorRef> ins;
    for (ir::ValueId v : n.inputs) ins.push_back(*buf[static_cast<size_t>(v)]);
    if (n.op == "reshape" && !buf[static_cast<size_t>(n.outputs[0])]) {
      // Free: same bytes, new dims.
      TensorRef r = ins[0];
      r.dims = g.value(n.outputs[0]).type.shape;
      buf[static_cast<size_t>(n.outputs[0])] = r;
      continue;
    }
    std::vector<TensorRef> outs;
    for (ir::ValueId v : n.outputs) {
      if (!buf[static_cast<size_t>(v)]) buf[static_cast<size_t>(v)] = arena_slice(g.value(v).type);
      outs.push_back(*buf[static_cast<size_t>(v)]);
    }
    RETURN_IF_ERROR(add_step(MakeStepDesc(n, std::move(ins), std::move(outs))));
  }

  // Copies (a reshape step is a plain copy between dense buffers).
  auto copy_step = [&](const std::string& name, TensorRef src, TensorRef dst) -> Status {
    ir::Node n;
    n.op = "reshape";
    n.name = name;
    n.attrs.Set("shape", dst.dims);
    return add_step(MakeStepDesc(n, {src}, {dst}));
  };
  for (const auto& [v, index] : output_copies) {
    TensorRef dst = Ref(BufferKind::kOutput, index, 0, g.value(v).type);
    RETURN_IF_ERROR(copy_step("copy_to_output_" + out_specs[static_cast<size_t>(index)].name, *buf[static_cast<size_t>(v)], dst));
  }
  for (const auto& [target, nv] : update_copies) {
    RETURN_IF_ERROR(copy_step("update_" + g.value(target).name, *buf[static_cast<size_t>(nv)], *buf[static_cast<size_t>(target)]));
  }

  auto exe = std::make_shared<runtime::Executable>(std::move(in_specs), std::move(out_specs), std::move(param_specs),
                                                   std::move(constants), std::move(steps), std::max<int64_t>(arena, 64));
  if (stats) {
    stats->arena_bytes = exe->arena_bytes();
    stats->num_steps = static_cast<int>(exe->steps().size());
    stats->compile_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  }
  return exe;
}

}  // namespace kiln::codegen
