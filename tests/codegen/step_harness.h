// Test harness for the CPU steps: builds a StepDesc the way the lowering does, places the
// operands in an arena or in input/output buffers, runs the step, and compares it with the
// IR reference kernel. Uses Catch2 assertions, so it is for tests only.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "base/tensor.h"
#include "ir/op_registry.h"
#include "runtime/step.h"

namespace kiln::codegen_test {

using runtime::BufferKind;
using runtime::ExecContext;
using runtime::StepDesc;
using runtime::TensorRef;

// |step - reference| <= kTolerance * max(1, |reference|) for f32 outputs; s32 exactly.
constexpr double kTolerance = 1e-4;
constexpr uint32_t kSeed = 42;

// Where the test puts the operands.
enum class Placement {
  kArena,     // all operands in one arena, 64-byte aligned offsets
  kIo,        // inputs as kInput buffers, outputs as kOutput buffers
  kInPlace,   // arena, outputs[i] sharing inputs[i]'s bytes for the aliased outputs
};

struct Options {
  Placement placement = Placement::kArena;
  int num_in_place = 1;          // kInPlace: how many leading outputs alias inputs (sgd_update: 2 -> mom)
  bool provide_scratch = true;   // false: run without the arena scratch ScratchBytes asks for
  const runtime::StepFactory* factory = nullptr;  // null: backends::cpu::CpuSteps()
  // Fills input `i` (already sized); the default is uniform [-1, 1] for f32.
  std::function<void(size_t i, std::vector<double>& values, std::mt19937& rng)> fill;
};

// A 64-byte aligned buffer, filled with 0xff bytes (NaN as f32) so unwritten outputs show.
struct Buffer {
  std::unique_ptr<uint8_t, void (*)(void*)> data{nullptr, AlignedFree};
  int64_t bytes = 0;
  explicit Buffer(int64_t n) : data(static_cast<uint8_t*>(AlignedAlloc(std::max<int64_t>(n, 1))), AlignedFree), bytes(n) {
    std::memset(data.get(), 0xff, static_cast<size_t>(std::max<int64_t>(n, 1)));
  }
};

// `bytes` rounded up to a multiple of 64.
int64_t Align64(int64_t bytes);

// The StepDesc the lowering writes for `node`: every IR attribute copied (int -> {v}, list ->
// list, float -> floats, string -> strings); no operands yet.
StepDesc ToStepDesc(const ir::Node& node);

// Writes `values` as f32 or s32 elements at `dst`; reads `n` elements back as doubles.
void Write(void* dst, DType dtype, const std::vector<double>& values);
std::vector<double> Read(const void* src, DType dtype, int64_t n);

struct StepRun {
  Status status;
  std::vector<std::vector<double>> outputs;
};

// Creates the step for `desc` (dims and dtypes filled, buffers not yet), places the operands
// as `opts` says, writes `inputs`, runs and reads the outputs back. A creation error comes
// back as the status, with no outputs.
StepRun CreateAndRun(StepDesc desc, const std::vector<std::vector<double>>& inputs, const Options& opts);

// Runs `kind` with `attrs` on random inputs of `in_types` (output types from the IR's shape
// inference) through the CPU step and the IR reference, and CHECKs every output.
void CheckAgainstReference(const std::string& kind, const ir::Attrs& attrs, const std::vector<ir::TensorType>& in_types,
                           const Options& opts = {});

// f32 / s32 tensor types with the default layout for the rank.
ir::TensorType F32(Shape s);
ir::TensorType S32(Shape s);

// Options whose fill gives input `label_input` integer labels in [0, classes) and the
// other inputs uniform [-3, 3].
Options WithLabels(size_t label_input, int64_t classes);

}  // namespace kiln::codegen_test
