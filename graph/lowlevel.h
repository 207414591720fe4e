// The low-level API of the Gluon "CNN from scratch" tutorial, compiled: explicit parameter
// tensors, gradients asked for inside the traced graph, hand-written updates, and the whole
// step (forward, loss, backward, update) run as ONE compiled graph.
//
// MXNet writes (imperatively):
//   W1 = nd.random_normal(shape=(20, 1, 3, 3), scale=.01); W1.attach_grad()
//   with autograd.record(): loss = softmax_cross_entropy(net(X), nd.one_hot(y, 10))
//   loss.backward()
//   for p in params: p[:] = p - lr * p.grad
// kiln traces the same thing once and compiles it:
//   ParameterSet params;
//   Parameter* w1 = params.Add("W1", {20, 1, 3, 3}, Normal(0.01));   // drawn at once
//   Tracer t("step");
//   Sym x = t.Input("data", DType::kF32, {64, 1, 28, 28});
//   ... Sym loss = ...;                                  // per-sample loss [N]
//   ASSIGN_OR_RETURN(std::vector<Sym> grads, Grad(loss, {w1_sym, ...}));
//   RETURN_IF_ERROR(Update(w1_sym, w1_sym - lr * grads[0]));
//   ASSIGN_OR_RETURN(CompiledGraph step, CompiledGraph::Compile(t, params));
//   step.Run({{"data", &x}, ...}, {{"loss", &loss}});    // parameters updated in place
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "graph/nn.h"
#include "graph/trainer.h"

namespace kiln::graph {

// A flat set of named parameters with no forward pass of its own (the role of Gluon's
// ParameterDict, or of the tutorial's list of NDArrays). Parameters are named exactly as
// added ("W1"), which is also their name in the graph and in .params files.
class ParameterSet final : public nn::Block {
 public:
  // Adds parameter `name` of `shape` (fully known) and initializes it with `init` at once.
  // Errors: InvalidArgument for a duplicate name, an unknown (0) dim, or an initializer
  // error naming the parameter.
  StatusOr<Parameter*> Add(const std::string& name, const Shape& shape, const Initializer& init);
  // The parameter named `name`, or null.
  Parameter* Find(const std::string& name);
  // A ParameterSet is not a layer: Unimplemented.
  StatusOr<Sym> Forward(Sym x) override;

 private:
  std::map<std::string, Parameter*> by_name_;
};

// autograd inside the traced graph: appends the backward nodes of d(sum(loss))/d(wrt[i]) to
// loss's graph (passes/autodiff.h AppendBackward: the head gradient is ones shaped like the
// loss, as MXNet's loss.backward() on a non-scalar loss, so a per-sample loss [N] gives
// gradients summed over the batch) and returns one gradient per entry of `wrt`, shaped like
// it (zeros when the loss does not depend on it). Call it once per graph, after the forward
// pass and the loss are traced.
// Errors: InvalidArgument if `wrt` is empty, a Sym belongs to another tracer, or the loss
// depends on a `wrt` value through an op with no gradient rule (naming the node and op).
StatusOr<std::vector<Sym>> Grad(Sym loss, const std::vector<Sym>& wrt);

// Declares that after each run parameter `param` takes the value `new_value` (in place,
// like MXNet's `param[:] = new_value`). Updates are applied after every node has run, so
// every node of the step sees the old value.
// Errors: InvalidArgument if `param` is not a parameter of the graph (Tracer::Param), the
// two belong to different tracers, the types differ (naming both), or `param` already has
// an update.
Status Update(Sym param, Sym new_value);

// A traced graph compiled once for its fixed input shapes (CompileGraph in graph/trainer.h:
// the same pass pipeline and lowering as TrainStep), run by name.
class CompiledGraph {
 public:
  // Compiles `tracer`'s graph (the tracer is consumed: TakeGraph) against the parameters
  // of `params`. Errors: those of CompileGraph.
  static StatusOr<CompiledGraph> Compile(Tracer& tracer, nn::Block& params, const CompileOptions& options = {});

  // Runs the graph once. `inputs` must give every graph input by name (dtype and shape as
  // traced); `outputs` receives the named outputs it lists (others are computed and
  // dropped). Parameters with an Update change in place. The parameters are synced first
  // (Parameter::Sync: a TrainStep holding newer values writes them back).
  // Errors: InvalidArgument for a missing or unknown input name, an unknown output name, or
  // a shape/dtype mismatch (naming the input and both shapes); runtime errors from steps.
  Status Run(const std::map<std::string, const Tensor*>& inputs, const std::map<std::string, Tensor*>& outputs);

  // The optimized IR text.
  const std::string& graph_text() const { return text_; }
  runtime::Session& session() { return *session_; }

 private:
  std::unique_ptr<runtime::Session> session_;
  std::string text_;
  std::map<std::string, Tensor> scratch_outputs_;
  std::vector<Parameter*> params_;  // bound by the session
};

}  // namespace kiln::graph
