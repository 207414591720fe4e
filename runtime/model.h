// The deployable runtime: load a kiln artifact (runtime/artifact.h) and run it, without the
// compiler. Links runtime/ and the targets the program links (backends/cpu for "cpu": its
// steps and oneDNN) only: no ir/, passes/, graph/ or LLVM (tests/runtime/runtime_deps_test.cc).
//
// Embedding it in a service:
//
//   #include "runtime/model.h"
//   auto model = kiln::runtime::Model::Load("lenet.kiln");      // validates everything
//   if (!model.ok()) { log(model.status().ToString()); return; }
//   // One session per worker thread; sessions share the model's weights and steps.
//   auto session = (*model)->NewSession();
//   kiln::Tensor image(kiln::DType::kF32, (*model)->inputs()[0].shape);  // e.g. [1,1,28,28] NCHW
//   ... fill image.f32() ...
//   kiln::Tensor logits;                                          // resized to outputs()[0]
//   kiln::Status s = (*session)->Run({&image}, {&logits});
//
// Bazel: deps = ["//runtime:model", "//backends/cpu:kernels_cpu"] (the backend registers
// target "cpu" when linked). Threads: a Session is not thread-safe; give each thread
// its own (NewSession is cheap: one arena allocation). oneDNN primitives inside the steps run
// on oneDNN's OpenMP pool (OMP_NUM_THREADS).
#pragma once

#include <cstddef>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "base/status.h"
#include "runtime/artifact.h"
#include "runtime/executable.h"
#include "runtime/step.h"
#include "runtime/target.h"

namespace kiln::runtime {

struct LoadOptions {
  // The target that rebuilds the steps; null = the target the artifact names, found among
  // the targets linked into the program (runtime::FindTarget).
  const Target* target = nullptr;
  // Limits for the untrusted file (arena size, tensor sizes, checksum check).
  ArtifactLimits limits;
  // Sessions check numerics (Session::SetCheckNumerics): the first NaN or Inf an input
  // holds or a step writes stops the run with an error naming it.
  bool check_numerics = false;
};

// What an artifact says about itself, for `kiln inspect` and server metadata.
struct ModelInfo {
  std::string name;
  std::string target;  // the target the artifact was compiled for ("cpu")
  std::string isa;     // and its ISA ("avx512_core_bf16"; "" when not recorded)
  uint32_t format_version = 0;
  int64_t file_bytes = 0;
  int64_t arena_bytes = 0;
  MemoryReport memory;
  std::vector<TensorSpec> params;
  std::vector<StepDesc> steps;
  std::vector<StepDesc> prepack_steps;  // run once per session before its first run
  std::vector<std::string> kernel_names;  // generated machine code blobs, "name (target, N bytes)"
  std::string graph_text;                 // optimized IR, ir/text.h form
  std::map<std::string, std::string> metadata;
  bool weights_in_place = false;  // true: weights are read straight from the memory map
  // The batch sizes the artifact runs, ascending: the main program's first input's first dim
  // and each batch bucket's (runtime/artifact.fbs Bucket; kiln compile --batch-buckets).
  std::vector<int64_t> batch_sizes;
  std::map<int64_t, MemoryReport> bucket_memory;  // per bucket other than the main program
  // Training artifacts (kiln compile --train): the optimizer, which params are optimizer
  // state and which the step updates (params order), the write-back steps, and the memory
  // of the eval program (the forward pass in inference mode; zero when there is none).
  std::optional<TrainingInfo> training;
  std::vector<ParamInfo> param_info;
  std::vector<StepDesc> writeback_steps;
  MemoryReport eval_memory;
};

// A loaded, validated, immutable model. Thread-safe: any number of sessions may run it at
// once. Sessions keep the model's memory alive, so they may outlive the Model handle.
class Model {
 public:
  // Memory-maps `path` (MAP_PRIVATE), validates it (ParseArtifact: header, CRC-32,
  // FlatBuffers verifier, every field and operand) and rebuilds every step with the factory
  // (oneDNN primitives are created here, once) through runtime::Instantiate. Weights are
  // used in place from the map when 64-byte aligned, else copied into aligned buffers.
  // Errors: NotFound (no such file); InvalidArgument (not an artifact, inconsistent
  // content, naming the field or the step and operand); DataLoss (truncated or corrupted);
  // Unimplemented (another format version, or a step kind the backend cannot run);
  // NotFound when the artifact's target is not linked into the program;
  // FailedPrecondition when the target given is another, or this machine lacks the ISA
  // the artifact was compiled for.
  static StatusOr<std::shared_ptr<const Model>> Load(const std::string& path, const LoadOptions& options = {});

  // The same from bytes in memory (copied into an aligned buffer). Errors as Load.
  static StatusOr<std::shared_ptr<const Model>> FromBytes(const void* data, size_t size,
                                                          const LoadOptions& options = {});

  const std::string& name() const { return info_.name; }
  // Signatures: dense row-major tensors (NCHW images, NC logits).
  const std::vector<TensorSpec>& inputs() const { return exe_->inputs(); }
  const std::vector<TensorSpec>& outputs() const { return exe_->outputs(); }
  const ModelInfo& info() const { return info_; }
  // The rebuilt executable (steps, arena size, signatures).
  const Executable& executable() const { return *exe_; }

  // A new session: its own arena (executable().arena_bytes() bytes), bound to the model's
  // weights. Session::Run(inputs, outputs) checks each input against inputs() (dtype and
  // shape) and resizes outputs to outputs(). Errors: InvalidArgument if the arena cannot be
  // allocated; FailedPrecondition for a training artifact (its steps update the weights:
  // runtime::TrainingSession owns copies of them).
  StatusOr<std::unique_ptr<Session>> NewSession() const;

  // Training artifacts (info().training set; runtime/training.h runs them): the training
  // step's executable (executable(), shared), the eval program's (null when the artifact
  // has none; its params are a subset of params() by name), and the weights as stored, in
  // params() order (dense, read-only: sessions of the training step bind copies).
  std::shared_ptr<const Executable> shared_executable() const { return exe_; }
  std::shared_ptr<const Executable> eval_executable() const { return eval_; }
  const void* weight_data(size_t i) const { return param_addresses_.at(i); }

  // Batch buckets: the artifact may hold the graph compiled for several batch sizes sharing
  // one copy of the weights (info().batch_sizes, ascending; the main program is the one
  // inputs()/outputs()/executable()/NewSession() describe). NewSession(batch) is a session
  // of the bucket with exactly that batch (every input's and output's first dim);
  // NotFound naming the batches there are otherwise. Each session has its own arena.
  StatusOr<std::unique_ptr<Session>> NewSession(int64_t batch) const;
  // The smallest batch size >= rows, or 0 when rows exceeds the largest.
  int64_t BucketFor(int64_t rows) const;
  // The executable of the bucket with `batch` (the main program's when there is none).
  const Executable& executable(int64_t batch) const;

 private:
  Model() = default;
  static StatusOr<std::shared_ptr<const Model>> Build(std::shared_ptr<void> memory, const uint8_t* data, size_t size,
                                                      const LoadOptions& options);
  ModelInfo info_;
  StatusOr<std::unique_ptr<Session>> NewSessionFor(const std::shared_ptr<const Executable>& exe) const;
  std::shared_ptr<const Executable> exe_;  // its deleter keeps the memory map alive
  std::vector<std::shared_ptr<const Executable>> buckets_;  // every batch size, ascending (exe_ among them)
  std::shared_ptr<const Executable> eval_;                  // training artifacts' forward pass
  std::vector<void*> param_addresses_;
  bool check_numerics_ = false;
};

}  // namespace kiln::runtime
