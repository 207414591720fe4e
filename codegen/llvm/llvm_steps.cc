#include "codegen/llvm/llvm_steps.h"

#include "codegen/cpu/kernels_cpu.h"
#include "codegen/llvm/kernel_llvm.h"
#include "ir/fused_expr.h"

namespace kiln::codegen::llvm_gen {
namespace {

class FusedStep final : public runtime::Step {
 public:
  FusedStep(runtime::StepDesc desc, KernelFn fn) : Step(std::move(desc)), fn_(fn) {}
  Status Run(const runtime::ExecContext& ctx) const override {
    const auto& ins = desc().inputs;
    constexpr size_t kMax = 32;
    const float* ptrs[kMax];
    for (size_t i = 0; i < ins.size(); ++i) ptrs[i] = static_cast<const float*>(ctx.Ptr(ins[i]));
    fn_(ptrs, static_cast<float*>(ctx.Ptr(desc().outputs[0])));
    return OkStatus();
  }

 private:
  KernelFn fn_;
};

Status Bad(const runtime::StepDesc& desc, const std::string& m) { return InvalidArgument(desc.Where() + ": " + m); }

}  // namespace

StatusOr<std::unique_ptr<runtime::Step>> LlvmCpuStepFactory::Create(const runtime::StepDesc& desc) const {
  if (desc.kind != "fused_elementwise") return cpu::CpuSteps().Create(desc);
  auto it = desc.strings.find("expr");
  if (it == desc.strings.end()) return Bad(desc, "missing strings expr");
  if (desc.outputs.size() != 1) return Bad(desc, "takes one output, got " + std::to_string(desc.outputs.size()));
  if (desc.inputs.size() > 32) return Bad(desc, "takes at most 32 inputs");
  std::vector<Shape> shapes;
  for (const auto* ref : {&desc.outputs[0]}) {
    if (ref->dtype != DType::kF32 || !ref->dense()) return Bad(desc, "output must be dense f32: " + ref->ToString());
  }
  for (const auto& ref : desc.inputs) {
    if (ref.dtype != DType::kF32 || !ref.dense()) return Bad(desc, "inputs must be dense f32: " + ref.ToString());
    shapes.push_back(ref.dims);
  }
  auto expr = ir::fused::ParseExpr(it->second, shapes);
  if (!expr.ok()) return Bad(desc, expr.status().message());
  if (NumElements(expr->OutputShape()) != NumElements(desc.outputs[0].dims)) {
    return Bad(desc, "output " + desc.outputs[0].ToString() + " does not match the expression's " +
                         ShapeToString(expr->OutputShape()));
  }
  auto kernel = CpuKernelCache::Global().GetOrCompile(*expr);
  if (!kernel.ok()) return Internal(desc.Where() + ": " + kernel.status().message());
  return std::unique_ptr<runtime::Step>(new FusedStep(desc, (*kernel)->fn));
}

StatusOr<int64_t> LlvmCpuStepFactory::ScratchBytes(const runtime::StepDesc& desc) const {
  if (desc.kind != "fused_elementwise") return cpu::CpuSteps().ScratchBytes(desc);
  return int64_t{0};
}

StatusOr<runtime::StepFactory::Layouts> LlvmCpuStepFactory::ChooseLayouts(const runtime::StepDesc& desc) const {
  if (desc.kind != "fused_elementwise") return cpu::CpuSteps().ChooseLayouts(desc);
  return StepFactory::ChooseLayouts(desc);
}

const runtime::StepFactory& LlvmCpuSteps() {
  static const LlvmCpuStepFactory* f = new LlvmCpuStepFactory();
  return *f;
}

}  // namespace kiln::codegen::llvm_gen
