// CpuStepFactory: the kind table, operand checks and the dispatch between oneDNN plans and
// native loops.
#include "backends/cpu/kernels_cpu.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>

#include "backends/cpu/kernels_internal.h"

// GCC 12 reports a false "may be used uninitialized" inside std::optional<DnnlPlan> moves
// in Choose (GCC bug 80635).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

namespace kiln::backends::cpu {
namespace internal {
namespace {

// The kernels of every kind this backend runs; operands and attributes come from the
// step-kind table (runtime/step_kinds.h), which every kind here must have a line in.
const std::vector<KindSpec>& Kinds() {
  static const auto* kinds = [] {
    auto* k = new std::vector<KindSpec>{
        {"conv2d", PlanConv2d, nullptr},
        {"conv2d_backward_data", PlanConv2dBackwardData, nullptr},
        {"conv2d_backward_weights", PlanConv2dBackwardWeights, nullptr},
        {"pool2d", PlanPool2d, nullptr},
        {"pool2d_backward", PlanPool2dBackward, NativePool2dBackward},
        {"dense", PlanDense, nullptr},
        {"dense_backward_data", PlanDenseBackwardData, nullptr},
        {"dense_backward_weights", PlanDenseBackwardWeights, nullptr},
        {"batch_norm", PlanBatchNorm, nullptr},
        {"batch_norm_training", PlanBatchNormTraining, nullptr},
        {"batch_norm_backward", PlanBatchNormBackward, nullptr},
        {"moving_average", nullptr, NativeMovingAverage},
        {"dropout", nullptr, NativeDropout},
        {"relu", PlanEltwise, nullptr},
        {"sigmoid", PlanEltwise, nullptr},
        {"tanh", PlanEltwise, nullptr},
        {"leaky_relu", PlanEltwise, nullptr},
        {"leaky_relu_backward", PlanEltwiseBackward, nullptr},
        {"relu_backward", PlanEltwiseBackward, nullptr},
        {"elu", PlanSrcActivation, nullptr},
        {"elu_backward", PlanSrcActivationBackward, nullptr},
        {"selu", PlanSrcActivation, nullptr},
        {"selu_backward", PlanSrcActivationBackward, nullptr},
        {"gelu", PlanSrcActivation, nullptr},
        {"gelu_backward", PlanSrcActivationBackward, nullptr},
        {"silu", PlanSrcActivation, nullptr},
        {"silu_backward", PlanSrcActivationBackward, nullptr},
        {"hard_sigmoid", PlanSrcActivation, nullptr},
        {"hard_sigmoid_backward", PlanSrcActivationBackward, nullptr},
        {"hard_swish", PlanSrcActivation, nullptr},
        {"hard_swish_backward", PlanSrcActivationBackward, nullptr},
        {"softplus", PlanSrcActivation, nullptr},
        {"softplus_backward", PlanSrcActivationBackward, nullptr},
        {"softsign", nullptr, NativeSoftsign},
        {"softsign_backward", nullptr, NativeSoftsignBackward},
        {"clip", PlanSrcActivation, nullptr},
        {"clip_backward", PlanSrcActivationBackward, nullptr},
        {"exp", PlanSrcActivation, nullptr},
        {"exp_backward", PlanSrcActivationBackward, nullptr},
        {"log", PlanSrcActivation, nullptr},
        {"log_backward", PlanSrcActivationBackward, nullptr},
        {"sqrt", PlanSrcActivation, nullptr},
        {"sqrt_backward", PlanSrcActivationBackward, nullptr},
        {"abs", PlanSrcActivation, nullptr},
        {"abs_backward", PlanSrcActivationBackward, nullptr},
        {"neg", PlanSrcActivation, nullptr},
        {"neg_backward", PlanSrcActivationBackward, nullptr},
        {"sigmoid_backward", PlanEltwiseBackward, nullptr},
        {"tanh_backward", PlanEltwiseBackward, nullptr},
        {"add", PlanBinary, NativeBinary},
        {"mul", PlanBinary, NativeBinary},
        {"sub", PlanBinary, NativeBinary},
        {"div", PlanBinary, NativeBinary},
        {"maximum", PlanBinary, NativeBinary},
        {"minimum", PlanBinary, NativeBinary},
        {"greater_equal", nullptr, NativeBinary},
        {"reduce_sum", PlanReduce, NativeReduce},
        {"reduce_mean", PlanReduce, NativeReduce},
        {"softmax", PlanSoftmax, nullptr},
        {"log_softmax", PlanSoftmax, nullptr},
        {"softmax_backward", PlanSoftmaxBackward, nullptr},
        {"log_softmax_backward", PlanSoftmaxBackward, nullptr},
        {"broadcast_to", nullptr, NativeBroadcastTo},
        {"reshape", nullptr, NativeReshape},
        {"concat", nullptr, NativeConcat},
        {"split", nullptr, NativeSplit},
        {"transpose", nullptr, NativeTranspose},
        {"softmax_cross_entropy", nullptr, NativeSoftmaxCrossEntropy},
        {"softmax_cross_entropy_backward", nullptr, NativeSoftmaxCrossEntropyBackward},
        {"argmax", nullptr, NativeArgmax},
        {"fill", nullptr, NativeFill},
        {"one_hot", nullptr, NativeOneHot},
        {"reorder", PlanReorder, nullptr},
        {"sgd_update", nullptr, NativeSgdUpdate},
        {"adam_update", nullptr, NativeAdamUpdate},
    };
    for (KindSpec& spec : *k) {
      spec.info = runtime::FindStepKind(spec.kind);
      if (spec.info == nullptr) {
        std::fprintf(stderr, "kiln: CPU kind %s has no line in runtime/step_kinds.cc\n", spec.kind);
        std::abort();
      }
    }
    return k;
  }();
  return *kinds;
}

std::string CountText(size_t lo, size_t hi) {
  return lo == hi ? std::to_string(lo) : std::to_string(lo) + " to " + std::to_string(hi);
}

Status CheckDTypes(const StepDesc& desc, const std::vector<runtime::OperandInfo>& specs,
                   const std::vector<TensorRef>& refs) {
  for (size_t i = 0; i < refs.size(); ++i) {
    DType want = DType::kF32;
    switch (specs[i].dtype) {
      case runtime::OperandDType::kF32: want = DType::kF32; break;
      case runtime::OperandDType::kS32: want = DType::kS32; break;
      case runtime::OperandDType::kSameAsInput0:
        want = desc.inputs.empty() ? refs[i].dtype : desc.inputs[0].dtype;
        break;
    }
    if (refs[i].dtype != want) {
      return InvalidOperands(desc, std::string(specs[i].name) + " must be " + std::string(DTypeName(want)) + ", got " +
                                       std::string(DTypeName(refs[i].dtype)));
    }
  }
  return OkStatus();
}

Status CheckOperands(const KindSpec& spec, const StepDesc& desc) {
  const runtime::StepKindInfo& info = *spec.info;
  size_t max_in = info.inputs.size(), min_in = static_cast<size_t>(info.min_inputs);
  if (desc.inputs.size() < min_in || desc.inputs.size() > max_in) {
    return InvalidOperands(desc, "takes " + CountText(min_in, max_in) + " inputs, got " +
                                     std::to_string(desc.inputs.size()));
  }
  size_t want_out = runtime::ExpectedOutputs(info, desc);
  if (desc.outputs.size() != want_out) {
    return InvalidOperands(desc, "takes " + std::to_string(want_out) + " outputs, got " +
                                     std::to_string(desc.outputs.size()));
  }
  RETURN_IF_ERROR(CheckDTypes(desc, info.inputs, desc.inputs));
  return CheckDTypes(desc, info.outputs, desc.outputs);
}

// What Create and ScratchBytes share: a oneDNN plan, or the native loop to run.
struct Choice {
  std::optional<DnnlPlan> plan;
  NativeFn native = nullptr;
};

StatusOr<Choice> Choose(const StepDesc& desc) {
  const KindSpec* spec = FindKind(desc.kind);
  if (spec == nullptr) return Unimplemented(Describe(desc, "the CPU backend has no kernel for this kind"));
  RETURN_IF_ERROR(CheckOperands(*spec, desc));
  RETURN_IF_ERROR(CheckLayouts(desc, runtime::AcceptsBlockedLayouts(desc.kind)));
  Choice choice;
  if (spec->plan != nullptr) {
    bool zero_volume = HasZeroVolume(desc);
    try {
      // Planning checks the operands first, so zero-volume steps are validated too.
      ASSIGN_OR_RETURN(choice.plan, spec->plan(desc));
    } catch (const dnnl::error& e) {
      // oneDNN may reject zero-volume shapes it could not run anyway (inner product, K = 0).
      if (!zero_volume) return DnnlError(desc, e, /*at_run=*/false);
    }
    if (zero_volume) {
      choice.plan.reset();
      choice.native = ZeroVolumeKernel;
      return choice;
    }
    if (choice.plan) return choice;
  }
  if (spec->native == nullptr) return Internal(Describe(desc, "no native kernel for a configuration oneDNN declined"));
  ASSIGN_OR_RETURN(choice.native, spec->native(desc));
  return choice;
}

}  // namespace

const KindSpec* FindKind(std::string_view kind) {
  for (const KindSpec& spec : Kinds()) {
    if (kind == spec.kind) return &spec;
  }
  return nullptr;
}

std::string Describe(const StepDesc& desc, const std::string& message) {
  const KindSpec* spec = FindKind(desc.kind);
  std::string operands;
  auto list = [&](const std::vector<TensorRef>& refs, const std::vector<runtime::OperandInfo>* specs,
                  const char* fallback) {
    for (size_t i = 0; i < refs.size(); ++i) {
      if (!operands.empty()) operands += ", ";
      operands += specs != nullptr && i < specs->size() ? std::string((*specs)[i].name)
                                                        : std::string(fallback) + std::to_string(i);
      operands += " " + refs[i].ToString();
    }
  };
  list(desc.inputs, spec ? &spec->info->inputs : nullptr, "input");
  list(desc.outputs, spec ? &spec->info->outputs : nullptr, "output");
  return desc.Where() + ": " + message + " (" + operands + ")";
}

Status InvalidOperands(const StepDesc& desc, const std::string& message) {
  return InvalidArgument(Describe(desc, message));
}

StatusOr<std::vector<int64_t>> GetInts(const StepDesc& desc, const std::string& key, size_t size,
                                       std::vector<int64_t> def) {
  auto it = desc.ints.find(key);
  if (it == desc.ints.end()) return def;
  if (size != 0 && it->second.size() != size) {
    return InvalidOperands(desc, "attribute " + key + "=" + ShapeToString(it->second) + " must have " +
                                     std::to_string(size) + " values");
  }
  return it->second;
}

int64_t GetInt(const StepDesc& desc, const std::string& key, int64_t def) {
  auto it = desc.ints.find(key);
  return it == desc.ints.end() || it->second.empty() ? def : it->second[0];
}

double GetFloat(const StepDesc& desc, const std::string& key, double def) {
  auto it = desc.floats.find(key);
  if (it != desc.floats.end()) return it->second;
  // A float attribute the front end wrote as an integer (e.g. value=0) may arrive in ints.
  auto iit = desc.ints.find(key);
  if (iit != desc.ints.end() && iit->second.size() == 1) return static_cast<double>(iit->second[0]);
  return def;
}

Status CheckRank(const StepDesc& desc, const TensorRef& ref, const char* name, size_t rank) {
  if (ref.dims.size() != rank) {
    return InvalidOperands(desc, std::string(name) + " must have rank " + std::to_string(rank) + ", got rank " +
                                     std::to_string(ref.dims.size()));
  }
  return OkStatus();
}

}  // namespace internal

StatusOr<std::unique_ptr<runtime::Step>> CpuStepFactory::Create(const runtime::StepDesc& desc) const {
  if (runtime::IsGroupKind(desc.kind)) return runtime::CreateGroupStep(desc, *this);
  internal::SerialScope serial(internal::RunsSerially(desc));
  ASSIGN_OR_RETURN(internal::Choice choice, internal::Choose(desc));
  if (choice.plan) return internal::CreateDnnlStep(desc, *choice.plan);
  return internal::CreateNativeStep(desc, choice.native);
}

StatusOr<int64_t> CpuStepFactory::ScratchBytes(const runtime::StepDesc& desc) const {
  if (runtime::IsGroupKind(desc.kind)) return runtime::GroupScratchBytes(desc, *this);
  internal::SerialScope serial(internal::RunsSerially(desc));
  ASSIGN_OR_RETURN(internal::Choice choice, internal::Choose(desc));
  return choice.plan ? choice.plan->ScratchBytes() : int64_t{0};
}

StatusOr<runtime::StepFactory::Layouts> CpuStepFactory::ChooseLayouts(const runtime::StepDesc& desc) const {
  if (runtime::IsGroupKind(desc.kind)) return StepFactory::ChooseLayouts(desc);
  const internal::KindSpec* spec = internal::FindKind(desc.kind);
  if (spec == nullptr) {
    return Unimplemented(internal::Describe(desc, "the CPU backend has no kernel for this kind"));
  }
  return internal::ChooseCpuLayouts(desc);
}

const runtime::StepFactory& CpuSteps() {
  static const auto* factory = new CpuStepFactory();
  return *factory;
}

}  // namespace kiln::backends::cpu
