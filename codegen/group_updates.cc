#include "codegen/group_updates.h"

#include <string>
#include <utility>

#include "runtime/step_kinds.h"

namespace kiln::codegen {

using runtime::StepDesc;
using runtime::TensorRef;

void GroupUpdates(runtime::StepProgram& program) {
  auto groupable = [](const StepDesc& d) {
    const runtime::StepKindInfo* info = runtime::FindStepKind(d.kind);
    return info != nullptr && info->is_update && !d.inputs.empty() && d.inputs[0].size_bytes() <= kGroupMaxBytes &&
           d.scratch.empty();
  };
  // Updates group when kind, attributes and the scalar hyper-parameter operands agree.
  auto key = [](const StepDesc& d) {
    std::string k = d.kind;
    for (int i : runtime::FindStepKind(d.kind)->scalar_inputs) {
      k += "|" + (static_cast<size_t>(i) < d.inputs.size() ? d.inputs[static_cast<size_t>(i)].ToString() : "-");
    }
    k += "|" + std::to_string(d.inputs.size());
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
    pending.clear();
  };
  for (StepDesc& d : program.steps) {
    if (groupable(d)) {
      if (!pending.empty() && key(d) != pending_key) flush();
      pending_key = key(d);
      pending.push_back(std::move(d));
      continue;
    }
    bool ok = true;
    for (const StepDesc& u : pending) ok = ok && independent(u, d);
    if (!ok) flush();
    out.push_back(std::move(d));
  }
  flush();
  program.steps = std::move(out);
}

}  // namespace kiln::codegen
