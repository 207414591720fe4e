// Every optimization pass: the IR before and after, and the same results before and after
// (reference interpreter on both graphs, and the compiled graph at -O0 and -O2 lowering).
#include <catch2/catch.hpp>

#include "backends/cpu/kernels_cpu.h"
#include "codegen/dot.h"
#include "codegen/lower.h"
#include "examples/lenet_model.h"
#include "graph/trainer.h"
#include "ir/text.h"
#include "ir/verifier.h"
#include "passes/autodiff.h"
#include "passes/batch_separable.h"
#include "passes/fusion.h"
#include "passes/pipeline.h"
#include "passes/schedule.h"
#include "passes/simplify.h"
#include "tests/passes/equivalence.h"

namespace kiln::passes {
namespace {

using testing::CountOp;
using testing::Named;
using testing::TraceLeNet;

ir::Graph Parse(const std::string& text) { return testing::ParseOrFail(text); }

// Reference(before) == reference(after) (double, tight), and the compiled "after" graph,
// naive and with -O2 lowering, == reference(before) (f32 tolerance).
void CheckEquivalent(const ir::Graph& before, const ir::Graph& after, uint32_t seed) {
  codegen::LowerOptions grouped{true, true, false};
  grouped.group_updates = true;
  testing::ExpectEquivalent(before, after, seed,
                            {codegen::LowerOptions{false, false, false}, codegen::LowerOptions{true, true, false},
                             codegen::LowerOptions{true, true, true}, grouped},
                            2e-4);
}

TEST_CASE("fuse_activation folds relu into conv2d and dense (IR before and after)", "[passes][fusion]") {
  ir::Graph before = Parse(R"(graph g {
  input %x : f32[2,3,8,8]NCHW
  param %w : f32[4,3,3,3]OIHW
  param %b : f32[4]C
  param %w2 : f32[5,144]OI
  %c = conv2d[conv](%x, %w, %b) {dilation=[1,1], padding_begin=[0,0], padding_end=[0,0], stride=[1,1]} : f32[2,4,6,6]NCHW
  %r = relu[act](%c) : f32[2,4,6,6]NCHW
  %f = reshape[flat](%r) {shape=[2,144]} : f32[2,144]NC
  %d = dense[fc](%f, %w2) : f32[2,5]NC
  %t = tanh[act2](%d) : f32[2,5]NC
  output y = %t
}
)");
  ir::Graph after = before;
  auto changed = FuseActivation().Run(after);
  REQUIRE(changed.ok());
  CHECK(*changed);
  REQUIRE(ir::Verify(after).ok());
  std::string text = ir::PrintGraph(after);
  INFO(text);
  CHECK(CountOp(after, "relu") == 0);
  CHECK(CountOp(after, "tanh") == 0);
  CHECK_THAT(text, Catch::Contains("%c = conv2d[conv](%x, %w, %b) {activation=\"relu\"") &&
                       Catch::Contains("%f = reshape[flat](%c)") &&
                       Catch::Contains("%d = dense[fc](%f, %w2) {activation=\"tanh\"}") &&
                       Catch::Contains("output y = %d"));
  CheckEquivalent(before, after, 1);
}

TEST_CASE("fuse_activation folds relu6 (clip) into conv2d and dense with its bounds", "[passes][fusion]") {
  ir::Graph before = Parse(R"(graph g {
  input %x : f32[2,3,6,6]NCHW
  param %w : f32[4,3,3,3]OIHW
  param %b : f32[4]C
  param %dw : f32[5,64]OI
  %c = conv2d[conv](%x, %w, %b) {dilation=[1,1], padding_begin=[0,0], padding_end=[0,0], stride=[1,1]} : f32[2,4,4,4]NCHW
  %r = clip[relu6](%c) {a_max=6, a_min=0} : f32[2,4,4,4]NCHW
  %f = reshape[flat](%r) {shape=[2,64]} : f32[2,64]NC
  %d = dense[fc](%f, %dw) : f32[2,5]NC
  %e = clip[bound](%d) {a_max=0.25, a_min=-0.5} : f32[2,5]NC
  output y = %e
}
)");
  ir::Graph after = before;
  auto changed = FuseActivation().Run(after);
  REQUIRE(changed.ok());
  CHECK(*changed);
  std::string text = ir::PrintGraph(after);
  INFO(text);
  CHECK(CountOp(after, "clip") == 0);
  CHECK_THAT(text, Catch::Contains("activation=\"clip\"") && Catch::Contains("activation_max=0.25") &&
                       Catch::Contains("activation_min=-0.5") && Catch::Contains("activation_max=6"));
  CheckEquivalent(before, after, 12);
}

TEST_CASE("fuse_activation leaves a pre-activation value that has other readers", "[passes][fusion]") {
  ir::Graph g = Parse(R"(graph g {
  input %x : f32[2,6]NC
  param %w : f32[3,6]OI
  %d = dense[fc](%x, %w) : f32[2,3]NC
  %r = relu[act](%d) : f32[2,3]NC
  %s = add[sum](%d, %r) : f32[2,3]NC
  output y = %s
}
)");
  auto changed = FuseActivation().Run(g);
  REQUIRE(changed.ok());
  CHECK_FALSE(*changed);
  CHECK(CountOp(g, "relu") == 1);
}

TEST_CASE("fusion in the LeNet training graph keeps what the backward pass needs", "[passes][fusion][training]") {
  ir::Graph before = TraceLeNet(3, /*training=*/true);
  ir::Graph after = before;
  PassManager pm;
  AddOptimizationPasses(pm, 2);
  REQUIRE(pm.Run(after).ok());
  INFO(ir::PrintGraph(after));
  CHECK(CountOp(before, "relu") == 4);
  CHECK(CountOp(after, "relu") == 0);
  // relu_backward now reads the fused nodes' outputs as its mask; below the two poolings
  // it is fused into the pooling backward, which reads the same output as its src.
  CHECK(CountOp(after, "relu_backward") == 2);
  int fused = 0, fused_pool_backward = 0;
  for (const ir::Node& n : after.nodes()) {
    fused += !n.attrs.GetString("activation", "").empty();
    fused_pool_backward += n.op == "pool2d_backward" && n.attrs.GetString("activation", "") == "relu";
  }
  CHECK(fused == 6);
  CHECK(fused_pool_backward == 2);
  // Same loss, outputs, updated parameters and momentum.
  CheckEquivalent(before, after, 2);
  // Grouped lowering: the 10 parameters' SGD updates are one step.
  codegen::LowerOptions grouped{true, true};
  grouped.group_updates = true;
  auto exe = codegen::Lower(after, backends::cpu::CpuSteps(), nullptr, grouped);
  REQUIRE(exe.ok());
  int groups = 0, singles = 0;
  for (const auto& step : (*exe)->steps()) {
    groups += step->desc().kind == "sgd_update_group";
    singles += step->desc().kind == "sgd_update";
    if (step->desc().kind == "sgd_update_group") CHECK(step->desc().ints.at("group_size") == std::vector<int64_t>{10});
  }
  CHECK(groups == 1);
  CHECK(singles == 0);
}

TEST_CASE("fuse_activation folds relu_backward into the pooling backward below it (IR before and after)",
          "[passes][fusion][training]") {
  ir::Graph before = Parse(R"(graph g {
  input %y : f32[2,4,6,6]NCHW
  input %dy : f32[2,4,3,3]NCHW
  input %z : f32[2,4,6,6]NCHW
  %d = pool2d_backward[pool_grad](%dy, %y) {kernel=[2,2], kind="max", padding_begin=[0,0], padding_end=[0,0], stride=[2,2]} : f32[2,4,6,6]NCHW
  %r = relu_backward[relu_grad](%d, %y) : f32[2,4,6,6]NCHW
  %e = pool2d_backward[pool_grad2](%dy, %y) {kernel=[2,2], kind="avg", padding_begin=[0,0], padding_end=[0,0], stride=[2,2]} : f32[2,4,6,6]NCHW
  %s = relu_backward[other_mask](%e, %z) : f32[2,4,6,6]NCHW
  output a = %r
  output b = %s
}
)");
  ir::Graph after = before;
  auto changed = FuseActivation().Run(after);
  REQUIRE(changed.ok());
  CHECK(*changed);
  REQUIRE(ir::Verify(after).ok());
  std::string text = ir::PrintGraph(after);
  INFO(text);
  // Fused where the ReLU's output is the pooling's src; left alone where the mask is another
  // tensor (%z).
  CHECK_THAT(text, Catch::Contains("%d = pool2d_backward[pool_grad](%dy, %y) {activation=\"relu\"") &&
                       Catch::Contains("output a = %d") && Catch::Contains("relu_backward[other_mask](%e, %z)"));
  CHECK(CountOp(after, "relu_backward") == 1);
  CheckEquivalent(before, after, 4);
}

TEST_CASE("fuse_sum folds a residual add into the convolution before its relu (IR before and after)",
          "[passes][fusion]") {
  ir::Graph before = Parse(R"(graph g {
  input %x : f32[2,8,6,6]NCHW
  param %w : f32[8,8,3,3]OIHW
  param %b : f32[8]C
  %c = conv2d[conv](%x, %w, %b) {dilation=[1,1], padding_begin=[1,1], padding_end=[1,1], stride=[1,1]} : f32[2,8,6,6]NCHW
  %s = add[residual](%x, %c) : f32[2,8,6,6]NCHW
  %r = relu[act](%s) : f32[2,8,6,6]NCHW
  output y = %r
}
)");
  ir::Graph after = before;
  PassManager pm;
  AddOptimizationPasses(pm, 2);
  REQUIRE(pm.Run(after).ok());
  std::string text = ir::PrintGraph(after);
  INFO(text);
  CHECK(after.nodes().size() == 1);
  CHECK_THAT(text, Catch::Contains("%c = conv2d[conv](%x, %w, %b, %x) {activation=\"relu\"") &&
                       Catch::Contains("output y = %c"));
  CheckEquivalent(before, after, 6);
}

TEST_CASE("fuse_sum leaves an add whose other operand is defined after the convolution", "[passes][fusion]") {
  ir::Graph g = Parse(R"(graph g {
  input %x : f32[2,8,6,6]NCHW
  param %w : f32[8,8,3,3]OIHW
  param %b : f32[8]C
  %c = conv2d[conv](%x, %w, %b) {dilation=[1,1], padding_begin=[1,1], padding_end=[1,1], stride=[1,1]} : f32[2,8,6,6]NCHW
  %t = tanh[later](%x) : f32[2,8,6,6]NCHW
  %s = add[residual](%c, %t) : f32[2,8,6,6]NCHW
  output y = %s
}
)");
  auto changed = FuseSum().Run(g);
  REQUIRE(changed.ok());
  CHECK_FALSE(*changed);
}

TEST_CASE("DOT export shows fused nodes, layouts and arena offsets", "[passes][dot]") {
  ir::Graph g = TraceLeNet(2, /*training=*/false);
  PassManager pm;
  AddOptimizationPasses(pm, 2);
  REQUIRE(pm.Run(g).ok());
  std::string dot = codegen::GraphToDot(g);
  CHECK_THAT(dot, Catch::StartsWith("digraph") && Catch::Contains("conv2d + relu") &&
                      Catch::Contains("f32[2,6,24,24]NCHW") && Catch::Contains("output output"));
  auto exe = codegen::Lower(g, backends::cpu::CpuSteps(), nullptr, codegen::LowerOptions{true, true});
  REQUIRE(exe.ok());
  std::string steps = codegen::ExecutableToDot(**exe);
  INFO(steps);
  CHECK_THAT(steps, Catch::Contains("reorder") && Catch::Contains("arena+") && Catch::Contains("conv2d + relu") &&
                        Catch::Contains("param 0.weight"));
}

TEST_CASE("cse merges identical nodes (IR before and after)", "[passes][cse]") {
  ir::Graph before = Parse(R"(graph g {
  input %x : f32[4,5]NC
  input %y : f32[4,5]NC
  %a = add[a](%x, %y) : f32[4,5]NC
  %b = add[b](%x, %y) : f32[4,5]NC
  %e = relu[e](%a) : f32[4,5]NC
  %f = relu[f](%b) : f32[4,5]NC
  %g = mul[g](%e, %f) : f32[4,5]NC
  %h = add[h](%y, %x) : f32[4,5]NC
  output out = %g
  output other = %h
}
)");
  ir::Graph after = before;
  auto changed = CommonSubexpressionElimination().Run(after);
  REQUIRE(changed.ok());
  CHECK(*changed);
  std::string text = ir::PrintGraph(after);
  INFO(text);
  // Both add(x, y) and, after that, both relu(a) merge; add(y, x) is a different node.
  CHECK(CountOp(after, "add") == 2);
  CHECK(CountOp(after, "relu") == 1);
  CHECK_THAT(text, Catch::Contains("%g = mul[g](%e, %e)") && Catch::Contains("%h = add[h](%y, %x)"));
  CheckEquivalent(before, after, 3);
}

TEST_CASE("cse keeps nodes whose attributes differ", "[passes][cse]") {
  ir::Graph g = Parse(R"(graph g {
  input %x : f32[4,5]NC
  %a = reduce_sum[a](%x) {axes=[0], keepdims=0} : f32[5]N
  %b = reduce_sum[b](%x) {axes=[1], keepdims=0} : f32[4]N
  output a = %a
  output b = %b
}
)");
  auto changed = CommonSubexpressionElimination().Run(g);
  REQUIRE(changed.ok());
  CHECK_FALSE(*changed);
}

TEST_CASE("constant_folding evaluates computations on constants at compile time", "[passes][constant_folding]") {
  ir::Graph before = Parse(R"(graph g {
  input %x : f32[2,3]NC
  const %c : f32[3]C = [1, 2, 3]
  const %d : f32[3]C = [0.5, -4, 2]
  %s = add[s](%c, %d) : f32[3]C
  %t = relu[t](%s) : f32[3]C
  %o = fill[ones]() {shape=[2,3], value=2} : f32[2,3]NC
  %m = mul[m](%x, %t) : f32[2,3]NC
  %n = mul[n](%m, %o) : f32[2,3]NC
  output y = %n
}
)");
  ir::Graph after = before;
  auto changed = ConstantFolding().Run(after);
  REQUIRE(changed.ok());
  CHECK(*changed);
  REQUIRE(ir::Verify(after).ok());
  std::string text = ir::PrintGraph(after);
  INFO(text);
  // add and relu on constants, and fill, all became constants: only the muls on %x remain.
  CHECK(after.nodes().size() == 2);
  CHECK_THAT(text, Catch::Contains("const %t.folded : f32[3]C = [1.5, 0, 5]") &&
                       Catch::Contains("%m = mul[m](%x, %t.folded)") && Catch::Contains("%o.folded"));
  CheckEquivalent(before, after, 4);
}

TEST_CASE("constant_folding leaves results above the size limit as nodes", "[passes][constant_folding]") {
  ir::Graph g = Parse(R"(graph g {
  input %x : f32[64,64]NC
  %o = fill[big]() {shape=[64,64], value=1} : f32[64,64]NC
  %m = mul[m](%x, %o) : f32[64,64]NC
  output y = %m
}
)");
  auto changed = ConstantFolding(/*max_bytes_per_constant=*/1024).Run(g);
  REQUIRE(changed.ok());
  CHECK_FALSE(*changed);
  CHECK(CountOp(g, "fill") == 1);
}

TEST_CASE("schedule_updates moves each update right after its gradient and the weight's last reader",
          "[passes][schedule][training]") {
  // Two dense layers; autodiff appends both updates after the whole backward pass.
  ir::Graph before = Parse(R"(graph g {
  input %x : f32[4,6]NC
  input %dy : f32[4,3]NC
  input %lr : f32[]
  input %rescale_grad : f32[]
  param %w1 : f32[5,6]OI
  param %w2 : f32[3,5]OI
  %h = dense[fc1](%x, %w1) : f32[4,5]NC
  %y = dense[fc2](%h, %w2) : f32[4,3]NC
  %dh = dense_backward_data[fc2_dx](%dy, %w2) : f32[4,5]NC
  %gw2 = dense_backward_weights[fc2_dw](%h, %dy) {with_bias=0} : f32[3,5]OI
  %gw1 = dense_backward_weights[fc1_dw](%x, %dh) {with_bias=0} : f32[5,6]OI
  %w1n = sgd_update[w1_sgd](%w1, %gw1, %lr, %rescale_grad) {clip_gradient=-1.0, momentum=0.0, wd=0.0} : f32[5,6]OI
  %w2n = sgd_update[w2_sgd](%w2, %gw2, %lr, %rescale_grad) {clip_gradient=-1.0, momentum=0.0, wd=0.0} : f32[3,5]OI
  output y = %y
  update %w1 <- %w1n
  update %w2 <- %w2n
}
)");
  ir::Graph after = before;
  auto changed = ScheduleUpdatesEarly().Run(after);
  REQUIRE(changed.ok());
  CHECK(*changed);
  REQUIRE(ir::Verify(after).ok());
  INFO(ir::PrintGraph(after));
  std::vector<std::string> order;
  for (const ir::Node& n : after.nodes()) order.push_back(n.name);
  // w2's update waits for fc2_dx (the last reader of w2) and fc2_dw (its gradient); w1's
  // follows its gradient. The other nodes keep their order.
  CHECK(order == std::vector<std::string>{"fc1", "fc2", "fc2_dx", "fc2_dw", "w2_sgd", "fc1_dw", "w1_sgd"});
  CheckEquivalent(before, after, 5);
  // Idempotent.
  auto again = ScheduleUpdatesEarly().Run(after);
  REQUIRE(again.ok());
  CHECK_FALSE(*again);
}

TEST_CASE("schedule_updates frees gradients early: VGG-style training peak memory drops", "[passes][schedule][memory]") {
  // LeNet's training graph at -O2 with and without the pass: same results, and the lower
  // bound of the planned arena (largest set of tensors live at once) does not grow; with
  // the big dense layers of LeNet it drops because the 120x400 gradient no longer waits for
  // the end of the step.
  ir::Graph base = TraceLeNet(16, /*training=*/true);
  ir::Graph without = base, with = base;
  PassManager pm_without, pm_with;
  pm_without.Add(std::make_unique<FuseActivation>());
  pm_without.Add(std::make_unique<DeadCodeElimination>());
  pm_with.Add(std::make_unique<FuseActivation>());
  pm_with.Add(std::make_unique<DeadCodeElimination>());
  pm_with.Add(std::make_unique<ScheduleUpdatesEarly>());
  REQUIRE(pm_without.Run(without).ok());
  REQUIRE(pm_with.Run(with).ok());
  codegen::LowerOptions o{true, true};
  codegen::LowerStats s_without, s_with;
  REQUIRE(codegen::Lower(without, backends::cpu::CpuSteps(), &s_without, o).ok());
  REQUIRE(codegen::Lower(with, backends::cpu::CpuSteps(), &s_with, o).ok());
  INFO("without: " << s_without.memory.ToString() << "\nwith: " << s_with.memory.ToString());
  CHECK(s_with.memory.lower_bound_bytes < s_without.memory.lower_bound_bytes);
  CHECK(s_with.memory.arena_bytes < s_without.memory.arena_bytes);
  CheckEquivalent(without, with, 6);
}

TEST_CASE("optimization levels are named pipelines", "[passes][pipeline]") {
  CHECK(OptimizationPassNames(0) == std::vector<std::string>{"dce"});
  CHECK(OptimizationPassNames(1) == std::vector<std::string>{"constant_folding", "cse", "dce"});
  CHECK(OptimizationPassNames(2) ==
        std::vector<std::string>{"constant_folding", "cse", "dce", "fuse_sum", "fuse_activation", "dce",
                                 "schedule_updates"});
}

TEST_CASE("the -O2 pipeline and lowering keep LeNet inference equal to -O0", "[passes][pipeline]") {
  ir::Graph before = TraceLeNet(4, /*training=*/false);
  ir::Graph after = before;
  PassManager pm;
  AddOptimizationPasses(pm, 2);
  REQUIRE(pm.Run(after).ok());
  CheckEquivalent(before, after, 5);
  // At -O2 the convolutions run in a blocked layout chosen by oneDNN, with reorders around.
  codegen::LowerStats stats;
  auto exe = codegen::Lower(after, backends::cpu::CpuSteps(), &stats, codegen::LowerOptions{true, true});
  REQUIRE(exe.ok());
  INFO((*exe)->DescribeSteps());
  CHECK(stats.memory.num_reorders >= 1);
  CHECK(stats.memory.arena_bytes <= stats.memory.naive_bytes);
  CHECK(stats.memory.arena_bytes >= stats.memory.lower_bound_bytes);
}

}  // namespace
}  // namespace kiln::passes

namespace kiln::passes {
namespace {

TEST_CASE("constant parameters: weight reorders run once per session and Repack picks up new weights",
          "[passes][layouts]") {
  ir::Graph g = TraceLeNet(2, /*training=*/false);
  PassManager pm;
  AddOptimizationPasses(pm, 2);
  REQUIRE(pm.Run(g).ok());
  std::mt19937 rng(9);
  testing::Named args = testing::RandomArguments(g, rng);
  auto plain = testing::RunCompiledNamed(g, args, codegen::LowerOptions{true, true});
  REQUIRE(plain.ok());
  codegen::LowerOptions frozen{true, true};
  frozen.constant_params = true;
  auto exe = codegen::Lower(g, backends::cpu::CpuSteps(), nullptr, frozen);
  REQUIRE(exe.ok());
  // LeNet's two convolution weights are reordered in prepack steps, not in the run.
  CHECK((*exe)->prepack_steps().size() == 2);
  for (const auto& step : (*exe)->steps()) {
    bool reorders_param = step->desc().kind == "reorder" && step->desc().inputs[0].kind == runtime::BufferKind::kParam;
    CHECK_FALSE(reorders_param);
  }
  std::map<std::string, Tensor> store;
  auto session = testing::BindSession(*exe, args, &store);
  REQUIRE(session.ok());
  Tensor data = ir::FromRef(args.at("data"), DType::kF32), label = ir::FromRef(args.at("label"), DType::kS32);
  std::vector<const Tensor*> inputs;
  for (const auto& spec : (*exe)->inputs()) inputs.push_back(spec.name == "data" ? &data : &label);
  Tensor loss, output;
  REQUIRE((*session)->Run(inputs, {&loss, &output}).ok());
  testing::Named got{{"out:output", ir::ToRef(output)}, {"out:loss", ir::ToRef(loss)}};
  testing::Named want{{"out:output", plain->at("out:output")}, {"out:loss", plain->at("out:loss")}};
  testing::ExpectNamedClose(got, want, 1e-6);
  // Changing a convolution weight is seen only after Repack.
  Tensor& w = store.at("0.weight");
  for (int64_t i = 0; i < w.num_elements(); ++i) w.f32()[i] *= -1.f;
  Tensor stale;
  REQUIRE((*session)->Run(inputs, {&loss, &stale}).ok());
  CHECK(std::equal(stale.f32(), stale.f32() + stale.num_elements(), output.f32()));
  REQUIRE((*session)->Repack().ok());
  Tensor fresh;
  REQUIRE((*session)->Run(inputs, {&loss, &fresh}).ok());
  CHECK_FALSE(std::equal(fresh.f32(), fresh.f32() + fresh.num_elements(), output.f32()));
}

}  // namespace
}  // namespace kiln::passes

namespace kiln::passes {
namespace {

TEST_CASE("batch separability: per-sample graphs pass, graphs that mix samples name the node", "[passes][streams]") {
  // LeNet inference at -O2 (fused conv+relu, flatten, dense) computes every sample alone.
  ir::Graph lenet = testing::TraceLeNet(8, /*training=*/false);
  PassManager pm;
  AddOptimizationPasses(pm, 2);
  REQUIRE(pm.Run(lenet).ok());
  CHECK(CheckBatchSeparable(lenet).ok());
  // The training graph sums gradients over the batch.
  ir::Graph training = testing::TraceLeNet(8, /*training=*/true);
  Status t = CheckBatchSeparable(training);
  CHECK(t.code() == StatusCode::kFailedPrecondition);
  CHECK_THAT(t.message(), Catch::Contains("not batch separable"));

  auto check = [](const std::string& body) { return CheckBatchSeparable(Parse("graph g {\n" + body + "}\n")); };
  const std::string head = "  input %x : f32[4,6]NC\n  param %w : f32[3,6]OI\n";
  // Per sample: dense, softmax over axis 1, sum over axis 1 with keepdims, add of a row bias.
  CHECK(check(head + R"(  param %b : f32[3]C
  %d = dense[fc](%x, %w) : f32[4,3]NC
  %s = softmax[sm](%d) {axis=1} : f32[4,3]NC
  %r = reduce_sum[rs](%s) {axes=[1], keepdims=1} : f32[4,1]NC
  %a = add[plus](%s, %r) : f32[4,3]NC
  output y = %a
)").ok());
  // Softmax over the batch axis.
  Status s0 = check(head + R"(  %d = dense[fc](%x, %w) : f32[4,3]NC
  %s = softmax[sm](%d) {axis=0} : f32[4,3]NC
  output y = %s
)");
  REQUIRE_FALSE(s0.ok());
  CHECK_THAT(s0.message(), Catch::Contains("softmax \"sm\"") && Catch::Contains("[4,3]"));
  // A mean over the batch subtracted from every sample.
  Status m = check(head + R"(  %d = dense[fc](%x, %w) : f32[4,3]NC
  %m = reduce_mean[batch_mean](%d) {axes=[0], keepdims=1} : f32[1,3]NC
  %c = add[center](%d, %m) : f32[4,3]NC
  output y = %c
)");
  REQUIRE_FALSE(m.ok());
  CHECK_THAT(m.message(), Catch::Contains("batch_mean"));
  // A reshape that moves samples across rows.
  Status r = check(head + R"(  %f = reshape[fold](%x) {shape=[2,12]} : f32[2,12]NC
  output y = %f
)");
  REQUIRE_FALSE(r.ok());
  CHECK_THAT(r.message(), Catch::Contains("reshape \"fold\""));
  // An output computed from parameters only.
  Status o = check(head + R"(  %t = tanh[t](%w) : f32[3,6]OI
  output y = %t
)");
  REQUIRE_FALSE(o.ok());
  CHECK_THAT(o.message(), Catch::Contains("output 'y'"));
}

}  // namespace
}  // namespace kiln::passes
