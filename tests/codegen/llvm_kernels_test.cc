// LLVM-generated fused kernels (codegen/llvm/kernel_llvm.h) against the kernel IR's
// double-precision reference (ir::fused::EvaluateExpr): fixed expressions at sizes that are
// not multiples of the vector width, broadcast shapes, reductions over leading, trailing and
// middle axes, empty reductions, random DAGs; the kernel cache; vector code in the optimized
// IR; and every PTX kernel assembled by ptxas for sm_90, sm_80 and sm_75.
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "codegen/llvm/kernel_llvm.h"
#include "ir/fused_expr.h"

namespace kiln {
namespace {

using codegen::llvm_gen::CpuKernelCache;
using ir::fused::Expr;

Expr Parse(const std::string& text, std::vector<Shape> shapes) {
  auto e = ir::fused::ParseExpr(text, std::move(shapes));
  INFO(text);
  REQUIRE(e.ok());
  return *e;
}

// Compiles `e`, runs it on random inputs in [-2, 2] and compares with the reference.
void CheckKernel(const Expr& e, uint32_t seed = 1) {
  INFO("expr: " << ir::fused::PrintExpr(e));
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(-2, 2);
  std::vector<std::vector<float>> in_f(e.inputs.size());
  std::vector<std::vector<double>> in_d(e.inputs.size());
  std::vector<const float*> ptrs;
  std::vector<const std::vector<double>*> refs;
  for (size_t k = 0; k < e.inputs.size(); ++k) {
    int64_t n = NumElements(e.inputs[k]);
    for (int64_t i = 0; i < n; ++i) {
      float x = dist(rng);
      in_f[k].push_back(x);
      in_d[k].push_back(x);
    }
    ptrs.push_back(in_f[k].data());
    refs.push_back(&in_d[k]);
  }
  std::vector<double> want = ir::fused::EvaluateExpr(e, refs);
  auto kernel = CpuKernelCache::Global().GetOrCompile(e);
  REQUIRE(kernel.ok());
  // One guard element after the output must stay untouched (no overrun in the tail).
  std::vector<float> got(want.size() + 1, 12345.0f);
  (*kernel)->fn(ptrs.data(), got.data());
  CHECK(got.back() == 12345.0f);
  int64_t out_n = static_cast<int64_t>(want.size());
  double count = out_n ? static_cast<double>(NumElements(e.iter)) / static_cast<double>(out_n) : 0;
  int bad = 0;
  for (size_t i = 0; i < want.size(); ++i) {
    double w = want[i], g = got[i];
    bool ok = (std::isnan(w) && std::isnan(g)) || (std::isinf(w) && w == g) ||
              std::abs(g - w) <= 1e-4 * (1 + std::abs(w)) + 1e-6 * count;
    if (!ok && ++bad <= 5) FAIL_CHECK("element " << i << ": got " << g << ", want " << w);
  }
  CHECK(bad == 0);
}

TEST_CASE("fused expression text round trip and hash", "[llvm]") {
  std::string text = "iter 4,7; in 0; in 1; add 0 1; const 0.5; mul 2 3; select_gt 4 1 4 0; reduce mean 0 keepdims";
  Expr e = Parse(text, {{4, 7}, {7}});
  CHECK(ir::fused::PrintExpr(e) == text);
  CHECK(ir::fused::OpName(e.nodes[5].op, e.nodes[5].cmp) == "select_gt");
  CHECK(e.OutputShape() == Shape{1, 7});
  Expr again = Parse(ir::fused::PrintExpr(e), e.inputs);
  CHECK(ir::fused::HashExpr(again) == ir::fused::HashExpr(e));
  Expr other_shape = Parse(text, {{4, 7}, {1, 7}});
  CHECK(ir::fused::HashExpr(other_shape) != ir::fused::HashExpr(e));
  CHECK_FALSE(ir::fused::ParseExpr("iter 4; in 0; add 0 3", {{4}}).ok());
  CHECK_FALSE(ir::fused::ParseExpr("iter 4; in 0", {{5}}).ok());
  CHECK_FALSE(ir::fused::ParseExpr("iter 4,5; in 0; reduce sum 1,0", {{4, 5}}).ok());
  CHECK_FALSE(ir::fused::ParseExpr("in 0", {{4}}).ok());
}

TEST_CASE("elementwise kernels at odd sizes match the reference", "[llvm]") {
  const std::vector<std::string> bodies = {
      "in 0; in 1; add 0 1; relu 2",
      "in 0; in 1; sub 0 1; in 0; mul 2 3; neg 4",
      "in 0; exp 0; in 1; abs 2; const 1; add 3 4; log 5; add 1 6",
      "in 0; sigmoid 0; in 1; tanh 2; mul 1 3",
      "in 0; abs 0; sqrt 1; in 1; abs 3; const 1; add 4 5; div 2 6",
      "in 0; in 1; max 0 1; in 1; in 0; min 3 4; sub 2 5",
      "in 0; in 1; const 0; select_gt 1 2 0 2; select_le 0 1 3 1; select_eq 0 0 4 0; select_ne 0 1 5 1; "
      "select_lt 0 1 6 0; select_ge 0 1 7 1",
  };
  for (int64_t n : {1, 7, 17, 1003}) {
    for (const std::string& body : bodies) {
      CheckKernel(Parse("iter " + std::to_string(n) + "; " + body, {{n}, {n}}));
    }
  }
}

TEST_CASE("broadcast kernels match the reference", "[llvm]") {
  // bias add over NCHW, row/column broadcasts, scalar operands, a rank-0 iteration space.
  CheckKernel(Parse("iter 3,5,7,9; in 0; in 1; add 0 1; relu 2", {{3, 5, 7, 9}, {5, 1, 1}}));
  CheckKernel(Parse("iter 17,33; in 0; in 1; mul 0 1", {{17, 1}, {33}}));
  CheckKernel(Parse("iter 17,33; in 0; in 1; mul 0 1; in 2; add 2 3", {{1, 33}, {17, 1}, {}}));
  CheckKernel(Parse("iter 1003; in 0; in 1; sub 0 1; sigmoid 2", {{1003}, {1}}));
  CheckKernel(Parse("iter ; in 0; in 1; add 0 1", {{}, {}}));
  CheckKernel(Parse("iter 2,1,5; in 0; in 1; add 0 1", {{2, 1, 5}, {5}}));
}

TEST_CASE("reduction kernels match the reference", "[llvm]") {
  for (const char* red : {"sum", "mean", "max"}) {
    std::string r = red;
    CheckKernel(Parse("iter 64,10; in 0; in 1; const 0; select_gt 1 2 0 2; reduce " + r + " 0", {{64, 10}, {64, 10}}));
    CheckKernel(Parse("iter 7,1003; in 0; in 1; mul 0 1; reduce " + r + " 1", {{7, 1003}, {1003}}));
    CheckKernel(Parse("iter 3,17,5; in 0; exp 0; reduce " + r + " 1", {{3, 17, 5}}));
    CheckKernel(Parse("iter 3,17,5; in 0; relu 0; reduce " + r + " 0,2", {{3, 17, 5}}));
    CheckKernel(Parse("iter 4,6,7,7; in 0; in 1; mul 0 1; reduce " + r + " 0,2,3 keepdims", {{4, 6, 7, 7}, {4, 6, 7, 7}}));
    CheckKernel(Parse("iter 1003; in 0; abs 0; reduce " + r, {{1003}}));
    CheckKernel(Parse("iter 5,1; in 0; reduce " + r + " 0,1", {{5, 1}}));
  }
  // Empty reductions: sum 0, mean NaN, max -inf, for every output element; and an empty output.
  Expr e = Parse("iter 0,4; in 0; reduce mean 0", {{0, 4}});
  CheckKernel(e);
  CheckKernel(Parse("iter 0,4; in 0; reduce sum 0", {{0, 4}}));
  CheckKernel(Parse("iter 0,4; in 0; reduce max 0", {{0, 4}}));
  CheckKernel(Parse("iter 4,0; in 0; reduce sum 0", {{4, 0}}));
  CheckKernel(Parse("iter 0; in 0; exp 0", {{0}}));
  std::vector<double> none;
  CHECK(std::isnan(ir::fused::EvaluateExpr(e, {&none})[0]));
}

// A random DAG over `inputs` inputs with every op kind; log/sqrt/div get positive operands.
std::string RandomBody(std::mt19937& rng, int inputs, int ops) {
  std::vector<std::string> st;
  for (int k = 0; k < inputs; ++k) st.push_back("in " + std::to_string(k));
  auto pick = [&]() { return std::to_string(std::uniform_int_distribution<int>(0, static_cast<int>(st.size()) - 1)(rng)); };
  auto positive = [&]() {
    std::string a = pick();
    st.push_back("abs " + a);
    st.push_back("const 0.5");
    st.push_back("add " + std::to_string(st.size() - 2) + " " + std::to_string(st.size() - 1));
    return std::to_string(st.size() - 1);
  };
  const char* unary[] = {"neg", "exp", "relu", "sigmoid", "tanh", "abs"};
  const char* binary[] = {"add", "sub", "mul", "max", "min"};
  for (int i = 0; i < ops; ++i) {
    int kind = std::uniform_int_distribution<int>(0, 4)(rng);
    if (kind == 0) {
      std::string a = pick();
      // keep exp's argument bounded: exp(tanh(x))
      std::string op = unary[std::uniform_int_distribution<int>(0, 5)(rng)];
      if (op == "exp") {
        st.push_back("tanh " + a);
        a = std::to_string(st.size() - 1);
      }
      st.push_back(op + " " + a);
    } else if (kind == 1) {
      std::string a = pick(), b = pick();
      st.push_back(std::string(binary[std::uniform_int_distribution<int>(0, 4)(rng)]) + " " + a + " " + b);
    } else if (kind == 2) {
      std::string a = pick(), b = pick(), c = pick(), d = pick();
      st.push_back("select_gt " + a + " " + b + " " + c + " " + d);
    } else if (kind == 3) {
      std::string p = positive();
      st.push_back(std::string(std::uniform_int_distribution<int>(0, 1)(rng) ? "log " : "sqrt ") + p);
    } else {
      std::string a = pick();
      std::string p = positive();
      st.push_back("div " + a + " " + p);
    }
  }
  std::string body;
  for (size_t i = 0; i < st.size(); ++i) body += (i ? "; " : "") + st[i];
  return body;
}

TEST_CASE("random fused DAGs match the reference", "[llvm]") {
  std::mt19937 rng(42);
  const std::vector<std::pair<std::string, std::vector<Shape>>> spaces = {
      {"iter 17", {{17}, {1}, {17}}},
      {"iter 9,13", {{9, 13}, {13}, {9, 1}}},
      {"iter 2,3,5,7", {{2, 3, 5, 7}, {3, 1, 1}, {2, 3, 5, 7}}},
  };
  const std::vector<std::string> reductions = {"", "; reduce sum 0", "; reduce mean", "; reduce max 0"};
  for (int trial = 0; trial < 24; ++trial) {
    const auto& [iter, shapes] = spaces[static_cast<size_t>(trial) % spaces.size()];
    std::string text = iter + "; " + RandomBody(rng, 3, 8) + reductions[static_cast<size_t>(trial / 3) % reductions.size()];
    CheckKernel(Parse(text, shapes), static_cast<uint32_t>(trial));
  }
}

TEST_CASE("the kernel cache counts hits and misses", "[llvm]") {
  CpuKernelCache& cache = CpuKernelCache::Global();
  Expr e = Parse("iter 31; in 0; const 3; mul 0 1; relu 2", {{31}});
  auto before = cache.stats();
  auto k1 = cache.GetOrCompile(e);
  REQUIRE(k1.ok());
  auto k2 = cache.GetOrCompile(Parse(ir::fused::PrintExpr(e), {{31}}));
  REQUIRE(k2.ok());
  auto after = cache.stats();
  CHECK(*k1 == *k2);
  CHECK(after.misses == before.misses + 1);
  CHECK(after.hits == before.hits + 1);
  CHECK(after.compile_seconds > before.compile_seconds);
  CHECK((*k1)->compile_seconds > 0);
  // Another shape is another kernel.
  auto k3 = cache.GetOrCompile(Parse("iter 32; in 0; const 3; mul 0 1; relu 2", {{32}}));
  REQUIRE(k3.ok());
  CHECK(*k3 != *k1);
  CHECK(cache.stats().misses == before.misses + 2);
}

TEST_CASE("CPU kernels are vectorized for the host", "[llvm]") {
  Expr add_relu = Parse("iter 1003; in 0; in 1; add 0 1; relu 2", {{1003}, {1003}});
  auto k = CpuKernelCache::Global().GetOrCompile(add_relu);
  REQUIRE(k.ok());
  const std::string& ir = (*k)->optimized_ir;
  INFO(ir);
  bool vector = ir.find("<16 x float>") != std::string::npos || ir.find("<8 x float>") != std::string::npos ||
                ir.find("<4 x float>") != std::string::npos;
  CHECK(vector);
  // A sum over the innermost axis vectorizes too (reassociation allowed for the reduction).
  Expr row_sum = Parse("iter 8,1003; in 0; in 1; mul 0 1; reduce sum 1", {{8, 1003}, {1003}});
  auto k2 = CpuKernelCache::Global().GetOrCompile(row_sum);
  REQUIRE(k2.ok());
  INFO((*k2)->optimized_ir);
  CHECK(((*k2)->optimized_ir.find("x float>") != std::string::npos));
  // The unoptimized IR is plain scalar loops.
  auto raw = codegen::llvm_gen::EmitCpuIrText(add_relu, "raw");
  REQUIRE(raw.ok());
  CHECK(raw->find("x float>") == std::string::npos);
  CHECK(raw->find("define void @raw(ptr") != std::string::npos);
}

TEST_CASE("PTX kernels assemble with ptxas for sm_90, sm_80 and sm_75", "[llvm][ptx]") {
  const std::vector<std::pair<std::string, std::vector<Shape>>> kernels = {
      {"iter 1003; in 0; in 1; add 0 1; relu 2", {{1003}, {1003}}},
      {"iter 3,5,7,9; in 0; in 1; add 0 1; sigmoid 2; tanh 3; exp 4; abs 5; const 1; add 6 7; log 8; sqrt 9",
       {{3, 5, 7, 9}, {5, 1, 1}}},
      {"iter 64,10; in 0; in 1; const 0; select_gt 1 2 0 2; reduce sum 0", {{64, 10}, {64, 10}}},
      {"iter 7,1003; in 0; in 1; mul 0 1; div 2 1; max 3 0; min 4 1; neg 5; reduce mean 1", {{7, 1003}, {1003}}},
      {"iter 4,6,7,7; in 0; reduce max 0,2,3", {{4, 6, 7, 7}}},
      {"iter 0,4; in 0; reduce mean 0", {{0, 4}}},
  };
  const char* ptxas = "/usr/local/cuda/bin/ptxas";
  bool have_ptxas = access(ptxas, X_OK) == 0;
  if (!have_ptxas) WARN("SKIPPING ptxas assembly: " << ptxas << " not found (tools/test.sh machines have it)");
  const char* tmp = std::getenv("TEST_TMPDIR");
  std::string dir = tmp ? tmp : "/tmp";
  int i = 0;
  for (const auto& [text, shapes] : kernels) {
    Expr e = Parse(text, shapes);
    for (const char* sm : {"sm_90", "sm_80", "sm_75"}) {
      std::string name = "kiln_k" + std::to_string(i);
      auto ptx = codegen::llvm_gen::EmitPtx(e, name, sm);
      INFO(text << " for " << sm);
      REQUIRE(ptx.ok());
      CHECK(ptx->find(std::string(".target ") + sm) != std::string::npos);
      CHECK(ptx->find(".visible .entry " + name) != std::string::npos);
      CHECK(ptx->find("%ctaid.x") != std::string::npos);
      CHECK(ptx->find("%tid.x") != std::string::npos);
      CHECK(ptx->find("setp.") != std::string::npos);  // the bounds check
      if (!have_ptxas) continue;
      std::string path = dir + "/" + name + "_" + sm + ".ptx";
      std::ofstream(path) << *ptx;
      std::string cmd = std::string(ptxas) + " -arch=" + sm + " " + path + " -o " + path + ".cubin 2>&1";
      INFO(*ptx);
      CHECK(std::system(cmd.c_str()) == 0);
      std::ifstream cubin(path + ".cubin", std::ios::binary | std::ios::ate);
      CHECK(cubin.good());
      CHECK(cubin.tellg() > 0);
    }
    ++i;
  }
  CHECK_FALSE(codegen::llvm_gen::EmitPtx(Parse(kernels[0].first, kernels[0].second), "k", "sm_1000").ok());
}

}  // namespace
}  // namespace kiln
