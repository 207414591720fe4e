#include "codegen/llvm/llvm_steps.h"

#include <cstdio>

#include "backends/cpu/kernels_cpu.h"
#include "codegen/llvm/kernel_llvm.h"
#include "ir/fused_expr.h"
#include "runtime/step_kinds.h"

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

// Kernel-IR text under construction: statements and the index of the last value.
class ExprText {
 public:
  int In(int k) { return Add("in " + std::to_string(k)); }
  int Const(double x) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "const %.17g", x);
    return Add(buf);
  }
  int Op(const char* op, int a, int b) { return Add(std::string(op) + " " + std::to_string(a) + " " + std::to_string(b)); }
  int Sqrt(int a) { return Add("sqrt " + std::to_string(a)); }
  std::string text() const { return "iter 1" + body_; }

 private:
  int Add(const std::string& stmt) {
    body_ += "; " + stmt;
    return count_++;
  }
  std::string body_;
  int count_ = 0;
};

// The rescaled (and clipped, when clip >= 0) gradient g' = rescale*grad [+ wd*weight].
int Gradient(ExprText& t, int weight, double wd, double clip, bool wd_inside, int grad_in, int rescale_in) {
  int g = t.Op("mul", t.In(rescale_in), t.In(grad_in));
  if (wd_inside) g = t.Op("add", g, t.Op("mul", t.Const(wd), weight));
  if (clip >= 0) g = t.Op("max", t.Op("min", g, t.Const(clip)), t.Const(-clip));
  return g;
}

// The update formulas of sgd_update / adam_update (ir/ops/sgd_update.cc, adam_update.cc)
// as one kernel-IR expression per output, in the steps' operand order.
std::vector<std::string> UpdateExprs(const runtime::StepDesc& desc) {
  auto attr = [&](const char* k, double def) {
    auto it = desc.floats.find(k);
    return it == desc.floats.end() ? def : it->second;
  };
  double wd = attr("wd", 0.0), clip = attr("clip_gradient", -1.0);
  std::vector<std::string> out;
  if (desc.kind == "sgd_update") {
    // inputs: 0 weight, 1 grad, 2 lr, 3 rescale_grad[, 4 mom]; SGD clips only when clip > 0.
    bool mom = desc.inputs.size() == 5;
    double momentum = attr("momentum", 0.0);
    for (int j = 0; j < (mom ? 2 : 1); ++j) {
      ExprText t;
      int w = t.In(0);
      int g = Gradient(t, w, wd, clip > 0 ? clip : -1, false, 1, 3);
      int lr = t.In(2);
      int lrg = t.Op("mul", lr, g);
      if (mom) {
        // mom' = momentum*mom - lr*wd*w - lr*g';  weight' = weight + mom'
        int m = t.Op("sub", t.Op("sub", t.Op("mul", t.Const(momentum), t.In(4)), t.Op("mul", t.Op("mul", lr, t.Const(wd)), w)),
                     lrg);
        if (j == 0) t.Op("add", w, m);
      } else {
        // weight' = (1 - lr*wd) * weight - lr * g'
        t.Op("sub", t.Op("mul", t.Op("sub", t.Const(1.0), t.Op("mul", lr, t.Const(wd))), w), lrg);
      }
      out.push_back(t.text());
    }
    return out;
  }
  // adam_update inputs: 0 weight, 1 grad, 2 mean, 3 var, 4 lr, 5 rescale_grad.
  double b1 = attr("beta1", 0.9), b2 = attr("beta2", 0.999), eps = attr("epsilon", 1e-8);
  for (int j = 0; j < 3; ++j) {
    ExprText t;
    int w = t.In(0);
    int g = Gradient(t, w, wd, clip, true, 1, 5);
    // The root is the last statement: weight' (j 0), mean' (j 1) or var' (j 2).
    int m = j == 2 ? -1 : t.Op("add", t.Op("mul", t.Const(b1), t.In(2)), t.Op("mul", t.Const(1 - b1), g));
    int v = j == 1 ? -1 : t.Op("add", t.Op("mul", t.Const(b2), t.In(3)), t.Op("mul", t.Const(1 - b2), t.Op("mul", g, g)));
    if (j == 0) t.Op("sub", w, t.Op("div", t.Op("mul", t.In(4), m), t.Op("add", t.Sqrt(v), t.Const(eps))));
    out.push_back(t.text());
  }
  return out;
}

// The update kinds UpdateExprs has formulas for (a subset of the table's is_update kinds).
bool IsUpdate(const std::string& kind) { return kind == "sgd_update" || kind == "adam_update"; }

class UpdateStep final : public runtime::Step {
 public:
  UpdateStep(runtime::StepDesc desc, MultiKernelFn fn) : Step(std::move(desc)), fn_(fn) {}
  Status Run(const runtime::ExecContext& ctx) const override {
    const float* in[6];
    float* out[3];
    for (size_t i = 0; i < desc().inputs.size(); ++i) in[i] = static_cast<const float*>(ctx.Ptr(desc().inputs[i]));
    for (size_t j = 0; j < desc().outputs.size(); ++j) out[j] = static_cast<float*>(ctx.Ptr(desc().outputs[j]));
    // Blocked operands (resident weights) are walked over their padded bytes, zeros included.
    fn_(in, out, desc().inputs[0].size_bytes() / 4);
    return OkStatus();
  }

 private:
  MultiKernelFn fn_;
};

}  // namespace

StatusOr<const CpuKernel*> UpdateKernel(const runtime::StepDesc& desc) {
  if (!IsUpdate(desc.kind)) return Bad(desc, "not an optimizer update kind");
  // The operand checks are the native kind's (the native step is created and discarded).
  RETURN_IF_ERROR(backends::cpu::CpuSteps().Create(desc).status());
  // f32 operands; tensor operands may share one blocked layout (the native kind checked that).
  for (const auto* refs : {&desc.inputs, &desc.outputs}) {
    for (const auto& ref : *refs) {
      if (ref.dtype != DType::kF32) return Bad(desc, "operands must be f32: " + ref.ToString());
    }
  }
  std::vector<Shape> shapes(desc.inputs.size(), Shape{1});
  // lr and rescale_grad: the kind's scalar inputs (runtime/step_kinds.h).
  std::vector<bool> scalar(desc.inputs.size(), false);
  for (int i : runtime::FindStepKind(desc.kind)->scalar_inputs) scalar[static_cast<size_t>(i)] = true;
  std::vector<ir::fused::Expr> exprs;
  for (const std::string& text : UpdateExprs(desc)) {
    ASSIGN_OR_RETURN(auto e, ir::fused::ParseExpr(text, shapes));
    exprs.push_back(std::move(e));
  }
  auto kernel = CpuKernelCache::Global().GetOrCompileMulti(exprs, scalar);
  if (!kernel.ok()) return Internal(desc.Where() + ": " + kernel.status().message());
  return *kernel;
}

namespace {

StatusOr<std::unique_ptr<runtime::Step>> CreateUpdate(const runtime::StepDesc& desc) {
  ASSIGN_OR_RETURN(const CpuKernel* kernel, UpdateKernel(desc));
  return std::unique_ptr<runtime::Step>(new UpdateStep(desc, kernel->multi_fn));
}

}  // namespace

StatusOr<std::unique_ptr<runtime::Step>> LlvmCpuStepFactory::Create(const runtime::StepDesc& desc) const {
  // One step for the group; the members share one compiled kernel (same formula).
  if (runtime::IsGroupKind(desc.kind)) return runtime::CreateGroupStep(desc, *this);
  if (IsUpdate(desc.kind)) return CreateUpdate(desc);
  if (desc.kind != "fused_elementwise") return backends::cpu::CpuSteps().Create(desc);
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
  if (runtime::IsGroupKind(desc.kind)) return runtime::GroupScratchBytes(desc, *this);
  if (desc.kind != "fused_elementwise" && !IsUpdate(desc.kind)) return backends::cpu::CpuSteps().ScratchBytes(desc);
  return int64_t{0};
}

StatusOr<runtime::StepFactory::Layouts> LlvmCpuStepFactory::ChooseLayouts(const runtime::StepDesc& desc) const {
  if (desc.kind != "fused_elementwise") return backends::cpu::CpuSteps().ChooseLayouts(desc);
  return StepFactory::ChooseLayouts(desc);
}

const runtime::StepFactory& LlvmCpuSteps() {
  static const LlvmCpuStepFactory* f = new LlvmCpuStepFactory();
  return *f;
}

}  // namespace kiln::codegen::llvm_gen
