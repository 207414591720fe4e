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
  // The graph parameter for `p` (added on first use under p.name()). A parameter with
  // grad_req "null" (BatchNorm's running statistics) becomes a state value in training
  // mode (no gradient; the graph may update it in place) and a parameter otherwise.
  // Errors: FailedPrecondition if `p` has unknown dims or was never initialized.
  StatusOr<Sym> Param(Parameter& p);

  // Gluon's autograd.train_mode: layers trace their training behaviour (BatchNorm with
  // the batch's statistics and running-statistics updates, Dropout) when true.
  // graph::TrainStep traces in training mode; Predictor, artifacts and CompileGraph in
  // inference mode (the default).
  bool training() const { return training_; }
  void set_training(bool training) { training_ = training; }
  // The per-step dropout seed: the s32 [] graph input "dropout_seed", added on first use
  // (graph::TrainStep feeds a new value every step), and a salt per call that tells the
  // dropout nodes of one graph apart.
  Sym DropoutSeed();
  int64_t NextDropoutSalt() { return next_salt_++; }

  // Emits `op` and wraps its single output. Errors: the op's shape-inference error.
  StatusOr<Sym> Emit(const std::string& op, const std::vector<Sym>& inputs, const ir::Attrs& attrs = {},
                     const std::string& name = "");
  // Emits `op` and wraps all its outputs. Errors: as Emit.
  StatusOr<std::vector<Sym>> EmitMulti(const std::string& op, const std::vector<Sym>& inputs,
                                       const ir::Attrs& attrs = {}, const std::string& name = "");

  // Debug mode: when set, every emitted node prints "<node> <op>: <output type>" to it
  // (like the Gluon tutorial printing intermediate shapes).
  void SetShapeLog(std::ostream* log) { shape_log_ = log; }

 private:
  std::unique_ptr<ir::Graph> graph_;
  ir::Builder builder_;
  std::map<const Parameter*, ir::ValueId> params_;
  std::ostream* shape_log_ = nullptr;
  bool training_ = false;
  int64_t next_salt_ = 0;
};

}  // namespace kiln::graph
