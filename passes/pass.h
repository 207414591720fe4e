// Passes and the pass manager (STYLE.md section 3).
//
// A pass transforms a graph in place and reports whether it changed anything. The pass
// manager verifies the graph before the pipeline and after every pass that reports a
// change, adding "after pass <name>" to any verifier failure, and can dump the IR text
// after a named pass (or all passes).
#pragma once

#include <functional>
#include <memory>
#include <ostream>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "ir/graph.h"

namespace kiln::passes {

// What passes may ask of the target they compile for (the compile-side target,
// compiler/target.h, implements it): passes ask instead of assuming a library. A pass
// given no target assumes the CPU target's answers.
class TargetCapabilities {
 public:
  virtual ~TargetCapabilities() = default;
  // The target's name ("cpu").
  virtual std::string_view TargetName() const = 0;
  // True when `op` ("conv2d", "dense", "pool2d_backward") can apply `post_op` ("relu",
  // "sigmoid", "tanh" as an activation attribute; "sum" as conv2d's residual input) in
  // the same step, e.g. as a oneDNN post-op.
  virtual bool SupportsPostOp(std::string_view op, std::string_view post_op) const = 0;
  // True when the target has a step for IR op `op` (e.g. "fused_elementwise" needs LLVM).
  virtual bool SupportsOp(std::string_view op) const = 0;
};

class Pass {
 public:
  virtual ~Pass() = default;
  virtual std::string_view Name() const = 0;
  // Returns true if the graph changed. Errors: InvalidArgument for graphs the pass cannot
  // handle (naming the node, op and shapes).
  virtual StatusOr<bool> Run(ir::Graph& graph) = 0;
};

struct PassManagerOptions {
  // Pass name after which the IR text is written to `dump_stream`, or "all".
  std::string dump_ir_after;
  std::ostream* dump_stream = nullptr;
  // Called after every pass with its name and the graph (e.g. to write a DOT file of one
  // stage, codegen/dot.h).
  std::function<void(std::string_view pass, const ir::Graph& graph)> after_pass;
};

class PassManager {
 public:
  explicit PassManager(PassManagerOptions options = {}) : options_(std::move(options)) {}
  void Add(std::unique_ptr<Pass> pass) { passes_.push_back(std::move(pass)); }
  // Runs the passes in order. Errors: the first failing pass's error, or Internal
  // "verifier failed after pass <name>: ..." when a pass breaks an IR invariant.
  Status Run(ir::Graph& graph);
  // Names of the passes in order.
  std::vector<std::string> PassNames() const;

 private:
  PassManagerOptions options_;
  std::vector<std::unique_ptr<Pass>> passes_;
};

// The values a graph hands out: its outputs and the new values of its updates. Passes
// that rewrite a value's producer must keep these.
std::set<ir::ValueId> OutputAndUpdateValues(const ir::Graph& graph);

// Dead-code elimination: removes nodes whose results reach no output and no update.
class DeadCodeElimination final : public Pass {
 public:
  std::string_view Name() const override { return "dce"; }
  StatusOr<bool> Run(ir::Graph& graph) override { return graph.RemoveDeadNodes() > 0; }
};

}  // namespace kiln::passes
