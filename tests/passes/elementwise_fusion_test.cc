// The elementwise-fusion pass (passes/elementwise_fusion.h): the IR before and after, the
// text round trip of fused nodes, groups ended by outside readers, before/after equivalence
// on random graphs and on the LeNet training graph (reference interpreter, and compiled with
// the LLVM step factory), and gradients after fusion against central finite differences.
#include <catch2/catch.hpp>
#include <cmath>
#include <map>
#include <random>

#include "codegen/llvm/kernel_llvm.h"
#include "codegen/llvm/llvm_steps.h"
#include "codegen/lower.h"
#include "examples/lenet_model.h"
#include "graph/trainer.h"
#include "ir/builder.h"
#include "ir/text.h"
#include "ir/verifier.h"
#include "passes/autodiff.h"
#include "passes/elementwise_fusion.h"
#include "passes/pipeline.h"
#include "tests/passes/equivalence.h"

namespace kiln::passes {
namespace {

using testing::CountOp;
using testing::Named;
using testing::TraceLeNet;

ir::Graph Parse(const std::string& text) { return testing::ParseOrFail(text); }

bool Fuse(ir::Graph& g) {
  PassManager pm;
  pm.Add(std::make_unique<ElementwiseFusion>());
  pm.Add(std::make_unique<DeadCodeElimination>());
  Status s = pm.Run(g);
  INFO(s.ToString());
  REQUIRE(s.ok());
  return true;
}

// Reference(before) == reference(after) in double; compiled(after) with the LLVM factory
// (dense and -O2 lowering) == reference(before) in f32 tolerance.
void CheckEquivalent(const ir::Graph& before, const ir::Graph& after, uint32_t seed, double tol = 1e-4) {
  testing::ExpectEquivalent(before, after, seed,
                            {codegen::LowerOptions{false, false, false}, codegen::LowerOptions{true, true, false}}, tol,
                            &codegen::llvm_gen::LlvmCpuSteps());
}

TEST_CASE("fuse_elementwise: bias add, relu, scale and a reduction become one node (IR before and after)",
          "[passes][elementwise_fusion]") {
  ir::Graph g = Parse(R"(graph g {
  input %x : f32[5,7]NC
  input %b : f32[7]C
  %s = add[bias](%x, %b) : f32[5,7]NC
  %r = relu[act](%s) : f32[5,7]NC
  %h = fill[half]() {shape=[], value=0.5} : f32[]
  %m = mul[scale](%r, %h) : f32[5,7]NC
  %y = reduce_sum[sum](%m) {axes=[0], keepdims=0} : f32[7]N
  output y = %y
}
)");
  ir::Graph before = g;
  Fuse(g);
  std::string text = ir::PrintGraph(g);
  INFO(text);
  REQUIRE(g.nodes().size() == 1);
  const ir::Node& n = g.nodes()[0];
  CHECK(n.op == "fused_elementwise");
  CHECK(n.name == "sum");
  CHECK(n.attrs.GetString("expr") == "iter 5,7; in 0; in 1; add 0 1; relu 2; const 0.5; mul 3 4; reduce sum 0");
  CHECK(n.inputs == std::vector<ir::ValueId>{*g.FindValue("x"), *g.FindValue("b")});
  CHECK(ir::Verify(g).ok());
  // The fused node prints and parses back.
  ir::Graph round = Parse(text);
  CHECK(ir::PrintGraph(round) == text);
  CheckEquivalent(before, g, 1);
}

TEST_CASE("fuse_elementwise: an intermediate with an outside reader ends the group", "[passes][elementwise_fusion]") {
  ir::Graph g = Parse(R"(graph g {
  input %x : f32[4,9]NC
  input %w : f32[3,9]OI
  %a = add[a](%x, %x) : f32[4,9]NC
  %s = sigmoid[s](%a) : f32[4,9]NC
  %t = tanh[t](%s) : f32[4,9]NC
  %d = dense[fc](%s, %w) : f32[4,3]NC
  output y = %t
  output z = %d
}
)");
  ir::Graph before = g;
  Fuse(g);
  INFO(ir::PrintGraph(g));
  // add+sigmoid fuse (sigmoid's output is read by dense and tanh, so tanh cannot take it).
  CHECK(CountOp(g, "fused_elementwise") == 1);
  CHECK(CountOp(g, "tanh") == 1);
  CHECK(CountOp(g, "dense") == 1);
  CHECK(CountOp(g, "add") == 0);
  CheckEquivalent(before, g, 2);
}

TEST_CASE("fuse_elementwise: a broadcast operand's producer is not recomputed per element", "[passes][elementwise_fusion]") {
  ir::Graph g = Parse(R"(graph g {
  input %x : f32[8,6]NC
  input %b : f32[6]C
  %e = sigmoid[sb](%b) : f32[6]C
  %s = add[s](%x, %e) : f32[8,6]NC
  %r = relu[r](%s) : f32[8,6]NC
  output y = %r
}
)");
  Fuse(g);
  INFO(ir::PrintGraph(g));
  CHECK(CountOp(g, "sigmoid") == 1);  // stays: [6] would be evaluated 8 times inside the kernel
  CHECK(CountOp(g, "fused_elementwise") == 1);
}

// A random graph of elementwise ops with broadcasting, fills, reductions and extra outputs.
ir::Graph RandomGraph(std::mt19937& rng) {
  ir::Graph g("random");
  ir::Builder b(g);
  Shape full{3, 5, 7};
  std::vector<ir::ValueId> vals = {g.AddInput("x0", {DType::kF32, full, ""}), g.AddInput("x1", {DType::kF32, {5, 7}, ""}),
                                   g.AddInput("x2", {DType::kF32, {3, 1, 7}, ""}), g.AddInput("x3", {DType::kF32, full, ""})};
  auto pick = [&]() { return vals[std::uniform_int_distribution<size_t>(0, vals.size() - 1)(rng)]; };
  const char* unary[] = {"relu", "sigmoid", "tanh"};
  for (int i = 0; i < 10; ++i) {
    int kind = std::uniform_int_distribution<int>(0, 5)(rng);
    StatusOr<ir::ValueId> v = InvalidArgument("unset");
    if (kind <= 1) {
      v = b.Emit1(kind ? "add" : "mul", {pick(), pick()});
    } else if (kind == 2) {
      v = b.Emit1(unary[std::uniform_int_distribution<int>(0, 2)(rng)], {pick()});
    } else if (kind == 3) {
      ir::ValueId y = pick();
      std::string op = std::string(unary[std::uniform_int_distribution<int>(0, 2)(rng)]) + "_backward";
      ir::ValueId dy = pick();
      if (g.value(dy).type.shape != g.value(y).type.shape) dy = y;
      v = b.Emit1(op, {dy, y});
    } else if (kind == 4) {
      ir::ValueId f = b.Emit1("fill", {}, ir::Attrs{{"shape", Shape{}}, {"value", 0.25}}).value();
      v = b.Emit1("mul", {pick(), f});
    } else {
      v = b.Emit1("broadcast_to", {pick()}, ir::Attrs{{"shape", full}});
    }
    REQUIRE(v.ok());
    vals.push_back(*v);
    if (std::uniform_int_distribution<int>(0, 4)(rng) == 0) g.AddOutput("o" + std::to_string(i), *v);
  }
  ir::ValueId last = vals.back();
  int64_t rank = g.value(last).type.rank();
  std::vector<int64_t> axes = rank == 3 ? std::vector<int64_t>{0, 2} : std::vector<int64_t>{0};
  g.AddOutput("sum", b.Emit1("reduce_sum", {last}, ir::Attrs{{"axes", axes}, {"keepdims", int64_t{0}}}).value());
  g.AddOutput("mean", b.Emit1("reduce_mean", {vals[vals.size() - 2]}, ir::Attrs{{"axes", std::vector<int64_t>{rank - 1}},
                                                                               {"keepdims", int64_t{1}}})
                           .value());
  g.RemoveDeadNodes();
  return g;
}

TEST_CASE("fuse_elementwise keeps random graphs equivalent", "[passes][elementwise_fusion]") {
  std::mt19937 rng(7);
  int fused = 0;
  for (int trial = 0; trial < 20; ++trial) {
    ir::Graph before = RandomGraph(rng);
    ir::Graph after = before;
    Fuse(after);
    INFO("before:\n" << ir::PrintGraph(before) << "after:\n" << ir::PrintGraph(after));
    CHECK(after.nodes().size() <= before.nodes().size());
    fused += CountOp(after, "fused_elementwise");
    CheckEquivalent(before, after, static_cast<uint32_t>(trial));
  }
  CHECK(fused >= 20);
}

TEST_CASE("fuse_elementwise at -O2 keeps the LeNet training step equal", "[passes][elementwise_fusion][training]") {
  ir::Graph before = TraceLeNet(3, /*training=*/true);
  ir::Graph o2 = before;
  {
    PassManager pm;
    AddOptimizationPasses(pm, 2);
    REQUIRE(pm.Run(o2).ok());
  }
  ir::Graph after = before;
  PassManager pm;
  AddOptimizationPasses(pm, 2, OptimizationOptions{.fuse_elementwise = true});
  CHECK(pm.PassNames().back() == "dce");
  REQUIRE(pm.Run(after).ok());
  INFO(ir::PrintGraph(after));
  // LeNet's training graph at -O2 has no chain of two elementwise ops to fuse: every
  // relu_backward sits between oneDNN backward ops, bias gradients come from
  // conv2d/dense_backward_weights, and sgd_update (two outputs) is not fused yet.
  CHECK(CountOp(after, "fused_elementwise") == 0);
  CHECK(after.nodes().size() == o2.nodes().size());
  // Default options: the -O2 pipeline is unchanged.
  CHECK(OptimizationPassNames(2) == std::vector<std::string>{"constant_folding", "cse", "dce", "fuse_sum",
                                                             "fuse_activation", "dce", "schedule_updates"});
  CheckEquivalent(before, after, 3, 2e-3);
}

// Every op that defines its fused-kernel statements (ir::OpDef::elementwise), with default
// and with explicit attributes: `op(pre(x0)[, x1])` fuses into one node, which equals the
// op's double reference (and the whole graph's) in f32 tolerance through the LLVM kernel.
// pre(x) = 4x spans the kinks of hard_swish (+-3), clip and relu6 (0), hard_sigmoid with
// alpha 1/6 (+-3); log, sqrt, div's divisor and the backward ops' src take exp(x) > 0
// where they need it.
TEST_CASE("fuse_elementwise: every fusible op's statements equal its reference", "[passes][elementwise_fusion]") {
  const std::map<std::string, ir::Attrs> explicit_attrs = {
      {"elu", ir::Attrs{{"alpha", 0.7}}},          {"silu", ir::Attrs{{"beta", 1.5}}},
      {"leaky_relu", ir::Attrs{{"alpha", 0.1}}},   {"clip", ir::Attrs{{"a_min", -1.0}, {"a_max", 2.5}}},
      {"hard_sigmoid", ir::Attrs{{"alpha", 1.0 / 6}, {"beta", 0.5}}},
  };
  auto positive = [](const std::string& op) {
    return op == "log" || op == "sqrt" || op == "log_backward" || op == "sqrt_backward";
  };
  int ops = 0;
  for (const ir::OpDef* def : ir::AllOps()) {
    if (!def->elementwise || def->name == "fill" || def->name == "broadcast_to" || def->name == "reduce_sum" ||
        def->name == "reduce_mean" || def->name == "fused_elementwise") {
      continue;
    }
    std::string base = def->name.substr(0, def->name.find("_backward"));
    std::vector<ir::Attrs> variants = {ir::Attrs{}};
    if (explicit_attrs.count(base)) variants.push_back(explicit_attrs.at(base));
    for (const ir::Attrs& attrs : variants) {
      ir::Graph g("op");
      ir::Builder b(g);
      Shape shape{3, 5, 7};
      ir::ValueId x0 = g.AddInput("x0", {DType::kF32, shape, ""});
      ir::ValueId x1 = g.AddInput("x1", {DType::kF32, shape, ""});
      ir::ValueId four = b.Emit1("fill", {}, ir::Attrs{{"shape", Shape{}}, {"value", 4.0}}).value();
      ir::ValueId pre = positive(def->name) ? b.Emit1("exp", {x0}).value() : b.Emit1("mul", {x0, four}).value();
      std::vector<ir::ValueId> in = {pre};
      if (def->input_names.size() == 2) {
        bool backward = def->name.find("_backward") != std::string::npos;
        // Backward ops read (diff_dst, src or dst): x1 is diff_dst, pre the forward value.
        if (backward) in = {x1, pre};
        else in.push_back(def->name == "div" ? b.Emit1("exp", {x1}).value() : x1);
      }
      StatusOr<ir::ValueId> y = b.Emit1(def->name, in, attrs);
      INFO(def->name << ": " << y.status().ToString());
      REQUIRE(y.ok());
      g.AddOutput("y", *y);
      ir::Graph before = g;
      Fuse(g);
      INFO(ir::PrintGraph(g));
      CHECK(CountOp(g, "fused_elementwise") == 1);
      CHECK(CountOp(g, def->name) == 0);
      CheckEquivalent(before, g, 11);
    }
    ++ops;
  }
  // add sub mul div maximum minimum greater_equal, relu sigmoid tanh leaky_relu and their
  // backward ops, and 13 of the 14 src-reading activations (not gelu: the kernel IR has no
  // erf) with theirs.
  CHECK(ops == 7 + 8 + 26);
}

// y = tanh(x * w + b); loss = mean(relu(sigmoid(y) * x)): forward and backward both have
// elementwise chains with broadcasting and reductions.
ir::Graph SmallNet() {
  ir::Graph g("small");
  ir::Builder b(g);
  ir::ValueId x = g.AddInput("x", {DType::kF32, {4, 6}, "NC"});
  ir::ValueId w = g.AddParameter("w", {DType::kF32, {6}, "C"});
  ir::ValueId bias = g.AddParameter("b", {DType::kF32, {1, 6}, ""});
  ir::ValueId t = b.Emit1("tanh", {b.Emit1("add", {b.Emit1("mul", {x, w}).value(), bias}).value()}).value();
  ir::ValueId z = b.Emit1("mul", {b.Emit1("sigmoid", {t}).value(), x}).value();
  ir::ValueId loss = b.Emit1("reduce_mean", {b.Emit1("relu", {z}).value()},
                             ir::Attrs{{"axes", std::vector<int64_t>{0, 1}}, {"keepdims", int64_t{0}}})
                         .value();
  g.AddOutput("loss", loss);
  return g;
}

TEST_CASE("gradients after fusion match central finite differences", "[passes][elementwise_fusion][grad]") {
  ir::Graph g = SmallNet();
  ir::ValueId loss = *g.FindOutput("loss");
  std::vector<ir::ValueId> params = g.ValuesOfKind(ir::ValueKind::kParameter);
  auto grads = AppendBackward(g, loss, params);
  REQUIRE(grads.ok());
  for (ir::ValueId p : params) g.AddOutput("grad:" + g.value(p).name, grads->at(p));
  ir::Graph fused = g;
  Fuse(fused);
  INFO(ir::PrintGraph(fused));
  CHECK(CountOp(fused, "fused_elementwise") >= 3);
  CHECK(CountOp(fused, "tanh_backward") + CountOp(fused, "sigmoid_backward") + CountOp(fused, "relu_backward") == 0);
  CheckEquivalent(g, fused, 4);
  std::mt19937 rng(5);
  Named args = testing::RandomArguments(fused, rng);
  auto base = testing::RunReferenceNamed(fused, args);
  REQUIRE(base.ok());
  auto total_loss = [&](const Named& a) {
    auto r = testing::RunReferenceNamed(fused, a);
    REQUIRE(r.ok());
    return r->at("out:loss").data[0];
  };
  const double h = 1e-6;
  int checked = 0;
  for (ir::ValueId p : params) {
    const std::string& name = fused.value(p).name;
    const ir::RefTensor& analytic = base->at("out:grad:" + name);
    for (int64_t i = 0; i < analytic.size(); ++i) {
      Named plus = args, minus = args;
      plus[name][i] += h;
      minus[name][i] -= h;
      double fd = (total_loss(plus) - total_loss(minus)) / (2 * h);
      INFO(name << "[" << i << "]: analytic " << analytic[i] << " vs finite difference " << fd);
      CHECK(std::abs(fd - analytic[i]) / std::max(1.0, std::abs(fd)) < 1e-6);
      ++checked;
    }
  }
  CHECK(checked == 12);
  // Lowering again hits the kernel cache for every fused node (compiled by CheckEquivalent).
  auto& cache = codegen::llvm_gen::CpuKernelCache::Global();
  auto s0 = cache.stats();
  auto exe = codegen::Lower(fused, codegen::llvm_gen::LlvmCpuSteps(), nullptr, codegen::LowerOptions{});
  REQUIRE(exe.ok());
  auto s1 = cache.stats();
  CHECK(s1.hits - s0.hits == CountOp(fused, "fused_elementwise"));
  CHECK(s1.misses == s0.misses);
}

}  // namespace
}  // namespace kiln::passes
