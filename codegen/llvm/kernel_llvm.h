// LLVM code generation for fused elementwise/reduction kernels (ir/fused_expr.h), LLVM 19.
//
// CPU: the expression becomes a loop nest over the iteration shape (adjacent axes merged
// when every operand is contiguous or broadcast along both; size-1 axes dropped). The
// innermost loop reads each input at stride 1 or 0 (broadcast), so LLVM's loop vectorizer
// turns it into vector code for the host with a scalar tail for the remainder; sum
// reductions over the innermost axis accumulate with `reassoc` fast-math so they vectorize
// too. The module is optimized with the new pass manager's O3 pipeline for a TargetMachine
// built from the host (ORC JITTargetMachineBuilder::detectHost: CPU name and features such
// as AVX-512) and compiled by ORC LLJIT. Kernel ABI (C):
//   void kernel(const float* const* inputs, float* out)
// inputs[k] holds NumElements(expr.inputs[k]) floats, `out` NumElements(expr.OutputShape())
// floats; `out` must not overlap an input. Math: exp/log call libm's expf/logf; tanh is
// 1 - 2 / (exp(2x) + 1); sigmoid 1 / (1 + exp(-x)); max/min are llvm.maxnum/minnum.
//
// GPU: the same expression as a PTX kernel for nvptx64-nvidia-cuda (LLVM NVPTX backend):
//   .entry <name>(const float* in0, ..., const float* inK-1, float* out)   (global pointers)
// one thread per output element (index = ctaid.x * ntid.x + tid.x, bounds-checked against
// the output size); a reduction loops over its reduced elements in that thread. exp and log
// use ex2.approx / lg2.approx. Launch with ceil(n / block) blocks of `block` threads.
// Marked as a kernel with !nvvm.annotations (LLVM 19; no ptx_kernel calling convention).
// Source: LLVM 19 docs "Building a JIT" (ORC LLJIT), "User Guide for NVPTX Back-end".
#pragma once

#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <unordered_map>

#include "base/status.h"
#include "ir/fused_expr.h"

namespace llvm {
class Function;
class Module;
}  // namespace llvm

namespace kiln::codegen::llvm_gen {

using KernelFn = void (*)(const float* const* inputs, float* out);
// A multi-output elementwise kernel (CpuKernelCache::GetOrCompileMulti): n elements.
using MultiKernelFn = void (*)(const float* const* inputs, float* const* outs, int64_t n);

// A compiled CPU kernel. `optimized_ir` is the module's LLVM IR text after the O3 pipeline
// (kept for tests and dumps); `compile_seconds` is wall time for IR emission, optimization
// and machine-code generation.
struct CpuKernel {
  KernelFn fn = nullptr;
  MultiKernelFn multi_fn = nullptr;  // GetOrCompileMulti kernels (fn is null for them)
  std::string name;
  std::string optimized_ir;
  double compile_seconds = 0;
};

// Counters of the process-wide kernel cache.
struct KernelCacheStats {
  int64_t hits = 0;
  int64_t misses = 0;            // = kernels compiled
  double compile_seconds = 0;    // total over the misses
  double HitRate() const { return hits + misses ? static_cast<double>(hits) / static_cast<double>(hits + misses) : 0; }
};

// The process-wide CPU JIT with its cache keyed by the expression's structural hash (DAG,
// iteration shape, reduction, input shapes; entries compare the full key so a hash
// collision cannot return the wrong kernel). Thread-safe; kernels live until exit.
class CpuKernelCache {
 public:
  static CpuKernelCache& Global();
  // The kernel for `expr`, compiling it on a miss. Errors: Internal with LLVM's message
  // when the JIT cannot be created or compilation fails (naming the expression).
  StatusOr<const CpuKernel*> GetOrCompile(const ir::fused::Expr& expr);
  // A multi-output elementwise kernel (the optimizer updates: weight', mom'; weight', mean',
  // var'): outs[j][i] = outputs[j](inputs at i) for i in [0, n), n given at run time. Every
  // expression has iter [1], no reduction, and the same inputs; input k is a scalar read
  // once (inputs[k][0]) when scalar[k], else read at i. All outputs of an element are
  // computed before any is stored and iterations are independent (the loop carries
  // llvm.loop.parallel_accesses), so outs[j] may be the same buffer as an input (in-place
  // updates) and the loop still vectorizes; partial overlaps are not allowed. Cached by the
  // expressions' text and `scalar` (shape-independent: one kernel per update formula).
  // Errors: InvalidArgument for expressions that break these rules; Internal for LLVM.
  StatusOr<const CpuKernel*> GetOrCompileMulti(const std::vector<ir::fused::Expr>& outputs,
                                               const std::vector<bool>& scalar);
  KernelCacheStats stats() const;
  void ResetStats();

 private:
  CpuKernelCache() = default;
  // Creates jit_ on first use (mu_ held).
  Status EnsureJit();
  // The cached kernel for `key`, or on a miss: builds a module named `name` whose function
  // `emit` writes, verifies, optimizes and JIT-compiles it, and stores the kernel with
  // its entry address in fn, or multi_fn when `multi` (mu_ held). Errors: Internal with
  // LLVM's message.
  StatusOr<CpuKernel*> Compile(const std::string& key, const std::string& name,
                               const std::function<llvm::Function*(llvm::Module&)>& emit, bool multi);
  mutable std::mutex mu_;
  std::unordered_map<std::string, std::unique_ptr<CpuKernel>> kernels_;
  KernelCacheStats stats_;
  struct Jit;
  std::unique_ptr<Jit> jit_;  // created on first use
  friend struct JitAccess;
};

// Emits `expr` as a PTX kernel named `name` for `sm` ("sm_90", "sm_75", ...; PTX ISA 7.8).
// Errors: InvalidArgument for an unknown architecture; Internal when the NVPTX backend fails.
StatusOr<std::string> EmitPtx(const ir::fused::Expr& expr, const std::string& name, const std::string& sm);

// The unoptimized LLVM IR text of the CPU kernel (for dumps and tests).
StatusOr<std::string> EmitCpuIrText(const ir::fused::Expr& expr, const std::string& name);

}  // namespace kiln::codegen::llvm_gen
