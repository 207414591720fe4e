#include "passes/data_parallel.h"

#include <map>

#include "ir/builder.h"

namespace kiln::passes {

StatusOr<bool> DataParallelUpdate::Run(ir::Graph& g) {
  if (streams_ < 1) return InvalidArgument("data_parallel_update: streams must be >= 1, got " + std::to_string(streams_));
  if (!g.nodes().empty()) {
    return InvalidArgument("data_parallel_update: the update graph must hold only its parameters, but it has " +
                           std::to_string(g.nodes().size()) + " nodes");
  }
  std::vector<ir::ValueId> params;
  for (const ir::Value& v : g.values()) {
    if (v.kind == ir::ValueKind::kParameter) params.push_back(v.id);
  }
  if (params.empty()) return false;
  ir::Builder b(g);
  std::map<ir::ValueId, ir::ValueId> grads;
  for (ir::ValueId p : params) {
    const std::string name = g.value(p).name;
    const ir::TensorType type = g.value(p).type;
    ir::ValueId sum = -1;
    for (int k = 0; k < streams_; ++k) {
      ir::ValueId gk = g.AddInput("grad" + std::to_string(k) + ":" + name, type);
      if (k == 0) {
        sum = gk;
      } else {
        ASSIGN_OR_RETURN(sum, b.Emit1("add", {sum, gk}, {}, name + "_grad_sum"));
      }
    }
    grads[p] = sum;
  }
  RETURN_IF_ERROR(adam_ ? AppendAdamUpdate(g, grads, *adam_) : AppendSgdUpdate(g, grads, sgd_));
  return true;
}

}  // namespace kiln::passes
