// Training from an artifact, without the compiler: a training artifact (kiln compile --train;
// aot::ExportTrainingArtifact) holds the whole training step — forward, loss, backward and
// the optimizer update, planned and lowered for a target — with the weights and the
// optimizer state, and an eval program (the forward pass in inference mode). A
// TrainingSession owns copies of those tensors (runtime::ParamEntry, so the step's resident
// copies stay coherent with them), feeds the step's per-step inputs the way
// graph::TrainStep does (the learning rate, Adam's bias correction, the gradient scale, the
// dropout seed), and saves checkpoints atomically. On the same target and ISA, N steps here
// equal N steps of graph::TrainStep (streams 1) bit for bit: the same steps run on the same
// bytes (tests/aot/train_artifact_test.cc).
//
//   auto model = kiln::runtime::Model::Load("lenet-train.kiln");
//   auto run = kiln::runtime::TrainingSession::Create(*model);
//   kiln::Tensor loss, logits;
//   (*run)->Step(images, labels, &loss, &logits);   // images f32 [N,1,28,28], labels s32 [N]
//   (*run)->SaveCheckpoint("ckpt.params");          // weights + optimizer state + step count
//
// Bazel: deps = ["//runtime:training", "//backends/cpu:kernels_cpu"]; links no compiler
// (tests/runtime/runtime_deps_test.cc checks kiln-train).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "base/status.h"
#include "base/tensor.h"
#include "runtime/executable.h"
#include "runtime/model.h"
#include "runtime/parameter_store.h"

namespace kiln::runtime {

// MXNet 1.9 Adam's per-step learning rate for step t >= 1 (the bias correction folded into
// the rate): lr_t = learning_rate * sqrt(1 - beta2^t) / (1 - beta1^t). Source:
// python/mxnet/optimizer/optimizer.py Adam.update; GLUON_SEMANTICS.md section 4.
double AdamStepLearningRate(double learning_rate, double beta1, double beta2, int64_t t);

// The per-step inputs of a training step, bound to its executable by name: "data", "label",
// "lr", "rescale_grad" and "dropout_seed" (graph::TrainStep and TrainingSession feed the
// same ones). Returns them in executable.inputs() order. Errors: InvalidArgument naming an
// input that is none of these.
struct TrainingStepInputs {
  const Tensor* data = nullptr;
  const Tensor* label = nullptr;
  const Tensor* lr = nullptr;            // f32 []
  const Tensor* rescale_grad = nullptr;  // f32 []
  const Tensor* dropout_seed = nullptr;  // s32 []
};
StatusOr<std::vector<const Tensor*>> BindTrainingInputs(const Executable& executable, const TrainingStepInputs& in);

class TrainingSession {
 public:
  // Binds copies of the artifact's weights and optimizer state (as stored: a fresh
  // initialization or a checkpoint) to a session of the training step and, when the artifact
  // has one, a session of the eval program. Errors: FailedPrecondition when `model` is not a
  // training artifact; InvalidArgument when an arena cannot be allocated.
  static StatusOr<std::unique_ptr<TrainingSession>> Create(std::shared_ptr<const Model> model);
  // The training session writes its resident copies back (errors go to stderr).
  ~TrainingSession();
  TrainingSession(const TrainingSession&) = delete;
  TrainingSession& operator=(const TrainingSession&) = delete;

  // One optimizer step on `data` (f32, the artifact's input shape: [N, ...] NCHW) and
  // `label` (s32 [N], class indices): writes the per-sample loss [N] and the network's
  // output (e.g. logits [N, C]) and updates the weights and state in place. The gradients
  // are scaled by rescale_grad / batch_size as Gluon's trainer.step(batch_size) (0: N).
  // Errors: InvalidArgument for a shape or dtype that is not the artifact's (naming the
  // input and both shapes) or batch_size < 0; errors from the steps (e.g. a label out of
  // range, naming the node).
  Status Step(const Tensor& data, const Tensor& label, Tensor* loss, Tensor* output, int64_t batch_size = 0);

  // output = net(data) in inference mode with the current weights (the eval program; data
  // f32 of eval_input_shape()). Errors: Unimplemented when the artifact has no eval
  // program; InvalidArgument for another shape.
  Status Predict(const Tensor& data, Tensor* output);

  const Model& model() const { return *model_; }
  // The training step's input shape (its first dim the batch) and the eval program's.
  const Shape& input_shape() const;
  Shape eval_input_shape() const;
  bool has_eval() const { return eval_ != nullptr; }
  const TrainingInfo& optimizer() const { return *model_->info().training; }
  // Optimizer steps completed (the artifact's count, plus the steps run here).
  int64_t num_update() const { return num_update_; }
  double learning_rate() const { return learning_rate_; }
  void set_learning_rate(double lr) { learning_rate_ = lr; }
  // The next step's "lr" input: learning_rate() for SGD, AdamStepLearningRate for Adam.
  double NextStepLearningRate() const;
  // The next step's "dropout_seed" (graphs with dropout; every step adds 1; default 0).
  void set_dropout_seed(uint32_t seed) { dropout_seed_ = seed; }
  uint32_t dropout_seed() const { return dropout_seed_; }

  // The weights and optimizer state by name ("0.weight", "0.weight.momentum"); reading an
  // entry writes the session's resident copy back first (runtime/parameter_store.h).
  ParameterStore& store() { return store_; }

  // The weights only (no optimizer state) in the .params format (Gluon's
  // save_parameters; graph::Block::LoadParameters and `kiln compile --params` read it),
  // atomically. Errors: InvalidArgument on an I/O failure; a write-back error.
  Status SaveParameters(const std::string& path);
  // A checkpoint, atomically (temp file, fsync, rename): every weight and state tensor under
  // its name, plus "kiln:num_update" (s32[2]: the step count's low and high 32 bits),
  // "kiln:learning_rate" (s32[2]: the IEEE-754 double's bits, low word first) and
  // "kiln:dropout_seed" (s32[1]), in the .params format with kiln's checksum trailer.
  // Errors: InvalidArgument on an I/O failure; a write-back error.
  Status SaveCheckpoint(const std::string& path);
  // Restores a checkpoint of this artifact: nothing changes unless every tensor is there
  // with its dtype and shape, no other name is, and the step count is valid. Errors:
  // NotFound, DataLoss (truncated or corrupted, from the .params reader); InvalidArgument
  // naming the missing, extra or mismatched entry.
  Status LoadCheckpoint(const std::string& path);

 private:
  TrainingSession() = default;
  std::shared_ptr<const Model> model_;
  ParameterStore store_;
  std::vector<std::string> weight_names_;  // params that are not optimizer state
  std::unique_ptr<Session> train_;
  std::unique_ptr<Session> eval_;
  int64_t num_update_ = 0;
  double learning_rate_ = 0;
  uint32_t dropout_seed_ = 0;
};

}  // namespace kiln::runtime
