#include "codegen/llvm/kernel_llvm.h"

#include <chrono>
#include <cstdio>
#include <functional>
#include <limits>

#include "llvm/ADT/SmallString.h"
#include "llvm/ADT/StringRef.h"
#include "llvm/ExecutionEngine/Orc/JITTargetMachineBuilder.h"
#include "llvm/ExecutionEngine/Orc/LLJIT.h"
#include "llvm/ExecutionEngine/Orc/ThreadSafeModule.h"
#include "llvm/IR/IRBuilder.h"
#include "llvm/IR/Intrinsics.h"
#include "llvm/IR/IntrinsicsNVPTX.h"
#include "llvm/IR/LLVMContext.h"
#include "llvm/IR/LegacyPassManager.h"
#include "llvm/IR/Module.h"
#include "llvm/IR/Verifier.h"
#include "llvm/MC/MCSubtargetInfo.h"
#include "llvm/MC/TargetRegistry.h"
#include "llvm/Passes/PassBuilder.h"
#include "llvm/Support/TargetSelect.h"
#include "llvm/Support/raw_ostream.h"
#include "llvm/Target/TargetMachine.h"
#include "llvm/Target/TargetOptions.h"

namespace kiln::codegen::llvm_gen {
namespace {

using ir::fused::Cmp;
using ir::fused::Expr;
using ir::fused::ExprNode;
using ir::fused::Op;
using ir::fused::Reduce;

std::string ToString(llvm::Error err) {
  std::string s;
  llvm::raw_string_ostream os(s);
  os << err;
  return os.str();
}

std::string ModuleText(const llvm::Module& m) {
  std::string s;
  llvm::raw_string_ostream os(s);
  m.print(os, nullptr);
  return os.str();
}

// The iteration space after dropping size-1 axes and merging adjacent axes: sizes, one
// stride vector per operand (inputs, then the output), and which axes are reduced.
struct LoopNest {
  std::vector<int64_t> sizes;
  std::vector<std::vector<int64_t>> strides;  // [operand][axis]
  std::vector<bool> reduced;
};

std::vector<int64_t> OutputStrides(const Expr& e) {
  std::vector<bool> red(e.iter.size(), false);
  if (e.reduce != Reduce::kNone) {
    for (int64_t a : e.axes) red[static_cast<size_t>(a)] = true;
  }
  std::vector<int64_t> s(e.iter.size(), 0);
  int64_t stride = 1;
  for (size_t d = e.iter.size(); d-- > 0;) {
    if (red[d]) continue;
    s[d] = stride;
    stride *= e.iter[d];
  }
  return s;
}

LoopNest MakeLoopNest(const Expr& e) {
  std::vector<std::vector<int64_t>> full;
  for (const Shape& s : e.inputs) full.push_back(ir::fused::BroadcastStrides(s, e.iter));
  full.push_back(OutputStrides(e));
  std::vector<bool> red(e.iter.size(), false);
  if (e.reduce != Reduce::kNone) {
    for (int64_t a : e.axes) red[static_cast<size_t>(a)] = true;
  }
  LoopNest n;
  n.strides.resize(full.size());
  for (size_t d = 0; d < e.iter.size(); ++d) {
    if (e.iter[d] == 1) continue;
    bool merge = !n.sizes.empty() && n.reduced.back() == red[d];
    for (size_t k = 0; merge && k < full.size(); ++k) merge = n.strides[k].back() == full[k][d] * e.iter[d];
    if (merge) {
      n.sizes.back() *= e.iter[d];
      for (size_t k = 0; k < full.size(); ++k) n.strides[k].back() = full[k][d];
    } else {
      n.sizes.push_back(e.iter[d]);
      n.reduced.push_back(red[d]);
      for (size_t k = 0; k < full.size(); ++k) n.strides[k].push_back(full[k][d]);
    }
  }
  if (n.sizes.empty()) {  // a scalar iteration space: one element
    n.sizes.push_back(1);
    n.reduced.push_back(false);
    for (auto& s : n.strides) s.push_back(0);
  }
  return n;
}

enum class Target { kCpu, kPtx };

// Emits the DAG's value for one element; `load(k)` gives input k's element.
llvm::Value* EmitDag(llvm::IRBuilder<>& b, llvm::Module& m, const Expr& e, Target target,
                     const std::function<llvm::Value*(int64_t)>& load) {
  llvm::Type* f32 = b.getFloatTy();
  auto exp = [&](llvm::Value* x) -> llvm::Value* {
    if (target == Target::kPtx) {
      llvm::Value* s = b.CreateFMul(x, llvm::ConstantFP::get(f32, 1.4426950408889634));
      return b.CreateIntrinsic(llvm::Intrinsic::nvvm_ex2_approx_f, {}, {s});
    }
    return b.CreateUnaryIntrinsic(llvm::Intrinsic::exp, x);
  };
  auto log = [&](llvm::Value* x) -> llvm::Value* {
    if (target == Target::kPtx) {
      llvm::Value* l2 = b.CreateIntrinsic(llvm::Intrinsic::nvvm_lg2_approx_f, {}, {x});
      return b.CreateFMul(l2, llvm::ConstantFP::get(f32, 0.6931471805599453));
    }
    return b.CreateUnaryIntrinsic(llvm::Intrinsic::log, x);
  };
  llvm::Value* one = llvm::ConstantFP::get(f32, 1.0);
  llvm::Value* zero = llvm::ConstantFP::get(f32, 0.0);
  std::vector<llvm::Value*> v(e.nodes.size());
  for (size_t i = 0; i < e.nodes.size(); ++i) {
    const ExprNode& n = e.nodes[i];
    auto a = [&](int j) { return v[static_cast<size_t>(n.args[static_cast<size_t>(j)])]; };
    switch (n.op) {
      case Op::kInput: v[i] = load(n.input); break;
      case Op::kConst: v[i] = llvm::ConstantFP::get(f32, n.value); break;
      case Op::kNeg: v[i] = b.CreateFNeg(a(0)); break;
      case Op::kExp: v[i] = exp(a(0)); break;
      case Op::kLog: v[i] = log(a(0)); break;
      case Op::kRelu: v[i] = b.CreateSelect(b.CreateFCmpOGT(a(0), zero), a(0), zero); break;
      case Op::kSigmoid: v[i] = b.CreateFDiv(one, b.CreateFAdd(one, exp(b.CreateFNeg(a(0))))); break;
      case Op::kTanh: {
        llvm::Value* e2 = exp(b.CreateFMul(a(0), llvm::ConstantFP::get(f32, 2.0)));
        v[i] = b.CreateFSub(one, b.CreateFDiv(llvm::ConstantFP::get(f32, 2.0), b.CreateFAdd(e2, one)));
        break;
      }
      case Op::kAbs: v[i] = b.CreateUnaryIntrinsic(llvm::Intrinsic::fabs, a(0)); break;
      case Op::kSqrt: v[i] = b.CreateUnaryIntrinsic(llvm::Intrinsic::sqrt, a(0)); break;
      case Op::kAdd: v[i] = b.CreateFAdd(a(0), a(1)); break;
      case Op::kSub: v[i] = b.CreateFSub(a(0), a(1)); break;
      case Op::kMul: v[i] = b.CreateFMul(a(0), a(1)); break;
      case Op::kDiv: v[i] = b.CreateFDiv(a(0), a(1)); break;
      case Op::kMax: v[i] = b.CreateBinaryIntrinsic(llvm::Intrinsic::maxnum, a(0), a(1)); break;
      case Op::kMin: v[i] = b.CreateBinaryIntrinsic(llvm::Intrinsic::minnum, a(0), a(1)); break;
      case Op::kSelect: {
        llvm::CmpInst::Predicate p = llvm::CmpInst::FCMP_OLT;
        switch (n.cmp) {
          case Cmp::kLt: p = llvm::CmpInst::FCMP_OLT; break;
          case Cmp::kLe: p = llvm::CmpInst::FCMP_OLE; break;
          case Cmp::kGt: p = llvm::CmpInst::FCMP_OGT; break;
          case Cmp::kGe: p = llvm::CmpInst::FCMP_OGE; break;
          case Cmp::kEq: p = llvm::CmpInst::FCMP_OEQ; break;
          case Cmp::kNe: p = llvm::CmpInst::FCMP_UNE; break;
        }
        v[i] = b.CreateSelect(b.CreateFCmp(p, a(0), a(1)), a(2), a(3));
        break;
      }
    }
  }
  (void)m;
  return v.back();
}

float ReduceInit(Reduce r) { return r == Reduce::kMax ? -std::numeric_limits<float>::infinity() : 0.0f; }

llvm::Value* Combine(llvm::IRBuilder<>& b, Reduce r, llvm::Value* acc, llvm::Value* x) {
  if (r == Reduce::kMax) return b.CreateBinaryIntrinsic(llvm::Intrinsic::maxnum, acc, x);
  llvm::FastMathFlags fmf;
  fmf.setAllowReassoc();
  llvm::Value* s = b.CreateFAdd(acc, x);
  if (auto* inst = llvm::dyn_cast<llvm::Instruction>(s)) inst->setFastMathFlags(fmf);
  return s;
}

// A counted loop i in [0, n) (n > 0): calls body(i) in the loop body block. Returns the
// exit block; the builder is left there.
struct Loop {
  llvm::PHINode* i;
  llvm::BasicBlock* header;
};
Loop BeginLoop(llvm::IRBuilder<>& b, llvm::Function* f, const char* name) {
  llvm::BasicBlock* pre = b.GetInsertBlock();
  llvm::BasicBlock* body = llvm::BasicBlock::Create(b.getContext(), name, f);
  b.CreateBr(body);
  b.SetInsertPoint(body);
  llvm::PHINode* i = b.CreatePHI(b.getInt64Ty(), 2, std::string(name) + ".i");
  i->addIncoming(b.getInt64(0), pre);
  return {i, body};
}
void EndLoop(llvm::IRBuilder<>& b, llvm::Function* f, Loop& l, int64_t n) {
  llvm::Value* next = b.CreateAdd(l.i, b.getInt64(1), "", /*HasNUW=*/true, /*HasNSW=*/true);
  llvm::BasicBlock* latch = b.GetInsertBlock();
  llvm::BasicBlock* exit = llvm::BasicBlock::Create(b.getContext(), l.header->getName() + ".exit", f);
  b.CreateCondBr(b.CreateICmpULT(next, b.getInt64(n)), l.header, exit);
  l.i->addIncoming(next, latch);
  b.SetInsertPoint(exit);
}

llvm::Value* Gep(llvm::IRBuilder<>& b, llvm::Value* base, llvm::Value* index) {
  return b.CreateInBoundsGEP(b.getFloatTy(), base, index);
}

// Fills out[0, n) with `value`.
void EmitFill(llvm::IRBuilder<>& b, llvm::Function* f, llvm::Value* out, int64_t n, float value) {
  if (n <= 0) return;
  Loop l = BeginLoop(b, f, "fill");
  b.CreateStore(llvm::ConstantFP::get(b.getFloatTy(), value), Gep(b, out, l.i));
  EndLoop(b, f, l, n);
}

// CPU kernel: void name(ptr inputs, ptr out).
llvm::Function* EmitCpuKernel(llvm::Module& m, const Expr& e, const std::string& name) {
  llvm::LLVMContext& ctx = m.getContext();
  llvm::IRBuilder<> b(ctx);
  llvm::Type* ptr = b.getPtrTy();
  auto* fty = llvm::FunctionType::get(b.getVoidTy(), {ptr, ptr}, false);
  llvm::Function* f = llvm::Function::Create(fty, llvm::Function::ExternalLinkage, name, m);
  f->addFnAttr(llvm::Attribute::NoUnwind);
  llvm::Value* in_arr = f->getArg(0);
  llvm::Value* out = f->getArg(1);
  b.SetInsertPoint(llvm::BasicBlock::Create(ctx, "entry", f));
  std::vector<llvm::Value*> in;
  for (size_t k = 0; k < e.inputs.size(); ++k) {
    in.push_back(b.CreateLoad(ptr, b.CreateConstInBoundsGEP1_64(ptr, in_arr, k), "in" + std::to_string(k)));
  }
  int64_t total = NumElements(e.iter);
  int64_t out_n = NumElements(e.OutputShape());
  bool reducing = e.reduce != Reduce::kNone;
  if (reducing) EmitFill(b, f, out, out_n, ReduceInit(e.reduce));
  if (total > 0) {
    LoopNest nest = MakeLoopNest(e);
    size_t rank = nest.sizes.size();
    size_t nops = nest.strides.size();  // inputs..., output
    // Offsets of every operand at the current loop level.
    std::vector<llvm::Value*> base(nops, b.getInt64(0));
    std::vector<Loop> loops;
    for (size_t d = 0; d + 1 < rank; ++d) {
      loops.push_back(BeginLoop(b, f, ("l" + std::to_string(d)).c_str()));
      for (size_t k = 0; k < nops; ++k) {
        if (nest.strides[k][d] != 0) base[k] = b.CreateAdd(base[k], b.CreateMul(loops.back().i, b.getInt64(nest.strides[k][d])));
      }
    }
    size_t d = rank - 1;
    int64_t len = nest.sizes[d];
    auto element = [&](llvm::Value* i) {
      return EmitDag(b, m, e, Target::kCpu, [&](int64_t k) -> llvm::Value* {
        int64_t s = nest.strides[static_cast<size_t>(k)][d];
        llvm::Value* idx = s == 0 ? base[static_cast<size_t>(k)] : b.CreateAdd(base[static_cast<size_t>(k)], s == 1 ? i : b.CreateMul(i, b.getInt64(s)));
        return b.CreateLoad(b.getFloatTy(), Gep(b, in[static_cast<size_t>(k)], idx));
      });
    };
    llvm::Value* obase = base[nops - 1];
    if (reducing && nest.reduced[d]) {
      // Innermost axis reduced: a scalar accumulator, then one read-modify-write.
      llvm::BasicBlock* pre = b.GetInsertBlock();
      Loop l = BeginLoop(b, f, "inner");
      llvm::PHINode* acc = b.CreatePHI(b.getFloatTy(), 2, "acc");
      acc->addIncoming(llvm::ConstantFP::get(b.getFloatTy(), ReduceInit(e.reduce)), pre);
      llvm::Value* next = Combine(b, e.reduce, acc, element(l.i));
      acc->addIncoming(next, b.GetInsertBlock());
      EndLoop(b, f, l, len);
      llvm::Value* p = Gep(b, out, obase);
      b.CreateStore(Combine(b, e.reduce, b.CreateLoad(b.getFloatTy(), p), next), p);
    } else {
      Loop l = BeginLoop(b, f, "inner");
      llvm::Value* x = element(l.i);
      llvm::Value* p = Gep(b, out, b.CreateAdd(obase, l.i));
      if (reducing) x = Combine(b, e.reduce, b.CreateLoad(b.getFloatTy(), p), x);
      b.CreateStore(x, p);
      EndLoop(b, f, l, len);
    }
    for (size_t j = loops.size(); j-- > 0;) EndLoop(b, f, loops[j], nest.sizes[j]);
  }
  if (e.reduce == Reduce::kMean && out_n > 0) {
    int64_t count = total / out_n;
    if (count == 0) {
      EmitFill(b, f, out, out_n, std::numeric_limits<float>::quiet_NaN());
    } else {
      Loop l = BeginLoop(b, f, "mean");
      llvm::Value* p = Gep(b, out, l.i);
      b.CreateStore(b.CreateFMul(b.CreateLoad(b.getFloatTy(), p),
                                 llvm::ConstantFP::get(b.getFloatTy(), 1.0 / static_cast<double>(count))),
                    p);
      EndLoop(b, f, l, out_n);
    }
  }
  b.CreateRetVoid();
  return f;
}

// Multi-output elementwise CPU kernel: void name(ptr inputs, ptr outs, i64 n). Scalar inputs
// are loaded once before the loop; every access in the loop is in one access group named by
// llvm.loop.parallel_accesses (no loop-carried dependences), so the vectorizer needs no
// runtime alias checks and in-place outputs (out j == input k, same index) stay correct.
llvm::Function* EmitCpuMultiKernel(llvm::Module& m, const std::vector<Expr>& outs, const std::vector<bool>& scalar,
                                   const std::string& name) {
  llvm::LLVMContext& ctx = m.getContext();
  llvm::IRBuilder<> b(ctx);
  llvm::Type* ptr = b.getPtrTy();
  llvm::Type* f32 = b.getFloatTy();
  auto* fty = llvm::FunctionType::get(b.getVoidTy(), {ptr, ptr, b.getInt64Ty()}, false);
  llvm::Function* f = llvm::Function::Create(fty, llvm::Function::ExternalLinkage, name, m);
  f->addFnAttr(llvm::Attribute::NoUnwind);
  llvm::Value* n = f->getArg(2);
  llvm::BasicBlock* entry = llvm::BasicBlock::Create(ctx, "entry", f);
  llvm::BasicBlock* body = llvm::BasicBlock::Create(ctx, "body", f);
  llvm::BasicBlock* exit = llvm::BasicBlock::Create(ctx, "exit", f);
  b.SetInsertPoint(entry);
  std::vector<llvm::Value*> in, scalar_value(scalar.size(), nullptr), out;
  for (size_t k = 0; k < scalar.size(); ++k) {
    in.push_back(b.CreateLoad(ptr, b.CreateConstInBoundsGEP1_64(ptr, f->getArg(0), k), "in" + std::to_string(k)));
    if (scalar[k]) scalar_value[k] = b.CreateLoad(f32, in.back(), "s" + std::to_string(k));
  }
  for (size_t j = 0; j < outs.size(); ++j) {
    out.push_back(b.CreateLoad(ptr, b.CreateConstInBoundsGEP1_64(ptr, f->getArg(1), j), "out" + std::to_string(j)));
  }
  b.CreateCondBr(b.CreateICmpSGT(n, b.getInt64(0)), body, exit);
  b.SetInsertPoint(body);
  llvm::PHINode* i = b.CreatePHI(b.getInt64Ty(), 2, "i");
  i->addIncoming(b.getInt64(0), entry);
  llvm::MDNode* group = llvm::MDNode::getDistinct(ctx, {});
  std::vector<llvm::Value*> loaded(scalar.size(), nullptr);
  auto load = [&](int64_t k) -> llvm::Value* {
    auto uk = static_cast<size_t>(k);
    if (scalar[uk]) return scalar_value[uk];
    if (!loaded[uk]) {
      auto* l = b.CreateLoad(f32, Gep(b, in[uk], i));
      l->setMetadata(llvm::LLVMContext::MD_access_group, group);
      loaded[uk] = l;
    }
    return loaded[uk];
  };
  std::vector<llvm::Value*> values;
  for (const Expr& e : outs) values.push_back(EmitDag(b, m, e, Target::kCpu, load));
  for (size_t j = 0; j < outs.size(); ++j) {
    auto* st = b.CreateStore(values[j], Gep(b, out[j], i));
    st->setMetadata(llvm::LLVMContext::MD_access_group, group);
  }
  llvm::Value* next = b.CreateAdd(i, b.getInt64(1), "", /*HasNUW=*/true, /*HasNSW=*/true);
  i->addIncoming(next, b.GetInsertBlock());
  auto* br = b.CreateCondBr(b.CreateICmpSLT(next, n), body, exit);
  llvm::MDNode* parallel =
      llvm::MDNode::get(ctx, {llvm::MDString::get(ctx, "llvm.loop.parallel_accesses"), group});
  llvm::MDNode* vectorize = llvm::MDNode::get(
      ctx, {llvm::MDString::get(ctx, "llvm.loop.vectorize.enable"), llvm::ConstantAsMetadata::get(b.getTrue())});
  llvm::MDNode* loop = llvm::MDNode::getDistinct(ctx, {nullptr, parallel, vectorize});
  loop->replaceOperandWith(0, loop);
  br->setMetadata(llvm::LLVMContext::MD_loop, loop);
  b.SetInsertPoint(exit);
  b.CreateRetVoid();
  return f;
}

// Runs the O3 pipeline for `tm` over `m`.
void Optimize(llvm::Module& m, llvm::TargetMachine* tm) {
  llvm::LoopAnalysisManager lam;
  llvm::FunctionAnalysisManager fam;
  llvm::CGSCCAnalysisManager cgam;
  llvm::ModuleAnalysisManager mam;
  llvm::PipelineTuningOptions pto;
  pto.LoopVectorization = true;
  pto.SLPVectorization = true;
  llvm::PassBuilder pb(tm, pto);
  pb.registerModuleAnalyses(mam);
  pb.registerCGSCCAnalyses(cgam);
  pb.registerFunctionAnalyses(fam);
  pb.registerLoopAnalyses(lam);
  pb.crossRegisterProxies(lam, fam, cgam, mam);
  llvm::ModulePassManager mpm = pb.buildPerModuleDefaultPipeline(llvm::OptimizationLevel::O3);
  mpm.run(m, mam);
}

std::string KeyOf(const Expr& e) {
  std::string k = ir::fused::PrintExpr(e);
  for (const Shape& s : e.inputs) k += "|" + ShapeToString(s);
  return k;
}

std::string HexName(const char* prefix, uint64_t h) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%s%016llx", prefix, static_cast<unsigned long long>(h));
  return buf;
}

}  // namespace

struct CpuKernelCache::Jit {
  std::unique_ptr<llvm::orc::LLJIT> jit;
  std::unique_ptr<llvm::TargetMachine> tm;
};

CpuKernelCache& CpuKernelCache::Global() {
  static CpuKernelCache* cache = new CpuKernelCache();
  return *cache;
}

Status CpuKernelCache::EnsureJit() {
  if (jit_) return OkStatus();
  llvm::InitializeNativeTarget();
  llvm::InitializeNativeTargetAsmPrinter();
  auto jtmb = llvm::orc::JITTargetMachineBuilder::detectHost();
  if (!jtmb) return Internal("LLVM: cannot detect the host target: " + ToString(jtmb.takeError()));
  jtmb->setCodeGenOptLevel(llvm::CodeGenOptLevel::Aggressive);
  auto tm = jtmb->createTargetMachine();
  if (!tm) return Internal("LLVM: cannot create the host TargetMachine: " + ToString(tm.takeError()));
  auto jit = llvm::orc::LLJITBuilder().setJITTargetMachineBuilder(std::move(*jtmb)).create();
  if (!jit) return Internal("LLVM: cannot create the ORC LLJIT: " + ToString(jit.takeError()));
  auto j = std::make_unique<Jit>();
  j->jit = std::move(*jit);
  j->tm = std::move(*tm);
  jit_ = std::move(j);
  return OkStatus();
}

StatusOr<CpuKernel*> CpuKernelCache::Compile(const std::string& key, const std::string& name,
                                              const std::function<llvm::Function*(llvm::Module&)>& emit, bool multi) {
  auto it = kernels_.find(key);
  if (it != kernels_.end()) {
    ++stats_.hits;
    return it->second.get();
  }
  auto t0 = std::chrono::steady_clock::now();
  RETURN_IF_ERROR(EnsureJit());
  auto kernel = std::make_unique<CpuKernel>();
  kernel->name = name;
  auto ctx = std::make_unique<llvm::LLVMContext>();
  auto m = std::make_unique<llvm::Module>(kernel->name, *ctx);
  m->setDataLayout(jit_->jit->getDataLayout());
  m->setTargetTriple(jit_->tm->getTargetTriple().str());
  llvm::Function* f = emit(*m);
  f->addFnAttr("target-cpu", jit_->tm->getTargetCPU());
  f->addFnAttr("target-features", jit_->tm->getTargetFeatureString());
  std::string verr;
  llvm::raw_string_ostream vos(verr);
  if (llvm::verifyModule(*m, &vos)) return Internal("LLVM: invalid kernel IR for \"" + key + "\": " + vos.str());
  Optimize(*m, jit_->tm.get());
  kernel->optimized_ir = ModuleText(*m);
  if (auto err = jit_->jit->addIRModule(llvm::orc::ThreadSafeModule(std::move(m), std::move(ctx)))) {
    return Internal("LLVM: cannot add kernel \"" + key + "\": " + ToString(std::move(err)));
  }
  auto sym = jit_->jit->lookup(kernel->name);
  if (!sym) return Internal("LLVM: cannot compile kernel \"" + key + "\": " + ToString(sym.takeError()));
  if (multi) {
    kernel->multi_fn = sym->toPtr<MultiKernelFn>();
  } else {
    kernel->fn = sym->toPtr<KernelFn>();
  }
  kernel->compile_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  ++stats_.misses;
  stats_.compile_seconds += kernel->compile_seconds;
  CpuKernel* out = kernel.get();
  kernels_[key] = std::move(kernel);
  return out;
}

StatusOr<const CpuKernel*> CpuKernelCache::GetOrCompile(const Expr& expr) {
  std::lock_guard<std::mutex> lock(mu_);
  std::string key = KeyOf(expr);
  std::string name = HexName("kiln_fused_", ir::fused::HashExpr(expr));
  ASSIGN_OR_RETURN(CpuKernel* kernel,
                   Compile(key, name, [&](llvm::Module& m) { return EmitCpuKernel(m, expr, name); }, false));
  return static_cast<const CpuKernel*>(kernel);
}

StatusOr<const CpuKernel*> CpuKernelCache::GetOrCompileMulti(const std::vector<Expr>& outputs,
                                                             const std::vector<bool>& scalar) {
  if (outputs.empty()) return InvalidArgument("multi-output kernel: no outputs");
  std::string key = "multi";
  for (size_t k = 0; k < scalar.size(); ++k) key += scalar[k] ? " s" : " v";
  for (const Expr& e : outputs) {
    if (e.iter != Shape{1} || e.reduce != Reduce::kNone || e.inputs.size() != scalar.size()) {
      return InvalidArgument("multi-output kernel: every expression needs iter [1], no reduction and " +
                             std::to_string(scalar.size()) + " inputs: \"" + ir::fused::PrintExpr(e) + "\"");
    }
    key += " | " + ir::fused::PrintExpr(e);
  }
  std::lock_guard<std::mutex> lock(mu_);
  uint64_t h = 1469598103934665603ull;  // FNV-1a of the key
  for (char c : key) h = (h ^ static_cast<unsigned char>(c)) * 1099511628211ull;
  std::string name = HexName("kiln_multi_", h);
  ASSIGN_OR_RETURN(
      CpuKernel* kernel,
      Compile(key, name, [&](llvm::Module& m) { return EmitCpuMultiKernel(m, outputs, scalar, name); }, true));
  return static_cast<const CpuKernel*>(kernel);
}

KernelCacheStats CpuKernelCache::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  return stats_;
}

void CpuKernelCache::ResetStats() {
  std::lock_guard<std::mutex> lock(mu_);
  stats_ = {};
}

StatusOr<std::string> EmitCpuIrText(const Expr& expr, const std::string& name) {
  llvm::LLVMContext ctx;
  llvm::Module m(name, ctx);
  EmitCpuKernel(m, expr, name);
  return ModuleText(m);
}

StatusOr<std::string> EmitPtx(const Expr& e, const std::string& name, const std::string& sm) {
  static std::once_flag once;
  std::call_once(once, [] {
    LLVMInitializeNVPTXTargetInfo();
    LLVMInitializeNVPTXTarget();
    LLVMInitializeNVPTXTargetMC();
    LLVMInitializeNVPTXAsmPrinter();
  });
  const std::string triple = "nvptx64-nvidia-cuda";
  std::string err;
  const llvm::Target* target = llvm::TargetRegistry::lookupTarget(triple, err);
  if (target == nullptr) return Internal("LLVM: no NVPTX target: " + err);
  if (sm.rfind("sm_", 0) != 0) return InvalidArgument("PTX architecture must be sm_XY, got \"" + sm + "\"");
  llvm::TargetOptions opts;
  std::unique_ptr<llvm::TargetMachine> tm(
      target->createTargetMachine(triple, sm, "+ptx78", opts, std::nullopt, std::nullopt, llvm::CodeGenOptLevel::Aggressive));
  if (!tm) return Internal("LLVM: cannot create an NVPTX TargetMachine for " + sm);
  if (!tm->getMCSubtargetInfo()->isCPUStringValid(sm)) return InvalidArgument("unknown NVPTX architecture " + sm);

  llvm::LLVMContext ctx;
  llvm::Module m(name, ctx);
  m.setDataLayout(tm->createDataLayout());
  m.setTargetTriple(triple);
  llvm::IRBuilder<> b(ctx);
  llvm::Type* gptr = b.getPtrTy(1);
  std::vector<llvm::Type*> params(e.inputs.size() + 1, gptr);
  auto* fty = llvm::FunctionType::get(b.getVoidTy(), params, false);
  llvm::Function* f = llvm::Function::Create(fty, llvm::Function::ExternalLinkage, name, m);
  b.SetInsertPoint(llvm::BasicBlock::Create(ctx, "entry", f));
  llvm::Value* out = f->getArg(static_cast<unsigned>(e.inputs.size()));
  auto sreg = [&](llvm::Intrinsic::ID id) { return b.CreateZExt(b.CreateIntrinsic(id, {}, {}), b.getInt64Ty()); };
  llvm::Value* gid = b.CreateAdd(b.CreateMul(sreg(llvm::Intrinsic::nvvm_read_ptx_sreg_ctaid_x),
                                             sreg(llvm::Intrinsic::nvvm_read_ptx_sreg_ntid_x)),
                                 sreg(llvm::Intrinsic::nvvm_read_ptx_sreg_tid_x), "gid");
  int64_t out_n = NumElements(e.OutputShape());
  int64_t total = NumElements(e.iter);
  llvm::BasicBlock* body = llvm::BasicBlock::Create(ctx, "body", f);
  llvm::BasicBlock* done = llvm::BasicBlock::Create(ctx, "done", f);
  b.CreateCondBr(b.CreateICmpULT(gid, b.getInt64(out_n)), body, done);
  b.SetInsertPoint(body);
  // Coordinates of the kept axes from gid, of the reduced axes from r.
  std::vector<bool> red(e.iter.size(), false);
  if (e.reduce != Reduce::kNone) {
    for (int64_t a : e.axes) red[static_cast<size_t>(a)] = true;
  }
  std::vector<std::vector<int64_t>> in_strides;
  for (const Shape& s : e.inputs) in_strides.push_back(ir::fused::BroadcastStrides(s, e.iter));
  auto element = [&](llvm::Value* r) {
    std::vector<llvm::Value*> coord(e.iter.size());
    llvm::Value* ko = gid;
    llvm::Value* kr = r;
    for (size_t d = e.iter.size(); d-- > 0;) {
      llvm::Value*& rem = red[d] ? kr : ko;
      llvm::Value* n = b.getInt64(e.iter[d]);
      coord[d] = b.CreateURem(rem, n);
      rem = b.CreateUDiv(rem, n);
    }
    return EmitDag(b, m, e, Target::kPtx, [&](int64_t k) -> llvm::Value* {
      llvm::Value* idx = b.getInt64(0);
      for (size_t d = 0; d < coord.size(); ++d) {
        int64_t s = in_strides[static_cast<size_t>(k)][d];
        if (s != 0) idx = b.CreateAdd(idx, b.CreateMul(coord[d], b.getInt64(s)));
      }
      llvm::Value* p = b.CreateInBoundsGEP(b.getFloatTy(), f->getArg(static_cast<unsigned>(k)), idx);
      return b.CreateLoad(b.getFloatTy(), p);
    });
  };
  llvm::Value* result;
  if (e.reduce == Reduce::kNone) {
    result = element(b.getInt64(0));
  } else {
    int64_t count = out_n ? total / out_n : 0;
    llvm::Value* init = llvm::ConstantFP::get(b.getFloatTy(), ReduceInit(e.reduce));
    if (count == 0) {
      result = e.reduce == Reduce::kMean ? llvm::ConstantFP::getNaN(b.getFloatTy()) : init;
    } else {
      llvm::BasicBlock* pre = b.GetInsertBlock();
      Loop l = BeginLoop(b, f, "red");
      llvm::PHINode* acc = b.CreatePHI(b.getFloatTy(), 2, "acc");
      acc->addIncoming(init, pre);
      llvm::Value* next = Combine(b, e.reduce, acc, element(l.i));
      acc->addIncoming(next, b.GetInsertBlock());
      EndLoop(b, f, l, count);
      result = next;
      if (e.reduce == Reduce::kMean) {
        result = b.CreateFMul(next, llvm::ConstantFP::get(b.getFloatTy(), 1.0 / static_cast<double>(count)));
      }
    }
  }
  b.CreateStore(result, b.CreateInBoundsGEP(b.getFloatTy(), out, gid));
  b.CreateBr(done);
  b.SetInsertPoint(done);
  b.CreateRetVoid();
  llvm::NamedMDNode* md = m.getOrInsertNamedMetadata("nvvm.annotations");
  md->addOperand(llvm::MDNode::get(ctx, {llvm::ValueAsMetadata::get(f), llvm::MDString::get(ctx, "kernel"),
                                         llvm::ConstantAsMetadata::get(b.getInt32(1))}));
  std::string verr;
  llvm::raw_string_ostream vos(verr);
  if (llvm::verifyModule(m, &vos)) return Internal("LLVM: invalid PTX kernel IR: " + vos.str());
  Optimize(m, tm.get());
  llvm::SmallString<0> buf;
  llvm::raw_svector_ostream os(buf);
  llvm::legacy::PassManager pm;
  if (tm->addPassesToEmitFile(pm, os, nullptr, llvm::CodeGenFileType::AssemblyFile)) {
    return Internal("LLVM: NVPTX cannot emit assembly");
  }
  pm.run(m);
  return std::string(buf.str());
}

}  // namespace kiln::codegen::llvm_gen
