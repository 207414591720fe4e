#include "passes/pass.h"

#include "ir/text.h"
#include "ir/verifier.h"

namespace kiln::passes {

Status PassManager::Run(ir::Graph& graph) {
  Status s = ir::Verify(graph);
  if (!s.ok()) return Internal("verifier failed before the pipeline: " + s.message());
  for (const auto& pass : passes_) {
    auto changed = pass->Run(graph);
    if (!changed.ok()) return changed.status().WithContext("pass " + std::string(pass->Name()));
    if (*changed) {
      Status v = ir::Verify(graph);
      if (!v.ok()) return Internal("verifier failed after pass " + std::string(pass->Name()) + ": " + v.message());
    }
    if (options_.dump_stream && (options_.dump_ir_after == "all" || options_.dump_ir_after == pass->Name())) {
      *options_.dump_stream << "// IR after pass " << pass->Name() << (*changed ? "" : " (unchanged)") << "\n"
                            << ir::PrintGraph(graph);
    }
    if (options_.after_pass) options_.after_pass(pass->Name(), graph);
  }
  return OkStatus();
}

std::set<ir::ValueId> OutputAndUpdateValues(const ir::Graph& graph) {
  std::set<ir::ValueId> values;
  for (const auto& [name, v] : graph.outputs()) values.insert(v);
  for (const auto& [target, v] : graph.updates()) values.insert(v);
  return values;
}

std::vector<std::string> PassManager::PassNames() const {
  std::vector<std::string> names;
  for (const auto& p : passes_) names.emplace_back(p->Name());
  return names;
}

}  // namespace kiln::passes
