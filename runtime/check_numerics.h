// Numerics checking: find the first NaN or Inf a run produces and say where it came from,
// as TensorFlow's tf.debugging.check_numerics / enable_check_numerics and PyTorch's
// torch.autograd.detect_anomaly do. A Session with SetCheckNumerics(true) checks its f32
// inputs before the first step and every f32 output of every step right after the step
// (runtime/executable.h); the first non-finite value stops the run with an InvalidArgument
// naming the step (index, kind, node), the operand and the first bad element.
//
// Cost: one read of every f32 byte a step writes (bench/README.md, "check_numerics").
// Integer operands and opaque ones (a oneDNN max-pooling workspace, which holds indices in
// an f32-typed buffer; runtime/step_kinds.h OperandInfo::opaque) are not checked.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "base/dtype.h"
#include "base/status.h"
#include "runtime/step.h"

namespace kiln::runtime {

// The first non-finite element of `n` f32 values: its index, its value, and how many of the
// `n` are non-finite. nullopt when all are finite (n == 0 included).
struct NonFinite {
  int64_t index = 0;
  float value = 0;
  int64_t count = 0;
};
std::optional<NonFinite> FindNonFinite(const float* data, int64_t n);

// "[0,2,3,1]": the row-major multi-index of flat element `index` of a dense `dims` tensor.
std::string MultiIndexToString(const Shape& dims, int64_t index);

// "NaN", "+Inf" or "-Inf".
std::string NonFiniteName(float value);

// Checks run input `name` (dense, `dims` elements of `dtype` at `data`): OK for s32 or all
// finite; else InvalidArgument "check_numerics: input 'data' f32[256,1,28,28] holds NaN at
// index 5 [0,0,0,5] (3 of 200704 elements non-finite)".
Status CheckInputNumerics(const std::string& name, DType dtype, const Shape& dims, const void* data);

// Checks every f32 output of step `index` (of `num_steps`), whose operands `ctx` resolves:
// OK when all are finite; else InvalidArgument "check_numerics: step 3 of 29, op conv2d
// node \"0.conv\", wrote +Inf to output 0 'dst' f32[1,6,24,24] at index 7 [0,0,0,7] (12 of
// 3456 elements non-finite)"; a group step's output is named by its member ("op sgd_update
// node \"u#1\" (sgd_update_group \"u\" member 1)"). Blocked outputs (a oneDNN layout,
// zero padding included) report the element's offset in that layout; an output bound to
// parameter i is named by param_names[i] (the executable's parameter order; may be empty).
// Errors: Unimplemented when `ctx` is not host memory.
Status CheckStepNumerics(const StepDesc& desc, size_t index, size_t num_steps, const ExecContext& ctx,
                         const std::vector<std::string>& param_names = {});

}  // namespace kiln::runtime
