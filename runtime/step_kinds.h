// The table of step-kind facts: for every step kind a backend runs, its operands (names in
// the IR op's order, dtypes, how many inputs are optional), its attributes (names, types,
// defaults), which outputs may share an input's bytes, which inputs are scalar
// hyper-parameters, and its layout rule. Written once, in runtime/step_kinds.cc, and read by
// every consumer: the lowering (select steps, layouts, update groups, buffer planning), the
// CPU and LLVM kernels (operand checks, which kinds accept blocked layouts) and the IR op
// registry's consistency test (tests/runtime/step_kinds_test.cc checks that every IR op with
// a step kind names its operands the same way). Depends on nothing but base/, so a runtime
// without the compiler reads it too.
//
// Operand names follow oneDNN (src, weights, bias, dst, diff_src, diff_dst, diff_weights).
// Source: the operand lists of the IR ops (ir/ops/*.cc) and of oneDNN's primitives.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/dtype.h"
#include "runtime/step.h"

namespace kiln::runtime {

enum class OperandDType : uint8_t {
  kF32,
  kS32,
  kSameAsInput0,  // data movement: the first input's dtype
};

struct OperandInfo {
  const char* name;
  OperandDType dtype = OperandDType::kF32;
  // The bytes are not numbers of `dtype` (a oneDNN max-pooling workspace holds indices in
  // an f32-typed buffer): numerics checking skips it (runtime/check_numerics.h).
  bool opaque = false;
};

enum class AttrType : uint8_t { kInt, kInts, kFloat, kString };

// An attribute a step of the kind may carry, with the value a kernel assumes when absent
// (text form: "1", "[0,0]", "relu", "" for "no default: required or empty").
struct AttrInfo {
  const char* name;
  AttrType type;
  const char* default_value = "";
};

// How a target may lay out the kind's operands (StepFactory::ChooseLayouts).
enum class LayoutRule : uint8_t {
  kDense,          // every operand dense row-major; blocked operands are rejected
  kTargetChoice,   // the target picks every operand's layout (oneDNN format_tag::any): conv
  kFollowSource,   // outputs take the layout of the data input (pooling, eltwise, backward)
  kFollowWeight,   // grad, state and outputs take the weight's layout (optimizer updates)
  kFollowSourceData,  // operands of src's rank (src, dst, diff_dst, diff_src) take the
                      // layout of src (the last input of the highest rank); per-channel
                      // vectors stay dense (batch normalization)
  kFollowSourceSameDims,  // elementwise binary ops: when src0, src1 and dst have the same
                          // dims, all three take the layout of the first blocked input (the
                          // residual adds of ResNet/MobileNet between blocked convolutions);
                          // with broadcasting every operand is dense
  kConvert,        // reorder: input and output each in any layout, same dims
};

// Output `output` may be written over input `input` (same bytes, same layout): the kernel
// reads each element before it writes it.
struct InPlacePair {
  int output;
  int input;
};

struct StepKindInfo {
  std::string_view kind;
  // In the IR op's order; the last (inputs.size() - min_inputs) are optional. A kind may
  // append an operand the IR op does not have, which only the lowering adds (pool2d's
  // workspace output and pool2d_backward's workspace input).
  std::vector<OperandInfo> inputs;
  std::vector<OperandInfo> outputs;  // the most a step may have (see num_outputs_attr)
  int min_inputs = 0;
  std::vector<AttrInfo> attrs;
  std::vector<InPlacePair> in_place;
  // Inputs that hold one f32 read as a scalar at run time (lr, rescale_grad of updates).
  std::vector<int> scalar_inputs;
  LayoutRule layout = LayoutRule::kDense;
  // An optimizer update: writes parameters and optimizer state in place, and steps of the
  // same kind, attributes and scalar inputs may run as one "<kind>_group" step.
  bool is_update = false;
};

// The facts of `kind` ("conv2d"), or nullptr for a kind no backend runs. Group kinds
// ("sgd_update_group") are not in the table: SplitGroup gives their members.
const StepKindInfo* FindStepKind(std::string_view kind);
// Every kind, in table order.
const std::vector<StepKindInfo>& AllStepKinds();

// True when output 0 may reuse input 0's buffer (an in-place pair {0, 0}); the buffer
// planner uses it for in-place reuse of dying inputs.
bool OutputReusesInput0(std::string_view kind);
// The input that output `k` of an update kind overwrites in place, or -1.
int UpdateInPlaceInput(std::string_view kind, int k);
// True when a step of the kind accepts operands in blocked layouts (any rule but kDense).
bool AcceptsBlockedLayouts(std::string_view kind);

// How many outputs `desc` must have: the optional outputs follow attributes (with_bias of
// the backward-weights kinds, with_workspace of pool2d) or inputs (sgd_update has mom_out
// exactly when it has mom). Requires FindStepKind(desc.kind).
size_t ExpectedOutputs(const StepKindInfo& info, const StepDesc& desc);

}  // namespace kiln::runtime
