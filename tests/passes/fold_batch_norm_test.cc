// fold_batch_norm (passes/fold_batch_norm.h) and hoist_constants (codegen/hoist_constants.h):
// the IR before and after, the same results before and after (reference interpreter on
// both graphs in double, and the folded graph compiled with constant parameters in f32),
// what does not fold, and a session that re-runs the hoisted folding when a statistic
// changes.
#include <catch2/catch.hpp>

#include <cmath>

#include "backends/cpu/kernels_cpu.h"
#include "codegen/lower.h"
#include "ir/builder.h"
#include "ir/text.h"
#include "passes/fold_batch_norm.h"
#include "passes/pipeline.h"
#include "tests/passes/equivalence.h"

namespace kiln::passes {
namespace {

using testing::CountOp;
using testing::Named;

struct ConvBnOptions {
  int64_t groups = 1;
  bool bias = false;
  bool residual = false;   // y = relu(bn(conv(x)) + x)
  bool relu = true;
  bool second_reader = false;  // the convolution's output is also a graph output
};

// x [2,8,7,7] -> conv2d 3x3 (stride 1, pad 1, 8 filters, `groups`) -> batch_norm -> [+x] -> [relu].
ir::Graph ConvBn(const ConvBnOptions& o) {
  ir::Graph g("conv_bn");
  ir::Builder b(g);
  ir::ValueId x = g.AddInput("x", ir::TensorType{DType::kF32, {2, 8, 7, 7}, "NCHW"});
  ir::ValueId w = g.AddParameter("w", ir::TensorType{DType::kF32, {8, 8 / o.groups, 3, 3}, "OIHW"});
  std::vector<ir::ValueId> conv_in = {x, w};
  if (o.bias) conv_in.push_back(g.AddParameter("b", ir::TensorType{DType::kF32, {8}, "C"}));
  ir::Attrs conv_attrs{{"stride", std::vector<int64_t>{1, 1}},
                       {"padding_begin", std::vector<int64_t>{1, 1}},
                       {"padding_end", std::vector<int64_t>{1, 1}},
                       {"dilation", std::vector<int64_t>{1, 1}},
                       {"groups", int64_t{o.groups}}};
  ir::ValueId c = b.Emit1("conv2d", conv_in, conv_attrs, "conv").value();
  std::vector<ir::ValueId> bn_in = {c};
  for (const char* n : {"gamma", "beta", "running_mean", "running_var"}) {
    bn_in.push_back(g.AddParameter(n, ir::TensorType{DType::kF32, {8}, "C"}));
  }
  ir::ValueId y = b.Emit1("batch_norm", bn_in, ir::Attrs{{"epsilon", 1e-3}}, "bn").value();
  if (o.residual) y = b.Emit1("add", {y, x}, {}, "residual").value();
  if (o.relu) y = b.Emit1("relu", {y}, {}, "act").value();
  g.AddOutput("y", y);
  if (o.second_reader) g.AddOutput("pre_bn", c);
  return g;
}

// Random arguments with running_var in [0.05, 1.05] (a variance), the rest in [-1, 1].
Named Arguments(const ir::Graph& g, uint32_t seed) {
  std::mt19937 rng(seed);
  Named args = testing::RandomArguments(g, rng);
  ir::RefTensor& var = args.at("running_var");
  for (double& v : var.data) v = std::fabs(v) + 0.05;
  return args;
}

ir::Graph Optimized(const ir::Graph& before, bool fold) {
  ir::Graph after = before;
  PassManager pm;
  OptimizationOptions opt;
  opt.fold_batch_norm = fold;
  AddOptimizationPasses(pm, 2, opt);
  Status s = pm.Run(after);
  REQUIRE(s.ok());
  return after;
}

codegen::LowerOptions Frozen() {
  codegen::LowerOptions o{true, true};
  o.constant_params = true;
  return o;
}

// The reference on `before` vs the reference on `after` (1e-9) and `after` compiled with
// constant parameters, -O2 lowering (f32).
void CheckEquivalent(const ir::Graph& before, const ir::Graph& after, uint32_t seed) {
  Named args = Arguments(before, seed);
  auto want = testing::RunReferenceNamed(before, args);
  REQUIRE(want.ok());
  auto ref_after = testing::RunReferenceNamed(after, args);
  REQUIRE(ref_after.ok());
  testing::ExpectNamedClose(*ref_after, *want, 1e-9);
  for (const codegen::LowerOptions& lowering : {codegen::LowerOptions{false, false}, Frozen()}) {
    auto got = testing::RunCompiledNamed(after, args, lowering);
    REQUIRE(got.ok());
    testing::ExpectNamedClose(*got, *want, 2e-5);
  }
}

TEST_CASE("fold_batch_norm: conv + batch_norm + residual add + relu become one convolution", "[passes][fold_bn]") {
  ConvBnOptions o;
  o.residual = true;
  ir::Graph before = ConvBn(o);
  ir::Graph after = Optimized(before, /*fold=*/true);
  std::string text = ir::PrintGraph(after);
  INFO(text);
  CHECK(CountOp(after, "batch_norm") == 0);
  CHECK(CountOp(after, "conv2d") == 1);
  // The folded weight and bias feed the convolution, which carries the residual and relu.
  CHECK_THAT(text, Catch::Contains("= conv2d[conv](%x, %bn.fold.weight, %bn.fold.bias, %x) {activation=\"relu\""));
  CheckEquivalent(before, after, 1);
  // Without the option (training, non-constant parameters) nothing folds.
  CHECK(CountOp(Optimized(before, /*fold=*/false), "batch_norm") == 1);
}

TEST_CASE("fold_batch_norm: a biased depthwise convolution and a grouped one fold per output channel",
          "[passes][fold_bn]") {
  for (int64_t groups : {int64_t{8}, int64_t{2}}) {
    INFO("groups " << groups);
    ConvBnOptions o;
    o.groups = groups;
    o.bias = true;
    o.relu = groups == 2;
    ir::Graph before = ConvBn(o);
    ir::Graph after = Optimized(before, true);
    INFO(ir::PrintGraph(after));
    CHECK(CountOp(after, "batch_norm") == 0);
    CHECK(CountOp(after, "sub") == 1);  // b - mean
    CheckEquivalent(before, after, 2 + static_cast<uint32_t>(groups));
  }
}

TEST_CASE("fold_batch_norm: a batch norm whose fused relu is already set moves it onto the convolution",
          "[passes][fold_bn]") {
  ir::Graph before = ConvBn({});
  // fuse_activation first (as a caller running the passes in another order would).
  ir::Graph fused = before;
  PassManager pm;
  AddOptimizationPasses(pm, 2);
  REQUIRE(pm.Run(fused).ok());
  REQUIRE(CountOp(fused, "relu") == 0);
  auto changed = FoldBatchNorm().Run(fused);
  REQUIRE(changed.ok());
  CHECK(*changed);
  std::string text = ir::PrintGraph(fused);
  INFO(text);
  CHECK(CountOp(fused, "batch_norm") == 0);
  CHECK_THAT(text, Catch::Contains("{activation=\"relu\""));
  CheckEquivalent(before, fused, 5);
}

TEST_CASE("fold_batch_norm leaves a convolution whose output is read elsewhere, and non-constant statistics",
          "[passes][fold_bn]") {
  ConvBnOptions o;
  o.second_reader = true;
  ir::Graph shared = ConvBn(o);
  auto changed = FoldBatchNorm().Run(shared);
  REQUIRE(changed.ok());
  CHECK_FALSE(*changed);
  // Running variance updated by the graph (as a training step would): not constant.
  ir::Graph updated = ConvBn({});
  ir::ValueId var = *updated.FindValue("running_var");
  ir::Builder b(updated);
  ir::ValueId doubled = b.Emit1("add", {var, var}, {}, "twice").value();
  updated.AddUpdate(var, doubled);
  changed = FoldBatchNorm().Run(updated);
  REQUIRE(changed.ok());
  CHECK_FALSE(*changed);
}

TEST_CASE("hoist_constants: the folding runs in prepack steps, once per session, and again after a change",
          "[passes][fold_bn][layouts]") {
  ConvBnOptions o;
  o.residual = true;
  ir::Graph before = ConvBn(o);
  ir::Graph after = Optimized(before, true);
  auto exe = codegen::Lower(after, backends::cpu::CpuSteps(), nullptr, Frozen());
  REQUIRE(exe.ok());
  // The run is the convolution (and reorders of the activations); the folding arithmetic
  // and the folded weight's reorder are prepack steps.
  std::string run_kinds, prepack_kinds;
  for (const auto& s : (*exe)->steps()) run_kinds += s->desc().kind + " ";
  for (const auto& s : (*exe)->prepack_steps()) prepack_kinds += s->desc().kind + " ";
  INFO("run: " << run_kinds << "\nprepack: " << prepack_kinds);
  CHECK(CountOp(after, "mul") == 2);
  for (const char* kind : {"sqrt", "div", "mul", "neg"}) {
    CHECK_THAT(run_kinds, !Catch::Contains(kind));
    CHECK_THAT(prepack_kinds, Catch::Contains(kind));
  }
  CHECK_THAT(run_kinds, Catch::Contains("conv2d"));

  Named args = Arguments(before, 7);
  std::map<std::string, Tensor> store;
  auto session = testing::BindSession(*exe, args, &store);
  REQUIRE(session.ok());
  Tensor x = ir::FromRef(args.at("x"), DType::kF32), y;
  REQUIRE((*session)->Run({&x}, {&y}).ok());
  auto want = testing::RunReferenceNamed(before, args);
  REQUIRE(want.ok());
  testing::ExpectNamedClose(Named{{"out:y", ir::ToRef(y)}}, Named{{"out:y", want->at("out:y")}}, 2e-5);
  // New running statistics: after Repack the session folds them again.
  // (written in place: the session holds the bound buffers' addresses)
  for (double& v : args.at("running_var").data) v *= 4.0;
  Tensor& var = store.at("running_var");
  for (int64_t i = 0; i < var.num_elements(); ++i) var.f32()[i] = static_cast<float>(args.at("running_var").data[static_cast<size_t>(i)]);
  REQUIRE((*session)->Repack().ok());
  REQUIRE((*session)->Run({&x}, {&y}).ok());
  auto want2 = testing::RunReferenceNamed(before, args);
  REQUIRE(want2.ok());
  testing::ExpectNamedClose(Named{{"out:y", ir::ToRef(y)}}, Named{{"out:y", want2->at("out:y")}}, 2e-5);
}

}  // namespace
}  // namespace kiln::passes
