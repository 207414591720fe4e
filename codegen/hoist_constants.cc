#include "codegen/hoist_constants.h"

#include <set>

namespace kiln::codegen {

using runtime::BufferKind;
using runtime::StepDesc;
using runtime::TensorRef;

int HoistConstants(runtime::StepProgram& p) {
  std::set<int32_t> constant_buffers;  // arena buffers whose value is fixed for the session
  for (const StepDesc& d : p.prepack_steps) {
    for (const TensorRef& r : d.outputs) {
      if (r.kind == BufferKind::kArena) constant_buffers.insert(r.index);
    }
  }
  auto is_constant = [&](const TensorRef& r) {
    switch (r.kind) {
      case BufferKind::kConstant: return true;
      case BufferKind::kParam: {
        const runtime::ParamInfo& info = p.param_info[static_cast<size_t>(r.index)];
        return !info.state && !info.updated;
      }
      case BufferKind::kArena: return constant_buffers.count(r.index) != 0;
      default: return false;
    }
  };
  std::vector<StepDesc> kept, hoisted;
  for (StepDesc& d : p.steps) {
    bool hoist = !d.outputs.empty();
    for (const TensorRef& r : d.inputs) hoist = hoist && is_constant(r);
    for (const TensorRef& r : d.outputs) hoist = hoist && r.kind == BufferKind::kArena;
    if (hoist) {
      // Every run would compute the same values: a buffer a step writes is written by it
      // alone before any read (select_steps' SSA form), so hoisting keeps the dataflow.
      for (const TensorRef& r : d.outputs) constant_buffers.insert(r.index);
      hoisted.push_back(std::move(d));
    } else {
      kept.push_back(std::move(d));
    }
  }
  p.steps = std::move(kept);
  if (hoisted.empty()) return 0;
  std::set<int32_t> read_later;
  for (const std::vector<StepDesc>* list : {&p.steps, &p.writeback_steps}) {
    for (const StepDesc& d : *list) {
      for (const TensorRef& r : d.inputs) {
        if (r.kind == BufferKind::kArena) read_later.insert(r.index);
      }
    }
  }
  for (const StepDesc& d : hoisted) {
    for (const TensorRef& r : d.outputs) {
      if (read_later.count(r.index)) p.buffers[static_cast<size_t>(r.index)].pinned = true;
    }
  }
  int n = static_cast<int>(hoisted.size());
  for (StepDesc& d : hoisted) p.prepack_steps.push_back(std::move(d));
  return n;
}

}  // namespace kiln::codegen
