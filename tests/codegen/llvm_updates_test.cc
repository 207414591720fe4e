// Optimizer updates as LLVM multi-output kernels (codegen/llvm/llvm_steps.h): sgd_update and
// adam_update steps created by LlvmCpuSteps() against the IR reference kernels, in separate
// buffers and in place, at sizes that are not multiples of the vector width; the kernel is
// vectorized and shared by every parameter shape (one cache entry per formula).
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "backends/cpu/kernels_cpu.h"
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

// Resident training weights (codegen::LowerOptions::resident_params) are updated in the
// convolution's blocked layout: OIhw with O in blocks of 16 ("Acdb16a"), [6,1,5,5] padded to
// 16 output channels. Weight, grad and momentum are reordered into that layout, updated
// there by the native and the LLVM step, and reordered back: the result must equal the
// dense update, and the padding must stay zero.
TEST_CASE("sgd_update and adam_update run on blocked (resident) operands", "[llvm][update][layouts]") {
  const runtime::StepFactory* factory =
      GENERATE(&backends::cpu::CpuSteps(), &codegen::llvm_gen::LlvmCpuSteps());
  std::string kind = GENERATE(std::string("sgd_update"), std::string("adam_update"));
  INFO(kind << (factory == &backends::cpu::CpuSteps() ? " native" : " llvm"));
  const Shape dims{6, 1, 5, 5};
  const int64_t n = NumElements(dims), blocked_bytes = 16 * 25 * 4;
  size_t num_tensors = kind == "sgd_update" ? 3 : 4;  // weight, grad, mom | weight, grad, mean, var
  // Arena: dense tensors, blocked tensors, dense results of the blocked update, scalars.
  std::vector<float> arena(static_cast<size_t>((3 * num_tensors * blocked_bytes + 64) / 4), 0.f);
  auto ref = [&](int64_t offset, bool blocked) {
    TensorRef r;
    r.offset = offset;
    r.dims = dims;
    if (blocked) {
      r.layout = "Acdb16a";
      r.layout_bytes = blocked_bytes;
    }
    return r;
  };
  std::vector<TensorRef> dense, blocked, back;
  for (size_t i = 0; i < num_tensors; ++i) {
    dense.push_back(ref(static_cast<int64_t>(i) * blocked_bytes, false));
    blocked.push_back(ref(static_cast<int64_t>(num_tensors + i) * blocked_bytes, true));
    back.push_back(ref(static_cast<int64_t>(2 * num_tensors + i) * blocked_bytes, false));
  }
  TensorRef lr = ref(static_cast<int64_t>(3 * num_tensors) * blocked_bytes, false), rescale = lr;
  lr.dims = rescale.dims = {};
  rescale.offset += 4;
  std::mt19937 rng(3);
  std::uniform_real_distribution<float> uniform(-1.f, 1.f);
  for (size_t i = 0; i < num_tensors; ++i) {
    float* p = arena.data() + dense[i].offset / 4;
    for (int64_t k = 0; k < n; ++k) p[k] = i == 3 ? std::abs(uniform(rng)) : uniform(rng);
  }
  arena[static_cast<size_t>(lr.offset / 4)] = 0.05f;
  arena[static_cast<size_t>(rescale.offset / 4)] = 0.5f;
  // Blocked padding starts as garbage-free zeros only if the reorder writes it: poison first.
  for (size_t i = 0; i < num_tensors; ++i) {
    std::fill_n(arena.data() + blocked[i].offset / 4, blocked_bytes / 4, 7.f);
  }
  runtime::ExecContext ctx;
  ctx.arena = reinterpret_cast<uint8_t*>(arena.data());
  auto run = [&](const StepDesc& d, const runtime::StepFactory& f) {
    auto step = f.Create(d);
    REQUIRE(step.ok());
    REQUIRE((*step)->Run(ctx).ok());
  };
  auto update = [&](const std::vector<TensorRef>& t) {
    StepDesc d;
    d.kind = kind;
    d.node_name = "w_update";
    d.floats = {{"wd", 1e-2}, {"clip_gradient", -1.0}};
    if (kind == "sgd_update") {
      d.floats["momentum"] = 0.9;
      d.inputs = {t[0], t[1], lr, rescale, t[2]};
      d.outputs = {t[0], t[2]};
    } else {
      d.floats.insert({{"beta1", 0.9}, {"beta2", 0.999}, {"epsilon", 1e-8}});
      d.inputs = {t[0], t[1], t[2], t[3], lr, rescale};
      d.outputs = {t[0], t[2], t[3]};
    }
    return d;
  };
  auto reorder = [&](const TensorRef& from, const TensorRef& to) {
    StepDesc d;
    d.kind = "reorder";
    d.node_name = "r";
    d.inputs = {from};
    d.outputs = {to};
    run(d, backends::cpu::CpuSteps());
  };
  for (size_t i = 0; i < num_tensors; ++i) reorder(dense[i], blocked[i]);
  run(update(blocked), *factory);  // in place, blocked
  run(update(dense), *factory);    // in place, dense
  for (size_t i = 0; i < num_tensors; ++i) {
    if (i == 1) continue;  // grad is not written
    reorder(blocked[i], back[i]);
    const float* want = arena.data() + dense[i].offset / 4;
    const float* got = arena.data() + back[i].offset / 4;
    for (int64_t k = 0; k < n; ++k) {
      INFO("tensor " << i << " element " << k);
      REQUIRE(std::abs(got[k] - want[k]) <= 1e-6f * std::max(1.f, std::abs(want[k])));
    }
    // Output channels 6..15 are padding in every (i, kh, kw) row of 16: still zero.
    const float* b = arena.data() + blocked[i].offset / 4;
    for (int64_t k = 0; k < blocked_bytes / 4; ++k) {
      if (k % 16 >= 6) REQUIRE(b[k] == 0.f);
    }
  }
  // An operand in another layout than the weight's is refused, naming the step.
  std::vector<TensorRef> mixed = blocked;
  mixed[1] = dense[1];
  auto bad = factory->Create(update(mixed));
  REQUIRE_FALSE(bad.ok());
  CHECK_THAT(bad.status().message(), Catch::Contains("w_update") && Catch::Contains("layout"));
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
