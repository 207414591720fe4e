// Tracing: the front end records calls on symbolic tensors into an IR graph, running shape
// inference on every call, so a bad shape fails on the line that built it.
#pragma once

#include <map>
#include <memory>
#include <ostream>
#include <string>

#include "base/status.h"
#include "ir/builder.h"
#include "ir/graph.h"

namespace kiln::graph {

class Parameter;
class Tracer;

// A symbolic tensor: one value of the graph a Tracer is building.
struct Sym {
  Tracer* tracer = nullptr;
  ir::ValueId id = -1;

  const ir::TensorType& type() const;
  const Shape& shape() const { return type().shape; }
};

class Tracer {
 public:
  explicit Tracer(std::string graph_name = "main");

  ir::Graph& graph() { return *graph_; }
  ir::Builder& builder() { return builder_; }
  // Moves the traced graph out (the tracer must not be used afterwards).
  std::unique_ptr<ir::Graph> TakeGraph() { return std::move(graph_); }

  // A graph input (data, label, ...). KILN_CHECKs that the name is new.
  Sym Input(const std::string& name, DType dtype, const Shape& shape);
  // The graph parameter for `p` (added on first use under p.name()). Errors:
  // FailedPrecondition if `p` has unknown dims or was never initialized.
  StatusOr<Sym> Param(Parameter& p);

  // Emits `op` and wraps its single output. Errors: the op's shape-inference error.
  StatusOr<Sym> Emit(const std::string& op, const std::vector<Sym>& inputs, const ir::Attrs& attrs = {},
                     const std::string& name = "");

  // Debug mode: when set, every emitted node prints "<node> <op>: <output type>" to it
  // (like the Gluon tutorial printing intermediate shapes).
  void SetShapeLog(std::ostream* log) { shape_log_ = log; }

 private:
  std::unique_ptr<ir::Graph> graph_;
  ir::Builder builder_;
  std::map<const Parameter*, ir::ValueId> params_;
  std::ostream* shape_log_ = nullptr;
};

}  // namespace kiln::graph
