// Reverse-mode automatic differentiation and the training-graph pass.
//
// AppendBackward walks the forward nodes in reverse schedule order and calls each op's
// gradient rule (ir/ops/*.cc), so gradients are ordinary IR ops that the same passes and
// lowerings handle. Fan-in is summed with `add`; a gradient with a broadcast shape is
// reduced to its input's shape with `reduce_sum` (+ `reshape`). The head gradient is a
// tensor of ones shaped like the loss, as MXNet's backward() on a non-scalar head, so a
// per-sample loss [N] yields gradients summed over the batch (Trainer.step(batch_size)
// rescales by 1/N). Source: GLUON_SEMANTICS.md sections 3-4; Glow/tinygrad gradient passes.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "ir/graph.h"
#include "passes/pass.h"

namespace kiln::passes {

// Appends the backward nodes of d(sum(loss))/d(wrt) to `graph` and returns the gradient
// value of every value in `wrt` (a zero-filled value when the loss does not depend on it).
// Errors: InvalidArgument naming the node and op when the loss depends on a value through
// an op with no gradient rule (e.g. argmax).
StatusOr<std::map<ir::ValueId, ir::ValueId>> AppendBackward(ir::Graph& graph, ir::ValueId loss,
                                                            const std::vector<ir::ValueId>& wrt);

// SGD hyper-parameters fixed at compile time (MXNet SGD; GLUON_SEMANTICS.md section 4).
// learning_rate and rescale_grad are fed per step as the graph inputs "lr" and
// "rescale_grad", so a schedule or the last short batch needs no recompilation.
struct SgdOptions {
  double momentum = 0.0;
  double wd = 0.0;
  double clip_gradient = -1.0;  // <= 0: no clipping
};

// Appends one sgd_update per parameter (sorted by name) and records the in-place updates;
// with momentum, adds the state "<param>.momentum" per parameter.
Status AppendSgdUpdate(ir::Graph& graph, const std::map<ir::ValueId, ir::ValueId>& grads, const SgdOptions& options);

// Adam hyper-parameters fixed at compile time (MXNet 1.9 Adam; GLUON_SEMANTICS.md section 4).
// The bias correction lives in the per-step "lr" input: the caller feeds
// lr_t = learning_rate * sqrt(1 - beta2^t) / (1 - beta1^t) (graph::Trainer does).
struct AdamOptions {
  double beta1 = 0.9;
  double beta2 = 0.999;
  double epsilon = 1e-8;
  double wd = 0.0;
  double clip_gradient = -1.0;  // < 0: no clipping
};

// Appends one adam_update per parameter (sorted by name), with the states "<param>.mean"
// and "<param>.var" (zero at the first step), and records the three in-place updates.
// Adds the scalar inputs "lr" (lr_t) and "rescale_grad" as AppendSgdUpdate.
Status AppendAdamUpdate(ir::Graph& graph, const std::map<ir::ValueId, ir::ValueId>& grads, const AdamOptions& options);

// The autodiff pass: turns a forward graph with output `loss_output` into one training
// graph (forward, loss, backward, SGD update of every parameter in place).
class BuildTrainingGraph final : public Pass {
 public:
  // With `output_gradients`, every parameter's gradient (before rescaling) also becomes a
  // graph output named "grad:<parameter>" (Gluon's param.grad()).
  BuildTrainingGraph(std::string loss_output, SgdOptions sgd, bool output_gradients = false)
      : loss_output_(std::move(loss_output)), sgd_(sgd), output_gradients_(output_gradients) {}
  // The same with Adam updates (AppendAdamUpdate) instead of SGD.
  BuildTrainingGraph(std::string loss_output, AdamOptions adam, bool output_gradients = false)
      : loss_output_(std::move(loss_output)), adam_(adam), output_gradients_(output_gradients) {}
  // Forward, loss and backward only: every parameter's gradient (before rescaling) becomes
  // the output "grad:<parameter>" and nothing is updated (data-parallel training streams
  // sum the streams' gradients and update in a separate graph; graph::TrainStep).
  static std::unique_ptr<BuildTrainingGraph> GradientsOnly(std::string loss_output) {
    auto pass = std::make_unique<BuildTrainingGraph>(std::move(loss_output), SgdOptions{}, true);
    pass->apply_updates_ = false;
    return pass;
  }

  std::string_view Name() const override { return "autodiff"; }
  // Errors: NotFound if the graph has no output `loss_output`; errors of AppendBackward.
  StatusOr<bool> Run(ir::Graph& graph) override;

 private:
  std::string loss_output_;
  SgdOptions sgd_;
  std::optional<AdamOptions> adam_;
  bool output_gradients_;
  bool apply_updates_ = true;
};

}  // namespace kiln::passes
