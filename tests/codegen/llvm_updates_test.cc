// Optimizer updates as LLVM multi-output kernels (codegen/llvm/llvm_steps.h): sgd_update and
// adam_update steps created by LlvmCpuSteps() against the IR reference kernels, in separate
// buffers and in place, at sizes that are not multiples of the vector width; the kernel is
// vectorized and shared by every parameter shape (one cache entry per formula).
#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "codegen/llvm/kernel_llvm.h"
#include "codegen/llvm/llvm_steps.h"
#include "tests/codegen/step_harness.h"

namespace kiln::codegen_test {
namespace {

void Fill(size_t i, std::vector<double>& v, std::mt19937& rng, size_t var_input, size_t lr_input) {
  std::uniform_real_distribution<float> uniform(-1.f, 1.f);
  for (double& x : v) x = uniform(rng);
  if (i == var_input) {
    for (double& x : v) x = std::abs(x);
  }
  if (i == lr_input) v[0] = 0.05f;
  if (i == lr_input + 1) v[0] = 0.5f;
}

TEST_CASE("LLVM sgd_update kernels match the reference", "[llvm][update][sgd]") {
  double momentum = GENERATE(0.0, 0.9);
  double clip = GENERATE(-1.0, 0.3);
  bool in_place = GENERATE(false, true);
  int64_t n = GENERATE(1, 37, 1003);
  INFO("momentum " << momentum << " clip " << clip << " in place " << in_place << " n " << n);
  std::vector<ir::TensorType> in{F32({n}), F32({n}), F32({}), F32({})};
  if (momentum > 0) in.push_back(F32({n}));
  Options o;
  o.factory = &codegen::llvm_gen::LlvmCpuSteps();
  o.fill = [](size_t i, std::vector<double>& v, std::mt19937& rng) { Fill(i, v, rng, 99, 2); };
  if (in_place) {
    o.placement = Placement::kInPlace;
    o.num_in_place = momentum > 0 ? 2 : 1;
  }
  CheckAgainstReference("sgd_update", ir::Attrs{{"wd", 1e-2}, {"momentum", momentum}, {"clip_gradient", clip}}, in, o);
}

TEST_CASE("LLVM adam_update kernels match the reference", "[llvm][update][adam]") {
  double clip = GENERATE(-1.0, 0.3);
  bool in_place = GENERATE(false, true);
  int64_t n = GENERATE(1, 37, 1003);
  INFO("clip " << clip << " in place " << in_place << " n " << n);
  std::vector<ir::TensorType> in{F32({n, 1}), F32({n, 1}), F32({n, 1}), F32({n, 1}), F32({}), F32({})};
  Options o;
  o.factory = &codegen::llvm_gen::LlvmCpuSteps();
  o.fill = [](size_t i, std::vector<double>& v, std::mt19937& rng) { Fill(i, v, rng, 3, 4); };
  if (in_place) {
    o.placement = Placement::kInPlace;
    o.num_in_place = 3;
  }
  ir::Attrs a{{"beta1", 0.9}, {"beta2", 0.999}, {"epsilon", 1e-8}, {"wd", 1e-2}, {"clip_gradient", clip}};
  CheckAgainstReference("adam_update", a, in, o);
}

StepDesc AdamDesc(Shape shape, double beta1) {
  StepDesc d;
  d.kind = "adam_update";
  d.node_name = "w_adam";
  auto ref = [](Shape s) {
    TensorRef r;
    r.dtype = DType::kF32;
    r.dims = std::move(s);
    return r;
  };
  for (int i = 0; i < 4; ++i) d.inputs.push_back(ref(shape));
  d.inputs.push_back(ref({}));
  d.inputs.push_back(ref({}));
  for (int i = 0; i < 3; ++i) d.outputs.push_back(ref(shape));
  d.floats = {{"beta1", beta1}, {"beta2", 0.999}, {"epsilon", 1e-8}, {"wd", 0.0}, {"clip_gradient", -1.0}};
  return d;
}

TEST_CASE("the Adam kernel is vectorized and shared across parameter shapes", "[llvm][update]") {
  auto& cache = codegen::llvm_gen::CpuKernelCache::Global();
  auto k1 = codegen::llvm_gen::UpdateKernel(AdamDesc({6, 1, 5, 5}, 0.85));
  REQUIRE(k1.ok());
  auto before = cache.stats();
  auto k2 = codegen::llvm_gen::UpdateKernel(AdamDesc({120, 400}, 0.85));
  REQUIRE(k2.ok());
  CHECK(*k1 == *k2);
  CHECK(cache.stats().hits == before.hits + 1);
  CHECK(cache.stats().misses == before.misses);
  // Other hyper-parameters are another kernel (they are compile-time constants).
  auto k3 = codegen::llvm_gen::UpdateKernel(AdamDesc({120, 400}, 0.8));
  REQUIRE(k3.ok());
  CHECK(*k3 != *k1);
  const std::string& ir = (*k1)->optimized_ir;
  INFO(ir);
  CHECK(ir.find("x float>") != std::string::npos);
  CHECK(ir.find("@llvm.sqrt.v") != std::string::npos);  // the vector sqrt of the update
  // No runtime alias checks: in-place updates still take the vector loop.
  CHECK(ir.find("vector.memcheck") == std::string::npos);
  // Bad operands are rejected with the node named.
  StepDesc bad = AdamDesc({3}, 0.9);
  bad.inputs[3].dims = {4};
  auto e = codegen::llvm_gen::UpdateKernel(bad);
  REQUIRE_FALSE(e.ok());
  CHECK_THAT(e.status().message(), Catch::Contains("w_adam"));
}

}  // namespace
}  // namespace kiln::codegen_test
