// Compiling and running a whole step, the way Gluon's hybridize() does: the network, the
// loss, the backward pass and the optimizer update are traced once per input shape into one
// IR graph, optimized by passes, lowered to oneDNN steps, and run by a runtime Session.
// Executables are cached by input shape (a short last batch compiles its own).
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "base/tensor.h"
#include "codegen/lower.h"
#include "compiler/compile.h"
#include "graph/nn.h"
#include "passes/autodiff.h"
#include "runtime/executable.h"
#include "runtime/streams.h"

namespace kiln::graph {

// Gluon's Trainer(params, "sgd", {learning_rate, momentum, wd, clip_gradient, rescale_grad})
// or Trainer(params, "adam", {learning_rate, beta1, beta2, epsilon, wd, clip_gradient,
// rescale_grad}). Holds the hyper-parameters and the optimizer state of the parameters of
// `net`: "<param>.momentum" (SGD with momentum), "<param>.mean" and "<param>.var" (Adam), and
// Adam's time step t. Defaults as MXNet: learning_rate 0.01 (sgd) / 0.001 (adam), beta1 0.9,
// beta2 0.999, epsilon 1e-8. Source: GLUON_SEMANTICS.md section 4 (MXNet 1.9 SGD and Adam).
class Trainer {
 public:
  // Errors (reported by status()): InvalidArgument for an optimizer other than "sgd" and
  // "adam" or an unknown option name.
  Trainer(nn::Block& net, const std::string& optimizer, const std::map<std::string, double>& options);
  const Status& status() const { return status_; }

  double learning_rate() const { return learning_rate_; }
  void set_learning_rate(double lr) { learning_rate_ = lr; }
  // The per-step gradient scale for Step(batch_size): rescale_grad / batch_size.
  double StepScale(int64_t batch_size) const { return rescale_grad_ / static_cast<double>(batch_size); }
  const passes::SgdOptions& sgd() const { return sgd_; }
  // "sgd" or "adam".
  const std::string& optimizer() const { return optimizer_; }
  const passes::AdamOptions& adam() const { return adam_; }
  // Completed steps (Adam's t after the last step; MXNet's per-parameter update count).
  int64_t num_update() const { return num_update_; }
  // The "lr" graph input for the next step, t = num_update() + 1: learning_rate for SGD;
  // for Adam the bias-corrected lr_t = learning_rate * sqrt(1 - beta2^t) / (1 - beta1^t)
  // (MXNet 1.9 Adam.update in python/mxnet/optimizer/optimizer.py).
  double NextStepLearningRate() const;
  // Records one completed step (TrainStep::Run calls it after a successful run).
  void CountStep() { ++num_update_; }
  nn::Block& net() { return net_; }
  // Optimizer state tensor by name ("<param>.momentum"), created zero-filled on first use,
  // for reading or writing (runtime::ParamEntry::Mutable: a session holding a newer
  // resident copy writes it back first); null when that write-back fails.
  Tensor* State(const std::string& name, const Shape& shape);
  // The entry that owns the state tensor (created zero-filled on first use); sessions bind it.
  std::shared_ptr<runtime::ParamEntry> StateEntry(const std::string& name, const Shape& shape);
  // Writes back any session's newer resident copies of the state. Errors: the write-back's.
  Status Sync();

 private:
  nn::Block& net_;
  Status status_;
  double learning_rate_ = 0.01;
  double rescale_grad_ = 1.0;
  passes::SgdOptions sgd_;
  std::string optimizer_ = "sgd";
  passes::AdamOptions adam_;
  int64_t num_update_ = 0;
  std::map<std::string, std::shared_ptr<runtime::ParamEntry>> state_;
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
  // At -O2, also fuse elementwise chains into generated kernels: the target adds the
  // elementwise-fusion pass and lowers the fused_elementwise nodes with its LLVM JIT steps
  // (compiler/target.h; codegen/llvm/llvm_steps.h).
  bool fuse_elementwise = false;
  // Lower the optimizer updates to LLVM-generated kernels too (compiler/target.h).
  bool llvm_kernels = false;
  // The target to compile for (compiler/target.h): "cpu".
  std::string target = "cpu";
  // Called after every lowering pass with the step program (codegen/lower.h), e.g.
  // kiln_opt --print-program-after.
  std::function<void(std::string_view pass, const runtime::StepProgram& program)> after_lowering_pass;
  // TrainStep at -O2: parameters and optimizer state stay between steps in the layouts the
  // steps chose (codegen::LowerOptions::resident_params), so weights are reordered once,
  // not every step. The step's session becomes the holder of their entries
  // (runtime::ParamEntry): reading or writing them through the API, running a Predictor or
  // a TrainStep of another input shape writes them back first, by itself. Off: every step
  // reorders the weights from and back into their dense form.
  bool resident_params = true;
  // Throughput mode: a batch of N >= streams runs as `streams` sub-batches (sizes differ by
  // at most one) on as many sessions at once, one thread each (runtime/streams.h,
  // OpenVINO's throughput streams), when the forward graph computes every sample on its
  // own (passes/batch_separable.h); else as one session, and streams_note() says why.
  // Predictor: the outputs are the same either way. TrainStep (data parallel): each
  // stream computes its rows' loss, output and parameter gradients; a separate update
  // graph sums the streams' gradients (so they equal the whole batch's up to float
  // summation order) and applies the optimizer once. Training streams keep parameters
  // dense (no resident copies) and are off with output_gradients. 1: off.
  // LeNet-5 at batch 256 on 2 cores: about 1.4x the inference images/s (bench/README.md).
  int streams = 1;
  // Numerics checking (runtime::Session::SetCheckNumerics; TensorFlow's check_numerics,
  // PyTorch's anomaly mode): every run checks its f32 inputs and each step's f32 outputs
  // and stops at the first NaN or Inf with an InvalidArgument naming the input, or the
  // step, node, op, output, parameter and first bad index. Off by default; its cost is in
  // bench/README.md ("check_numerics").
  bool check_numerics = false;
};

using LossFn = std::function<StatusOr<Sym>(Sym pred, Sym label)>;

// One compiled training step: forward, loss, backward, SGD update in place.
class TrainStep {
 public:
  // `net` and `trainer` must outlive the TrainStep.
  TrainStep(nn::Block& net, LossFn loss, Trainer& trainer, CompileOptions options = {});
  // The sessions write held parameters back (a failure is reported on stderr).
  ~TrainStep();
  TrainStep(const TrainStep&) = delete;
  TrainStep& operator=(const TrainStep&) = delete;

  // Runs one step on data (f32 [N, ...], NCHW) and label (s32 [N]); `batch_size` scales the
  // gradients by 1/batch_size as Gluon's trainer.step(batch_size). Writes the per-sample
  // loss [N] and the network output (e.g. logits [N, C]) into `loss` and `output`.
  // Errors: InvalidArgument for data without rows (N = 0) or batch_size < 1; shape errors
  // on the first call for a shape (naming node, op, shapes); runtime errors (e.g. a label
  // out of range, naming the node).
  Status Run(const Tensor& data, const Tensor& label, int64_t batch_size, Tensor* loss, Tensor* output);

  // The optimized IR of the training graph for the last compiled shape (text form).
  const std::string& graph_text() const { return graph_text_; }
  const codegen::LowerStats& last_compile_stats() const { return stats_; }
  runtime::Session* last_session() { return last_; }
  // The gradient of the summed loss w.r.t. parameter `name` ("0.weight") from the last Run,
  // before the 1/batch_size rescale (Gluon's param.grad()); null unless
  // CompileOptions::output_gradients was set.
  const Tensor* Gradient(const std::string& name) const;

  // With resident parameters (CompileOptions::resident_params): writes the newest parameter
  // and optimizer-state values back into the network's and the trainer's tensors and stops
  // holding them. Reading or writing a parameter or state entry does it by itself, so
  // callers rarely need it. Errors: from the write-back steps.
  Status Release();

  // With CompileOptions::streams > 1: the streams the last Run used (1 when it ran as one
  // session), and why the last compiled shape could not use streams ("" if it could).
  int last_streams() const { return last_streams_; }
  const std::string& streams_note() const { return streams_note_; }

  // The dropout seed ("dropout_seed" input, nn::Dropout) of the next step; every step adds
  // 1. Unset, the first step with dropout draws it from graph::GlobalRng(). The same seed
  // gives the same masks.
  void set_dropout_seed(uint32_t seed) { dropout_seed_ = seed; }

 private:
  struct Streams;
  Status Compile(const Shape& data_shape);
  // Compiles `shape` as data-parallel streams; null (with streams_note_ set) when the
  // forward pass and loss are not batch separable.
  StatusOr<std::unique_ptr<Streams>> CompileStreams(const Shape& shape);
  Status RunStreams(Streams& st, const Tensor& data, const Tensor& label, int64_t batch_size, Tensor* loss,
                    Tensor* output);
  std::map<Shape, std::unique_ptr<Streams>> streams_;
  int last_streams_ = 1;
  std::string streams_note_;
  nn::Block& net_;
  LossFn loss_;
  Trainer& trainer_;
  CompileOptions options_;
  std::map<Shape, std::unique_ptr<runtime::Session>> sessions_;
  runtime::Session* last_ = nullptr;
  std::string graph_text_;
  codegen::LowerStats stats_;
  std::map<std::string, Tensor> gradients_;
  std::optional<uint32_t> dropout_seed_;  // the next step's dropout seed
};

// The compiled forward pass of a network (inference), cached by input shape.
class Predictor {
 public:
  explicit Predictor(nn::Block& net, CompileOptions options = {}) : net_(net), options_(std::move(options)) {}
  // output = net(data). The sessions bind the parameters' entries: a TrainStep holding
  // newer resident copies writes them back first, and weights changed since the last
  // Forward are re-read (also for constant_params). Errors as TrainStep::Run; a holder's
  // write-back error.
  Status Forward(const Tensor& data, Tensor* output);
  const std::string& graph_text() const { return graph_text_; }
  // The session of the last Forward (null before the first).
  runtime::Session* last_session() { return last_; }
  // Lowering statistics (memory report, compile time) of the last compiled shape.
  const codegen::LowerStats& last_compile_stats() const { return stats_; }
  // With CompileOptions::streams > 1: the streams the last Forward ran on (1 when it ran as
  // one session), and why the last compiled shape could not use streams ("" if it could).
  int last_streams() const { return last_streams_; }
  const std::string& streams_note() const { return streams_note_; }

 private:
  // Compiles `shape` as batch streams; null (with streams_note_ set) when the graph is not
  // batch separable.
  StatusOr<std::unique_ptr<runtime::BatchStreams>> CompileStreams(const Shape& shape);
  nn::Block& net_;
  CompileOptions options_;
  runtime::Session* last_ = nullptr;
  std::map<Shape, std::unique_ptr<runtime::Session>> sessions_;
  std::map<Shape, std::unique_ptr<runtime::BatchStreams>> streams_;
  int last_streams_ = 1;
  std::string streams_note_;
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

// The compiler request (compiler/compile.h) Predictor and CompileGraph compile with: mode
// inference, the options' level, target, dumps and constant parameters. aot/export uses it
// so that an artifact is bit-identical to Predictor::Forward.
compiler::CompileRequest InferenceRequest(const CompileOptions& options);

// The request TrainStep compiles its one-session step with (mode training: backward and the
// trainer's optimizer update in place; resident parameters as the options say), and the
// graph it traces: inputs "data" f32 `data_shape` and "label" s32 [N], outputs "loss" and
// "output", the network in training mode. aot::ExportTrainingArtifact uses both so that a
// training artifact runs TrainStep's steps bit for bit. Errors (trace): InvalidArgument
// for a shape without a batch dim; shape errors naming node, op and shapes.
compiler::CompileRequest TrainingRequest(const CompileOptions& options, Trainer& trainer);
StatusOr<std::unique_ptr<ir::Graph>> TraceTrainingGraph(nn::Block& net, const LossFn& loss_fn, const Shape& data_shape,
                                                        std::ostream* shape_log = nullptr);

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
