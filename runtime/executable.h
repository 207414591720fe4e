// Executable and Session: the runtime half of a compiled graph (DESIGN.md runtime/).
//
// An Executable is immutable and shared: an ordered list of steps, the arena size, the
// input/output/parameter signatures and the constants. A Session owns one arena and the
// bindings to a ParameterStore, and runs the steps; many sessions may run one executable
// concurrently.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "base/tensor.h"
#include "runtime/parameter_store.h"
#include "runtime/step.h"

namespace kiln::runtime {

// Name, element type and shape of one bound tensor (dense row-major: NCHW, OIHW, NC).
struct TensorSpec {
  std::string name;
  DType dtype = DType::kF32;
  Shape shape;
  std::string ToString() const { return name + ": " + std::string(DTypeName(dtype)) + ShapeToString(shape); }
};

class Executable {
 public:
  Executable(std::vector<TensorSpec> inputs, std::vector<TensorSpec> outputs, std::vector<TensorSpec> params,
             std::vector<Tensor> constants, std::vector<std::unique_ptr<Step>> steps, int64_t arena_bytes);

  const std::vector<TensorSpec>& inputs() const { return inputs_; }
  const std::vector<TensorSpec>& outputs() const { return outputs_; }
  // Parameters and optimizer state the steps read (and update in place), by name.
  const std::vector<TensorSpec>& params() const { return params_; }
  const std::vector<Tensor>& constants() const { return constants_; }
  const std::vector<std::unique_ptr<Step>>& steps() const { return steps_; }
  int64_t arena_bytes() const { return arena_bytes_; }
  // Index of the named input/output, or -1.
  int InputIndex(const std::string& name) const;
  int OutputIndex(const std::string& name) const;
  // One line per step: kind, node, operands (for dumps and `kiln inspect`).
  std::string DescribeSteps() const;

 private:
  std::vector<TensorSpec> inputs_, outputs_, params_;
  std::vector<Tensor> constants_;
  std::vector<std::unique_ptr<Step>> steps_;
  int64_t arena_bytes_;
};

class Session {
 public:
  // Binds every parameter the executable needs to the tensor of the same name in `store`
  // (which must outlive the session). Errors: NotFound for a missing parameter,
  // InvalidArgument for a dtype or shape mismatch (naming the parameter and both shapes).
  static StatusOr<std::unique_ptr<Session>> Create(std::shared_ptr<const Executable> exe, ParameterStore* store);
  // The same with explicit bindings: parameter name -> tensor (which must outlive the session).
  static StatusOr<std::unique_ptr<Session>> Create(std::shared_ptr<const Executable> exe,
                                                   const std::map<std::string, Tensor*>& bindings);

  // Runs one step of the graph. `inputs` follow executable().inputs() order and must match
  // each spec's dtype and shape; `outputs` are resized to the output specs if they differ.
  // Parameters and state in the store are updated in place when the graph has updates.
  // Errors: InvalidArgument naming the input and both shapes; errors from the steps.
  Status Run(const std::vector<const Tensor*>& inputs, const std::vector<Tensor*>& outputs);

  const Executable& executable() const { return *exe_; }
  // When on, Run records the wall time of each step (seconds), summed over runs.
  void SetProfiling(bool on) { profiling_ = on; }
  const std::vector<double>& step_seconds() const { return step_seconds_; }

 private:
  Session(std::shared_ptr<const Executable> exe, std::vector<void*> params);
  std::shared_ptr<const Executable> exe_;
  std::vector<void*> params_;
  std::unique_ptr<uint8_t, void (*)(void*)> arena_;
  std::vector<const void*> constants_;
  bool profiling_ = false;
  std::vector<double> step_seconds_;
};

}  // namespace kiln::runtime
