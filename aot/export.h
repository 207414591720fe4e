// Ahead-of-time compilation: compiles the inference graph of a network built with graph/
// (with its trained parameters) and writes it as a kiln artifact (runtime/artifact.h) that
// runtime/model.h loads without the compiler (DESIGN.md aot/).
//
//   auto net = kiln::examples::MakeLeNet();
//   net->LoadParameters("lenet.params");
//   auto r = kiln::aot::ExportArtifact(*net, {1, 1, 28, 28}, "lenet.kiln", {.model_name = "lenet"});
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "base/status.h"
#include "graph/nn.h"
#include "graph/trainer.h"
#include "runtime/artifact.h"
#include "runtime/executable.h"

namespace kiln::aot {

struct ExportOptions {
  std::string model_name = "model";
  // Pass pipeline and optimization level: the same as Predictor's (graph/trainer.h).
  graph::CompileOptions compile;
  // Batch buckets: further batch sizes to compile the same graph for, stored in the one
  // artifact with one copy of the weights (runtime/artifact.h; a server runs each batch on
  // the smallest bucket that holds it). The input shape's first dim is always one of them.
  // Each must be >= 1. Empty: the artifact runs input_shape[0] only.
  std::vector<int64_t> batch_buckets;
  // Extra key/value pairs stored in the artifact (shown by `kiln inspect`).
  std::map<std::string, std::string> metadata;
};

struct ExportResult {
  int64_t file_bytes = 0;
  int num_steps = 0;
  runtime::MemoryReport memory;
  double compile_seconds = 0;  // tracing, passes, lowering (oneDNN primitive creation included)
};

// The artifact contents for output = net(data) with data f32 `input_shape` (NCHW for
// images; the first dim is the batch the artifact is compiled for). The graph is traced and
// compiled exactly as Predictor::Forward does (compiler::Compile with the same request, no
// executable: the artifact holds the StepProgram, its memory report and the target's ISA),
// so the loaded artifact gives bit-identical outputs. Input "data", output "output". `weights` receives copies of the parameters the
// contents point to (it must outlive the contents). Errors: FailedPrecondition for an
// uninitialized parameter; shape errors naming node, op and shapes; lowering errors.
StatusOr<runtime::ArtifactContents> CompileForExport(graph::nn::Block& net, const Shape& input_shape,
                                                     const ExportOptions& options,
                                                     std::vector<std::unique_ptr<Tensor>>* weights,
                                                     double* compile_seconds = nullptr);

// Compiles as CompileForExport and writes the artifact to `path` atomically.
// Errors: as CompileForExport; InvalidArgument on an I/O failure naming the path.
StatusOr<ExportResult> ExportArtifact(graph::nn::Block& net, const Shape& input_shape, const std::string& path,
                                      const ExportOptions& options = {});

// Training artifacts (kiln compile --train; runtime/training.h runs them without the compiler).
struct TrainExportOptions {
  std::string model_name = "model";
  // The pass pipeline, level, target and resident parameters: TrainStep's (graph/trainer.h).
  // Streams do not apply: the artifact holds the one-session step.
  graph::CompileOptions compile;
  // The eval program's batch (the forward pass in inference mode, weights treated as
  // constants between updates: batch norms fold into convolutions, re-folded when the
  // weights change). 0: the training batch; -1: no eval program.
  int64_t eval_batch = 0;
  std::map<std::string, std::string> metadata;
};

// The contents of a training artifact for `net` with `loss_fn` and `trainer`'s optimizer on
// data f32 `input_shape` (its first dim the training batch) and labels s32 [N]: the step
// TrainStep would compile for that shape (graph::TrainingRequest and TraceTrainingGraph:
// the same passes, layouts and resident parameters), the weights and the trainer's
// optimizer state with their current values (state the trainer has not created yet is
// zero, as at TrainStep's first step), the optimizer's hyper-parameters and step count, and
// the eval program. `weights` receives the copies the contents point to. Errors: the
// trainer's status; FailedPrecondition for an uninitialized parameter; shape errors naming
// node, op and shapes; lowering errors.
StatusOr<runtime::ArtifactContents> CompileTrainingForExport(graph::nn::Block& net, const graph::LossFn& loss_fn,
                                                             graph::Trainer& trainer, const Shape& input_shape,
                                                             const TrainExportOptions& options,
                                                             std::vector<std::unique_ptr<Tensor>>* weights,
                                                             double* compile_seconds = nullptr);

// Compiles as CompileTrainingForExport and writes the artifact to `path` atomically.
StatusOr<ExportResult> ExportTrainingArtifact(graph::nn::Block& net, const graph::LossFn& loss_fn,
                                              graph::Trainer& trainer, const Shape& input_shape, const std::string& path,
                                              const TrainExportOptions& options = {});

}  // namespace kiln::aot
