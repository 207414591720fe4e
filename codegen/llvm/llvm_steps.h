// The compiler-side CPU StepFactory with LLVM-generated kernels: `fused_elementwise` steps
// are JIT-compiled here (codegen/llvm/kernel_llvm.h) when the step is created, i.e. at graph
// compile time; every other kind is delegated to backends::cpu::CpuSteps() (oneDNN and native
// loops). Lives in codegen/llvm so that the runtime-only target (backends/cpu) never links LLVM.
//
// fused_elementwise step: inputs src0..srcK-1 (dense f32, shapes as the expression's inputs),
// one output (dense f32, NumElements(expr.OutputShape()) elements); strings expr = the kernel
// IR text (ir/fused_expr.h). The output must not alias an input.
//
// sgd_update and adam_update steps (operands as backends/cpu/kernels_cpu.h) become one
// JIT-compiled multi-output kernel per update formula (CpuKernelCache::GetOrCompileMulti:
// every output of an element computed in one vectorized loop, hyper-parameters baked in as
// constants, lr and rescale_grad read at run time), replacing CpuSteps()' native loops.
// Outputs may alias their inputs (in-place updates).
#pragma once

#include <memory>

#include "base/status.h"
#include "codegen/llvm/kernel_llvm.h"
#include "runtime/step.h"

namespace kiln::codegen::llvm_gen {

class LlvmCpuStepFactory final : public runtime::StepFactory {
 public:
  // fused_elementwise: parses strings["expr"] with the inputs' dims and gets the kernel from
  // CpuKernelCache::Global() (compiling it on a miss). Errors: InvalidArgument naming the
  // node for a missing/bad expression, non-f32 or blocked operands, or an output size that
  // differs from the expression's; Internal for LLVM failures. Other kinds: CpuSteps().
  StatusOr<std::unique_ptr<runtime::Step>> Create(const runtime::StepDesc& desc) const override;
  // 0 for fused_elementwise; CpuSteps() otherwise.
  StatusOr<int64_t> ScratchBytes(const runtime::StepDesc& desc) const override;
  // Dense operands for fused_elementwise; CpuSteps() otherwise.
  StatusOr<Layouts> ChooseLayouts(const runtime::StepDesc& desc) const override;
};

// The JIT kernel of an sgd_update / adam_update step (what Create runs), from
// CpuKernelCache::Global(). Errors: InvalidArgument naming the node for another kind or
// operands the native kind rejects; Internal for LLVM failures.
StatusOr<const CpuKernel*> UpdateKernel(const runtime::StepDesc& desc);

// A process-wide LlvmCpuStepFactory.
const runtime::StepFactory& LlvmCpuSteps();

}  // namespace kiln::codegen::llvm_gen
