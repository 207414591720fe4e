// Compiling and running a whole step, the way Gluon's hybridize() does: the network, the
// loss, the backward pass and the optimizer update are traced once per input shape into one
// IR graph, optimized by passes, lowered to oneDNN steps, and run by a runtime Session.
// Executables are cached by input shape (a short last batch compiles its own).
#pragma once

#include <map>
#include <memory>
#include <ostream>
#include <string>
#include <vector>

#include "base/tensor.h"
#include "codegen/lower.h"
#include "graph/nn.h"
#include "passes/autodiff.h"
#include "runtime/executable.h"

namespace kiln::graph {

// Gluon's Trainer(params, "sgd", {learning_rate, momentum, wd, clip_gradient, rescale_grad}).
// Holds the hyper-parameters and the optimizer state (momentum) of the parameters of `net`.
// Source: GLUON_SEMANTICS.md section 4 (MXNet 1.9 SGD kernels).
class Trainer {
 public:
  // Errors (reported by status()): InvalidArgument for an optimizer other than "sgd" or an
  // unknown option name.
  Trainer(nn::Block& net, const std::string& optimizer, const std::map<std::string, double>& options);
  const Status& status() const { return status_; }

  double learning_rate() const { return learning_rate_; }
  void set_learning_rate(double lr) { learning_rate_ = lr; }
  // The per-step gradient scale for Step(batch_size): rescale_grad / batch_size.
  double StepScale(int64_t batch_size) const { return rescale_grad_ / static_cast<double>(batch_size); }
  const passes::SgdOptions& sgd() const { return sgd_; }
  nn::Block& net() { return net_; }
  // Optimizer state tensor by name ("<param>.momentum"), created zero-filled on first use.
  Tensor* State(const std::string& name, const Shape& shape);

 private:
  nn::Block& net_;
  Status status_;
  double learning_rate_ = 0.01;
  double rescale_grad_ = 1.0;
  passes::SgdOptions sgd_;
  std::map<std::string, Tensor> state_;
};

struct CompileOptions {
  // Pass name after which the IR is printed to `dump` ("all" for every pass).
  std::string dump_ir_after;
  std::ostream* dump = nullptr;
  // Print every traced node's output shape to this stream (debug mode).
  std::ostream* shape_log = nullptr;
  // TrainStep: also return every parameter's gradient (TrainStep::Gradient).
  bool output_gradients = false;
  // Called after every pass (passes::PassManagerOptions::after_pass), e.g. for DOT dumps.
  std::function<void(std::string_view pass, const ir::Graph& graph)> after_pass;
  // Predictor: the parameters will not change while this Predictor is used (frozen, as
  // torch.jit.freeze): weights are reordered into the convolutions' layouts once per
  // compiled shape instead of every Forward (codegen::LowerOptions::constant_params).
  bool constant_params = false;
  // Optimization level (passes/pipeline.h): 0 none, 1 simplification, 2 (default) also
  // fusion, oneDNN-chosen layouts and memory planning.
  int opt_level = 2;
};

using LossFn = std::function<StatusOr<Sym>(Sym pred, Sym label)>;

// One compiled training step: forward, loss, backward, SGD update in place.
class TrainStep {
 public:
  TrainStep(nn::Block& net, LossFn loss, Trainer& trainer, CompileOptions options = {});

  // Runs one step on data (f32 [N, ...], NCHW) and label (s32 [N]); `batch_size` scales the
  // gradients by 1/batch_size as Gluon's trainer.step(batch_size). Writes the per-sample
  // loss [N] and the network output (e.g. logits [N, C]) into `loss` and `output`.
  // Errors: shape errors on the first call for a shape (naming node, op, shapes); runtime
  // errors (e.g. a label out of range, naming the node).
  Status Run(const Tensor& data, const Tensor& label, int64_t batch_size, Tensor* loss, Tensor* output);

  // The optimized IR of the training graph for the last compiled shape (text form).
  const std::string& graph_text() const { return graph_text_; }
  const codegen::LowerStats& last_compile_stats() const { return stats_; }
  runtime::Session* last_session() { return last_; }
  // The gradient of the summed loss w.r.t. parameter `name` ("0.weight") from the last Run,
  // before the 1/batch_size rescale (Gluon's param.grad()); null unless
  // CompileOptions::output_gradients was set.
  const Tensor* Gradient(const std::string& name) const;

 private:
  Status Compile(const Shape& data_shape);
  nn::Block& net_;
  LossFn loss_;
  Trainer& trainer_;
  CompileOptions options_;
  std::map<Shape, std::unique_ptr<runtime::Session>> sessions_;
  runtime::Session* last_ = nullptr;
  std::string graph_text_;
  codegen::LowerStats stats_;
  std::map<std::string, Tensor> gradients_;
};

// The compiled forward pass of a network (inference), cached by input shape.
class Predictor {
 public:
  explicit Predictor(nn::Block& net, CompileOptions options = {}) : net_(net), options_(std::move(options)) {}
  // output = net(data). Errors as TrainStep::Run.
  Status Forward(const Tensor& data, Tensor* output);
  const std::string& graph_text() const { return graph_text_; }
  // The session of the last Forward (null before the first).
  runtime::Session* last_session() { return last_; }
  // Lowering statistics (memory report, compile time) of the last compiled shape.
  const codegen::LowerStats& last_compile_stats() const { return stats_; }

 private:
  nn::Block& net_;
  CompileOptions options_;
  runtime::Session* last_ = nullptr;
  std::map<Shape, std::unique_ptr<runtime::Session>> sessions_;
  std::string graph_text_;
  codegen::LowerStats stats_;
};

// Compiles a traced graph as it stands, through the same pass pipeline and CPU lowering as
// TrainStep and Predictor, but without adding the autodiff/SGD pass: a graph that trains
// carries its own backward nodes and updates (graph/lowlevel.h: Grad, Update). Opens a
// session bound to the parameters of `params` by structural name (CollectParams()).
// `text` and `stats`, when not null, receive the optimized IR text and lowering statistics.
// Errors: verifier/pass errors ("after pass <name>"); lowering errors naming the node;
// NotFound when the graph uses a parameter that `params` does not hold.
StatusOr<std::unique_ptr<runtime::Session>> CompileGraph(std::unique_ptr<ir::Graph> graph, nn::Block& params,
                                                         const CompileOptions& options = {}, std::string* text = nullptr,
                                                         codegen::LowerStats* stats = nullptr);

// mx.metric.Accuracy: micro-averaged accuracy of argmax(pred, axis=1) against labels.
class Accuracy {
 public:
  // labels s32 [N]; preds f32 [N, C] (argmax taken, first maximum wins) or s32 [N].
  // Errors: InvalidArgument when N differs.
  Status Update(const Tensor& labels, const Tensor& preds);
  // ("accuracy", correct / total); NaN before any update.
  std::pair<std::string, double> Get() const;
  void Reset() { correct_ = total_ = 0; }
  int64_t num_inst() const { return total_; }

 private:
  int64_t correct_ = 0, total_ = 0;
};

}  // namespace kiln::graph
