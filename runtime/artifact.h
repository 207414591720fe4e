// The kiln artifact: a compiled graph as one file (DESIGN.md aot/, runtime/).
//
// File layout (little-endian):
//   bytes 0..7    magic "KILNAOT\0"
//   bytes 8..11   u32 format version (kArtifactFormatVersion)
//   bytes 12..15  u32 CRC-32 (zlib crc32) of the payload
//   bytes 16..23  u64 payload size in bytes (the file is exactly 64 + payload bytes)
//   bytes 24..63  zero
//   bytes 64..    the FlatBuffers payload (schema runtime/artifact.fbs, file identifier "KILN")
// The payload holds the signatures (inputs, outputs, parameters as TensorSpecs), the steps as
// plain data (runtime::StepDesc: kind, node name, attribute maps, operand TensorRefs), the
// arena size, the memory report, the weights and constants (each 64-byte aligned in the file,
// so a memory map serves them in place), named blobs of generated machine code, the optimized
// IR text and free-form metadata.
//
// Reading treats the file as untrusted: ParseArtifact checks the header, the checksum, the
// FlatBuffers verifier and then every field and every TensorRef before anything is built.
// Source: FlatBuffers C++ guide ("Verifying a buffer"), zlib manual (crc32).
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "base/status.h"
#include "base/tensor.h"
#include "runtime/executable.h"
#include "runtime/step.h"
#include "runtime/step_program.h"

namespace kiln::runtime {

inline constexpr uint32_t kArtifactFormatVersion = 1;
inline constexpr int64_t kArtifactHeaderBytes = 64;
inline constexpr char kArtifactMagic[8] = {'K', 'I', 'L', 'N', 'A', 'O', 'T', '\0'};

// A named blob of generated machine code (an object file or a function's bytes).
struct NamedBlob {
  std::string name;
  std::string target;  // target triple and CPU it was compiled for
  std::string bytes;
};

// The optimizer of a training artifact (runtime/artifact.fbs Training; runtime/training.h):
// what the runtime needs to feed the step's "lr" and "rescale_grad" inputs, and the rest of
// the hyper-parameters (baked into the steps) for `kiln inspect`.
struct TrainingInfo {
  std::string optimizer = "sgd";  // "sgd" or "adam" (MXNet 1.9; GLUON_SEMANTICS.md section 4)
  // learning_rate, rescale_grad, momentum, wd, clip_gradient; adam: beta1, beta2, epsilon.
  std::map<std::string, double> options;
  int64_t num_update = 0;  // optimizer steps completed when the file was written
  // The option's value, or `fallback` when the file does not name it.
  double Option(const std::string& name, double fallback) const {
    auto it = options.find(name);
    return it == options.end() ? fallback : it->second;
  }
};

// What the writer stores: a planned StepProgram (signatures, steps, prepack steps, arena
// size, memory report, constants, target) and what goes with it.
struct ArtifactContents {
  std::string model_name;
  // Must be planned. Write-back steps (resident training parameters) only with `training`.
  StepProgram program;
  // The ISA the program's steps were built for (runtime::Target::isa()).
  std::string isa;
  // One tensor per program.params entry, same order, dtype and shape (not owned).
  std::vector<const Tensor*> weights;
  std::vector<NamedBlob> kernels;
  std::string graph_text;
  std::map<std::string, std::string> metadata;
  // Batch buckets: the same graph planned for other batch sizes (each input's and output's
  // first dim differs from `program`'s, nothing else; the same params). Their constants are
  // stored once when equal to another program's (dtype, shape and bytes).
  std::vector<StepProgram> buckets;
  // Training artifacts: `program` is the training step (its params the weights and the
  // optimizer state, program.param_info saying which; `weights` their current values),
  // `eval` the forward pass in inference mode (planned; its params a subset of the
  // program's, by name), the optimizer here. No batch buckets.
  std::optional<TrainingInfo> training;
  StepProgram eval;
};

// Serializes `contents` into the bytes of an artifact file (header + payload).
// Errors: InvalidArgument when a weight is missing or disagrees with its spec (naming it),
// when a bucket's params differ from the program's, its signatures differ in more than the
// batch dim, or two programs have the same batch size; when a training artifact's param_info
// count differs from its params, its eval program names a parameter the training step does
// not have, or it has buckets; or when the payload would exceed FlatBuffers' 2 GiB limit;
// FailedPrecondition for an unplanned program, or one with write-back steps that is not a
// training artifact.
StatusOr<std::string> SerializeArtifact(const ArtifactContents& contents);

// Writes the artifact to `path` atomically ("<path>.tmp.<pid>", flushed, renamed).
// Errors: as SerializeArtifact; InvalidArgument on an I/O failure, naming the path.
Status WriteArtifact(const ArtifactContents& contents, const std::string& path);

// Limits applied while reading an untrusted artifact.
struct ArtifactLimits {
  int64_t max_arena_bytes = int64_t{16} << 30;  // 16 GiB
  int64_t max_elements = int64_t{1} << 36;      // per tensor
  bool verify_checksum = true;                  // the fuzz target turns it off
};

// A validated artifact. Pointers point into the buffer given to ParseArtifact, which must
// outlive the view.
struct ArtifactView {
  uint32_t format_version = 0;
  std::string model_name;
  std::string target = "cpu";  // runtime/target.h name
  std::string isa;             // "" = not recorded
  std::vector<TensorSpec> inputs, outputs, params;
  std::vector<StepDesc> steps;
  std::vector<StepDesc> prepack_steps;
  int64_t arena_bytes = 0;
  MemoryReport memory;
  std::vector<const uint8_t*> weights;    // params order; bytes = spec elements x dtype size
  std::vector<const uint8_t*> constants;  // constant index order
  std::vector<TensorSpec> constant_specs;
  struct KernelInfo {
    std::string name, target;
    const uint8_t* data = nullptr;
    int64_t size_bytes = 0;
  };
  std::vector<KernelInfo> kernels;
  std::string graph_text;
  std::map<std::string, std::string> metadata;
  int64_t file_bytes = 0;
  // Batch buckets (runtime/artifact.fbs Bucket), validated like the main program: the same
  // input and output names, dtypes and shapes but the first dim (the batch, distinct per
  // bucket and from the main program's), operands inside the bucket's own arena.
  struct BucketView {
    std::vector<TensorSpec> inputs, outputs;
    std::vector<StepDesc> steps, prepack_steps;
    int64_t arena_bytes = 0;
    MemoryReport memory;
    std::vector<const uint8_t*> constants;  // the bucket's Constant index order (into the pool)
    std::vector<TensorSpec> constant_specs;
    int64_t batch() const { return inputs.empty() || inputs[0].shape.empty() ? 0 : inputs[0].shape[0]; }
  };
  std::vector<BucketView> buckets;
  // Training artifacts (runtime/artifact.fbs Training): validated like the main program;
  // param_info has one entry per params entry; the eval program's parameters are params
  // entries (eval_param_index, distinct), its steps address its own arena.
  struct TrainingView {
    TrainingInfo info;
    std::vector<ParamInfo> param_info;
    std::vector<StepDesc> writeback_steps;
    bool has_eval = false;
    BucketView eval;
    std::vector<TensorSpec> eval_params;
    std::vector<int> eval_param_index;  // into params
  };
  std::optional<TrainingView> training;
};

// Parses and validates a whole artifact file held in memory (`data` should be 8-byte
// aligned; a 64-byte aligned buffer keeps the weights 64-byte aligned). Checks, in order:
// the header (magic, version, payload size), the CRC-32, the FlatBuffers verifier, required
// fields, names (non-empty, unique per signature), dtypes, shapes (dims >= 0, element counts
// within `limits`), weight and constant sizes against their specs, and every step operand:
// its buffer kind and index exist, dtype matches the bound tensor's, and
// [offset, offset + bytes) lies inside the arena or the bound buffer; then each batch bucket
// the same way, with its signatures checked against the main program's.
// Errors: InvalidArgument "not a kiln artifact (bad magic)"; Unimplemented for another format
// version; DataLoss for a truncated file or a checksum mismatch; InvalidArgument naming the
// field, the step (kind and node) and the operand for any other inconsistency.
StatusOr<ArtifactView> ParseArtifact(const uint8_t* data, size_t size, const ArtifactLimits& limits = {});

// Checks one operand against the buffers it may address (used by ParseArtifact; exposed for
// tests). `what` names it in the message, e.g. `conv2d "conv0" input 1`.
Status ValidateTensorRef(const TensorRef& ref, const std::string& what, int64_t arena_bytes,
                         const std::vector<TensorSpec>& inputs, const std::vector<TensorSpec>& outputs,
                         const std::vector<TensorSpec>& params, const std::vector<TensorSpec>& constants,
                         const ArtifactLimits& limits);

}  // namespace kiln::runtime
