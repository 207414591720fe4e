#include "compiler/target.h"

#include "backends/cpu/cpu_target.h"
#include "backends/cpu/kernels_cpu.h"
#include "backends/cuda/cuda_target.h"
#include "base/registry.h"
#include "codegen/llvm/llvm_steps.h"
#include "passes/elementwise_fusion.h"
#include "runtime/step_kinds.h"

namespace kiln::compiler {
namespace {

NamedRegistry<Target>& Registry() {
  static auto* r = new NamedRegistry<Target>();
  return *r;
}

class CpuCompileTargetImpl final : public Target {
 public:
  const runtime::Target& runtime_target() const override { return backends::cpu::CpuTarget(); }
  bool SupportsPostOp(std::string_view op, std::string_view post_op) const override {
    bool eltwise = post_op == "relu" || post_op == "sigmoid" || post_op == "tanh" || post_op == "clip";
    if (op == "conv2d") return eltwise || post_op == "sum";
    if (op == "dense") return eltwise;
    if (op == "pool2d_backward" || op == "batch_norm") return post_op == "relu";
    return false;
  }
  bool SupportsOp(std::string_view op) const override {
    // fused_elementwise runs as an LLVM JIT kernel (requested with fuse_elementwise).
    return runtime::FindStepKind(op) != nullptr;
  }
  const runtime::StepFactory& Steps(const TargetRequest& r) const override {
    // LLVM kernels where they win: the fused elementwise kernels the fusion pass creates, and
    // the optimizer updates when asked (bench/llvm.md); everything else is oneDNN or native.
    if (r.fuse_elementwise || r.llvm_kernels) return codegen::llvm_gen::LlvmCpuSteps();
    return backends::cpu::CpuSteps();
  }
  codegen::LowerOptions DefaultLowerOptions(const TargetRequest& r) const override {
    codegen::LowerOptions o;
    o.blocked_layouts = r.opt_level >= 2;
    o.plan_memory = r.opt_level >= 2;
    o.group_updates = r.opt_level >= 2;
    o.resident_params = r.opt_level >= 2;
    // Max pooling's backward from oneDNN's workspace where the pool has >= 64 channels (every
    // zoo pool): on AVX2, training at batch 32, 3x64x64, pool2d_backward googlenet 70.8 ->
    // 16.3 ms (with channels-last pools), resnet18 18.3 -> 3.5 ms, densenet121 21.4 -> 6.7 ms
    // (the forward +1 ms).
    // LeNet's 6- and 16-channel pools lose with it (11.2 -> 14.2 ms/step) and keep the native
    // backward, as the tutorial CNNs' (20, 50 channels) do (bench/README.md).
    o.pool_workspace = r.opt_level >= 2;
    o.pool_workspace_min_channels = 64;
    o.target = "cpu";
    return o;
  }
  void AddExtraPasses(passes::PassManager& pm, const TargetRequest& r) const override {
    if (r.opt_level >= 2 && r.fuse_elementwise) {
      pm.Add(std::make_unique<passes::ElementwiseFusion>());
      pm.Add(std::make_unique<passes::DeadCodeElimination>());
    }
  }
};

// The cuda target's compile half: dense NCHW operands everywhere (cuDNN's and cuBLAS's
// native layouts; no reorders), the memory plan, no post-op fusion and no generated
// kernels yet. Its lowering is tested (tests/backends/cuda); its steps have no GPU kernels
// (backends/cuda/cuda_target.h), so instantiating needs a driver and then fails naming the
// first step kind. NOT TESTED ON A GPU.
class CudaCompileTargetImpl final : public Target {
 public:
  const runtime::Target& runtime_target() const override { return backends::cuda::CudaTarget(); }
  bool SupportsPostOp(std::string_view, std::string_view) const override { return false; }
  bool SupportsOp(std::string_view op) const override {
    return op != "fused_elementwise" && runtime::FindStepKind(op) != nullptr;
  }
  const runtime::StepFactory& Steps(const TargetRequest&) const override { return backends::cuda::CudaSteps(); }
  codegen::LowerOptions DefaultLowerOptions(const TargetRequest& r) const override {
    codegen::LowerOptions o;
    o.plan_memory = r.opt_level >= 2;
    o.group_updates = false;
    o.target = "cuda";
    return o;
  }
  void AddExtraPasses(passes::PassManager&, const TargetRequest&) const override {}
};

const Target& CudaCompileTarget() {
  static const auto* target = new CudaCompileTargetImpl();
  return *target;
}

const bool kCpuRegistered = RegisterCompileTarget(&CpuCompileTarget());
const bool kCudaRegistered = RegisterCompileTarget(&CudaCompileTarget());

}  // namespace

const char* ModeName(Mode mode) {
  switch (mode) {
    case Mode::kInference: return "inference";
    case Mode::kTraining: return "training";
    case Mode::kGradientsOnly: return "gradients-only";
    case Mode::kStreamUpdate: return "stream-update";
  }
  return "?";
}

bool RegisterCompileTarget(const Target* target) {
  return Registry().Register(std::string(target->TargetName()), target);
}

StatusOr<const Target*> FindCompileTarget(std::string_view name) {
  (void)kCpuRegistered;
  (void)kCudaRegistered;
  if (const Target* t = Registry().Find(name)) return t;
  return NotFound("no compile target '" + std::string(name) + "' (targets: " + Registry().NamesText() + ")");
}

std::vector<std::string> CompileTargetNames() {
  (void)kCpuRegistered;
  (void)kCudaRegistered;
  return Registry().Names();
}

const Target& CpuCompileTarget() {
  static const auto* target = new CpuCompileTargetImpl();
  return *target;
}

}  // namespace kiln::compiler
