// The lowering passes over the step program (codegen/select_steps.h, assign_layouts.h,
// group_updates.h, plan_buffers.h): for each, the program text before and after on small
// IR graphs (STYLE.md section 3: compare printed text), negative cases, and numerical
// equivalence of the instantiated result with the reference interpreter.
#include <catch2/catch.hpp>

#include <cstdlib>
#include <fstream>
#include <map>

#include "backends/cpu/kernels_cpu.h"
#include "codegen/assign_layouts.h"
#include "codegen/group_updates.h"
#include "codegen/lower.h"
#include "codegen/plan_buffers.h"
#include "codegen/select_steps.h"
#include "ir/text.h"
#include "runtime/step_kinds.h"
#include "runtime/step_program.h"
#include "tests/passes/equivalence.h"

namespace kiln::codegen {
namespace {

using runtime::PrintStepProgram;
using runtime::StepProgram;

ir::Graph Parse(const std::string& text) { return testing::ParseOrFail(text); }

// A target with fixed answers, so that the golden texts do not depend on the machine's ISA
// (oneDNN picks other blocked layouts and scratchpad sizes on other CPUs): convolutions
// want their weights in "Abcd4a" and write "aBcd4b" (both padded to 4 channels: the bytes
// of a dense tensor here) and need 256 bytes of scratch; activations and updates follow
// their data input as the CPU target's rules (runtime/step_kinds.h layout rules); every
// other kind is dense. It never creates steps.
class FixedTarget final : public runtime::StepFactory {
 public:
  StatusOr<std::unique_ptr<runtime::Step>> Create(const runtime::StepDesc& d) const override {
    return Unimplemented("FixedTarget creates no steps (" + d.kind + ")");
  }
  StatusOr<int64_t> ScratchBytes(const runtime::StepDesc& d) const override { return d.kind == "conv2d" ? 256 : 0; }
  StatusOr<Layouts> ChooseLayouts(const runtime::StepDesc& d) const override {
    Layouts l = DenseLayouts(d);
    const runtime::StepKindInfo* info = runtime::FindStepKind(d.kind);
    auto bytes = [](const runtime::TensorRef& r) { return NumElements(r.dims) * 4; };
    if (d.kind == "conv2d") {
      l.inputs[1] = "Abcd4a";
      l.input_bytes[1] = bytes(d.inputs[1]);
      l.outputs[0] = "aBcd4b";
      l.output_bytes[0] = bytes(d.outputs[0]);
    } else if (info && (info->layout == runtime::LayoutRule::kFollowSource ||
                        info->layout == runtime::LayoutRule::kFollowWeight)) {
      const runtime::TensorRef& data = info->layout == runtime::LayoutRule::kFollowWeight ? d.inputs[0] : d.inputs.back();
      for (size_t i = 0; i < l.inputs.size(); ++i) {
        bool scalar = false;
        for (int k : info->scalar_inputs) scalar |= static_cast<size_t>(k) == i;
        if (scalar) continue;
        l.inputs[i] = data.layout;
        l.input_bytes[i] = data.layout_bytes;
      }
      for (size_t k = 0; k < l.outputs.size(); ++k) {
        l.outputs[k] = data.layout;
        l.output_bytes[k] = data.layout_bytes;
      }
    }
    return l;
  }
};

// Compares a program text with its golden. With KILN_GOLDEN_DIR set, also writes the text to
// <dir>/<name>.txt (for reviewing a change of the expected text).
void CheckGolden(const std::string& name, const std::string& text, const std::string& golden) {
  if (const char* dir = std::getenv("KILN_GOLDEN_DIR")) {
    std::ofstream(std::string(dir) + "/" + name + ".txt") << text;
  }
  INFO(name << ":\n" << text);
  CHECK(text == golden);
}

const FixedTarget& Fixed() {
  static const FixedTarget target;
  return target;
}

// conv -> relu -> flatten (a free reshape) -> dense, and the flattened tensor as a second
// output (a copy, because a free reshape has no step of its own).
const char* kInference = R"(graph forward {
  input %x : f32[2,3,6,6]NCHW
  param %w : f32[16,3,3,3]OIHW
  param %b : f32[16]C
  param %w2 : f32[5,256]OI
  %c = conv2d[conv](%x, %w, %b) {dilation=[1,1], padding_begin=[0,0], padding_end=[0,0], stride=[1,1]} : f32[2,16,4,4]NCHW
  %r = relu[act](%c) : f32[2,16,4,4]NCHW
  %f = reshape[flat](%r) {shape=[2,256]} : f32[2,256]NC
  %d = dense[fc](%f, %w2) : f32[2,5]NC
  output y = %d
  output flat = %f
}
)";

StepProgram Select(const ir::Graph& g) {
  auto p = SelectSteps(g);
  REQUIRE(p.ok());
  return std::move(p).value();
}

TEST_CASE("select_steps: one dense step per node, views for free reshapes, copies for bound views",
          "[codegen][lowering]") {
  StepProgram p = Select(Parse(kInference));
  std::string text = PrintStepProgram(p);
  INFO(text);
  CheckGolden("golden_select", text, R"(program "forward" (unplanned)
input 0 x: f32[2,3,6,6]
output 0 y: f32[2,5]
output 1 flat: f32[2,256]
param 0 w: f32[16,3,3,3]
param 1 b: f32[16]
param 2 w2: f32[5,256]
buffer 0 "c" 2048 bytes
buffer 1 "r" 2048 bytes
step 0 conv2d "conv" {dilation=[1,1], padding_begin=[0,0], padding_end=[0,0], stride=[1,1]} (input0 f32[2,3,6,6], param0 f32[16,3,3,3], param1 f32[16]) -> (b0 f32[2,16,4,4])
step 1 relu "act" (b0 f32[2,16,4,4]) -> (b1 f32[2,16,4,4])
step 2 dense "fc" (b1 f32[2,256], param2 f32[5,256]) -> (output0 f32[2,5])
step 3 copy "copy_to_output_flat" (b1 f32[2,256]) -> (output1 f32[2,256])
)");
}

// pool_workspace pairs a max pool's forward and backward steps through oneDNN's workspace,
// only for pools with at least pool_workspace_min_channels channels (the CPU target: 64).
TEST_CASE("select_steps: max pooling workspaces for pools of enough channels", "[codegen][lowering]") {
  ir::Graph g = Parse(R"(graph train {
  input %a : f32[2,8,6,6]NCHW
  input %b : f32[2,64,6,6]NCHW
  input %da : f32[2,8,3,3]NCHW
  input %db : f32[2,64,3,3]NCHW
  %pa = pool2d[pool_small](%a) {kernel=[2,2], kind="max", padding_begin=[0,0], padding_end=[0,0], stride=[2,2]} : f32[2,8,3,3]NCHW
  %pb = pool2d[pool_wide](%b) {kernel=[2,2], kind="max", padding_begin=[0,0], padding_end=[0,0], stride=[2,2]} : f32[2,64,3,3]NCHW
  %ga = pool2d_backward[pool_small_grad](%da, %a) {kernel=[2,2], kind="max", padding_begin=[0,0], padding_end=[0,0], stride=[2,2]} : f32[2,8,6,6]NCHW
  %gb = pool2d_backward[pool_wide_grad](%db, %b) {kernel=[2,2], kind="max", padding_begin=[0,0], padding_end=[0,0], stride=[2,2]} : f32[2,64,6,6]NCHW
  output ya = %pa
  output yb = %pb
  output ga = %ga
  output gb = %gb
}
)");
  auto workspaces = [&](const SelectOptions& o) {
    auto p = SelectSteps(g, o);
    REQUIRE(p.ok());
    std::map<std::string, size_t> operands;  // step -> outputs (forward) or inputs (backward)
    for (const auto& d : p->steps) {
      if (d.kind == "pool2d") operands[d.node_name] = d.outputs.size();
      if (d.kind == "pool2d_backward") operands[d.node_name] = d.inputs.size();
    }
    return operands;
  };
  auto off = workspaces(SelectOptions{});
  CHECK(off == std::map<std::string, size_t>{{"pool_small", 1}, {"pool_wide", 1}, {"pool_small_grad", 2}, {"pool_wide_grad", 2}});
  auto all = workspaces(SelectOptions{.pool_workspace = true});
  CHECK(all == std::map<std::string, size_t>{{"pool_small", 2}, {"pool_wide", 2}, {"pool_small_grad", 3}, {"pool_wide_grad", 3}});
  auto wide = workspaces(SelectOptions{.pool_workspace = true, .pool_workspace_min_channels = 64});
  CHECK(wide == std::map<std::string, size_t>{{"pool_small", 1}, {"pool_wide", 2}, {"pool_small_grad", 2}, {"pool_wide_grad", 3}});
}

TEST_CASE("assign_layouts: the target's layouts, reorders at boundaries, prepacked constant weights",
          "[codegen][lowering]") {
  StepProgram p = Select(Parse(kInference));
  SECTION("dense (-O0): copies become plain copies, scratch is added, nothing is reordered") {
    REQUIRE(AssignLayouts(p, Fixed(), LayoutOptions{}).ok());
    std::string text = PrintStepProgram(p);
    INFO(text);
    CheckGolden("golden_dense", text, R"(program "forward" (unplanned)
input 0 x: f32[2,3,6,6]
output 0 y: f32[2,5]
output 1 flat: f32[2,256]
param 0 w: f32[16,3,3,3]
param 1 b: f32[16]
param 2 w2: f32[5,256]
buffer 0 "c" 2048 bytes
buffer 1 "conv.scratch" 256 bytes
buffer 2 "r" 2048 bytes
step 0 conv2d "conv" {dilation=[1,1], padding_begin=[0,0], padding_end=[0,0], stride=[1,1]} (input0 f32[2,3,6,6], param0 f32[16,3,3,3], param1 f32[16]) -> (b0 f32[2,16,4,4]) scratch (b1 f32[64])
step 1 relu "act" (b0 f32[2,16,4,4]) -> (b2 f32[2,16,4,4])
step 2 dense "fc" (b2 f32[2,256], param2 f32[5,256]) -> (output0 f32[2,5])
step 3 reshape "copy_to_output_flat" {shape=[2,256]} (b2 f32[2,256]) -> (output1 f32[2,256])
)");
  }
  SECTION("blocked layouts with constant parameters") {
    REQUIRE(AssignLayouts(p, Fixed(), LayoutOptions{true, true, false}).ok());
    std::string text = PrintStepProgram(p);
    INFO(text);
    // The convolution weight is reordered once per session (prepack, pinned buffer); the
    // relu follows the convolution's blocked layout; the flatten (a view) reads a dense
    // form, which the copy to the second output reuses.
    CheckGolden("golden_blocked", text, R"(program "forward" (unplanned)
input 0 x: f32[2,3,6,6]
output 0 y: f32[2,5]
output 1 flat: f32[2,256]
param 0 w: f32[16,3,3,3]
param 1 b: f32[16]
param 2 w2: f32[5,256]
buffer 0 "w.Abcd4a" 1728 bytes pinned
buffer 1 "c" 2048 bytes
buffer 2 "conv.scratch" 256 bytes
buffer 3 "r" 2048 bytes
buffer 4 "r.dense" 2048 bytes
prepack 0 reorder "w.Abcd4a" (param0 f32[16,3,3,3]) -> (b0 f32[16,3,3,3] Abcd4a (1728 bytes))
step 0 conv2d "conv" {dilation=[1,1], padding_begin=[0,0], padding_end=[0,0], stride=[1,1]} (input0 f32[2,3,6,6], b0 f32[16,3,3,3] Abcd4a (1728 bytes), param1 f32[16]) -> (b1 f32[2,16,4,4] aBcd4b (2048 bytes)) scratch (b2 f32[64])
step 1 relu "act" (b1 f32[2,16,4,4] aBcd4b (2048 bytes)) -> (b3 f32[2,16,4,4] aBcd4b (2048 bytes))
step 2 reorder "r.dense" (b3 f32[2,16,4,4] aBcd4b (2048 bytes)) -> (b4 f32[2,16,4,4])
step 3 dense "fc" (b4 f32[2,256], param2 f32[5,256]) -> (output0 f32[2,5])
step 4 reshape "copy_to_output_flat" {shape=[2,256]} (b4 f32[2,256]) -> (output1 f32[2,256])
)");
  }
  SECTION("the same with the CPU target: prepack, blocked relu, one dense reorder before the flatten") {
    REQUIRE(AssignLayouts(p, backends::cpu::CpuSteps(), LayoutOptions{true, true, false}).ok());
    INFO(PrintStepProgram(p));
    REQUIRE(p.prepack_steps.size() == 1);
    CHECK(p.prepack_steps[0].inputs[0].kind == runtime::BufferKind::kParam);
    CHECK(p.buffers[static_cast<size_t>(p.prepack_steps[0].outputs[0].index)].pinned);
    REQUIRE(p.steps.size() == 5);
    CHECK(p.steps[0].kind == "conv2d");
    CHECK(p.steps[0].inputs[1].index == p.prepack_steps[0].outputs[0].index);
    CHECK(p.steps[1].kind == "relu");
    CHECK(p.steps[1].inputs[0].layout == p.steps[0].outputs[0].layout);
    CHECK(p.steps[2].kind == "reorder");
    CHECK(p.steps[2].outputs[0].dense());
    CHECK(p.steps[3].kind == "dense");
    CHECK(p.steps[4].kind == "reshape");  // the copy to output 1: dense to dense
  }
  SECTION("constant parameters off: the weight reorder runs every time") {
    REQUIRE(AssignLayouts(p, Fixed(), LayoutOptions{true, false, false}).ok());
    CHECK(p.prepack_steps.empty());
    CHECK(p.steps[0].kind == "reorder");
  }
  SECTION("a program with layouts is refused a second time") {
    REQUIRE(AssignLayouts(p, Fixed(), LayoutOptions{}).ok());
    REQUIRE(PlanBuffers(p, PlanOptions{true}).ok());
    Status s = AssignLayouts(p, Fixed(), LayoutOptions{});
    CHECK(s.code() == StatusCode::kFailedPrecondition);
  }
}

// A convolution reading a weight that an SGD update writes: with resident parameters the
// weight lives in the convolution's layout between runs.
const char* kResident = R"(graph train {
  input %x : f32[2,3,6,6]NCHW
  input %gw : f32[16,3,3,3]OIHW
  input %lr : f32[]
  input %rescale_grad : f32[]
  param %w : f32[16,3,3,3]OIHW
  %c = conv2d[conv](%x, %w) {dilation=[1,1], padding_begin=[0,0], padding_end=[0,0], stride=[1,1]} : f32[2,16,4,4]NCHW
  %u = sgd_update[u](%w, %gw, %lr, %rescale_grad) {clip_gradient=-1, momentum=0, wd=0} : f32[16,3,3,3]OIHW
  output y = %c
  update %w <- %u
}
)";

TEST_CASE("assign_layouts: resident parameters are prepacked, updated in their layout, written back",
          "[codegen][lowering]") {
  StepProgram p = Select(Parse(kResident));
  SECTION("resident") {
    REQUIRE(AssignLayouts(p, Fixed(), LayoutOptions{true, false, true}).ok());
    std::string text = PrintStepProgram(p);
    INFO(text);
    REQUIRE(p.prepack_steps.size() == 1);
    REQUIRE(p.writeback_steps.size() == 1);
    // The update writes the resident copy, in its layout (no reorder back to the param).
    CHECK(p.steps.back().kind == "sgd_update");
    CHECK(p.steps.back().outputs[0].kind == runtime::BufferKind::kArena);
    CHECK(p.steps.back().outputs[0].layout == p.prepack_steps[0].outputs[0].layout);
    CheckGolden("golden_resident", text, R"(program "train" (unplanned)
input 0 x: f32[2,3,6,6]
input 1 gw: f32[16,3,3,3]
input 2 lr: f32[]
input 3 rescale_grad: f32[]
output 0 y: f32[2,16,4,4]
param 0 w: f32[16,3,3,3] updated
buffer 0 "w.Abcd4a" 1728 bytes pinned
buffer 1 "y.aBcd4b" 2048 bytes
buffer 2 "conv.scratch" 256 bytes
buffer 3 "gw.Abcd4a" 1728 bytes
prepack 0 reorder "w.Abcd4a" (param0 f32[16,3,3,3]) -> (b0 f32[16,3,3,3] Abcd4a (1728 bytes))
step 0 conv2d "conv" {dilation=[1,1], padding_begin=[0,0], padding_end=[0,0], stride=[1,1]} (input0 f32[2,3,6,6], b0 f32[16,3,3,3] Abcd4a (1728 bytes)) -> (b1 f32[2,16,4,4] aBcd4b (2048 bytes)) scratch (b2 f32[64])
step 1 reorder "conv.to_dense" (b1 f32[2,16,4,4] aBcd4b (2048 bytes)) -> (output0 f32[2,16,4,4])
step 2 reorder "gw.Abcd4a" (input1 f32[16,3,3,3]) -> (b3 f32[16,3,3,3] Abcd4a (1728 bytes))
step 3 sgd_update "u" {clip_gradient=[-1], momentum=[0], wd=[0]} (b0 f32[16,3,3,3] Abcd4a (1728 bytes), b3 f32[16,3,3,3] Abcd4a (1728 bytes), input2 f32[], input3 f32[]) -> (b0 f32[16,3,3,3] Abcd4a (1728 bytes))
writeback 0 reorder "w.writeback" (b0 f32[16,3,3,3] Abcd4a (1728 bytes)) -> (param0 f32[16,3,3,3])
)");
  }
  SECTION("not resident: the weight is reordered every run and updated dense") {
    REQUIRE(AssignLayouts(p, Fixed(), LayoutOptions{true, false, false}).ok());
    CHECK(p.prepack_steps.empty());
    CHECK(p.writeback_steps.empty());
    CHECK(p.steps.back().outputs[0].kind == runtime::BufferKind::kParam);
  }
}

// Two small SGD updates with momentum (groupable) and one of a 300 KiB weight (not).
const char* kUpdates = R"(graph update {
  input %g1 : f32[8]C
  input %g2 : f32[4,8]OI
  input %g3 : f32[256,300]OI
  input %lr : f32[]
  input %rescale_grad : f32[]
  param %w1 : f32[8]C
  param %w2 : f32[4,8]OI
  param %w3 : f32[256,300]OI
  state %m1 : f32[8]C
  state %m2 : f32[4,8]OI
  state %m3 : f32[256,300]OI
  %u1, %v1 = sgd_update[u1](%w1, %g1, %lr, %rescale_grad, %m1) {clip_gradient=-1, momentum=0.9, wd=0} : f32[8]C, f32[8]C
  %u2, %v2 = sgd_update[u2](%w2, %g2, %lr, %rescale_grad, %m2) {clip_gradient=-1, momentum=0.9, wd=0} : f32[4,8]OI, f32[4,8]OI
  %u3, %v3 = sgd_update[u3](%w3, %g3, %lr, %rescale_grad, %m3) {clip_gradient=-1, momentum=0.9, wd=0} : f32[256,300]OI, f32[256,300]OI
  update %w1 <- %u1
  update %m1 <- %v1
  update %w2 <- %u2
  update %m2 <- %v2
  update %w3 <- %u3
  update %m3 <- %v3
}
)";

TEST_CASE("select_steps: in-place updates write the bound parameter and state", "[codegen][lowering]") {
  StepProgram p = Select(Parse(kUpdates));
  std::string text = PrintStepProgram(p);
  INFO(text);
  CheckGolden("golden_updates", text, R"(program "update" (unplanned)
input 0 g1: f32[8]
input 1 g2: f32[4,8]
input 2 g3: f32[256,300]
input 3 lr: f32[]
input 4 rescale_grad: f32[]
param 0 w1: f32[8] updated
param 1 w2: f32[4,8] updated
param 2 w3: f32[256,300] updated
param 3 m1: f32[8] state updated
param 4 m2: f32[4,8] state updated
param 5 m3: f32[256,300] state updated
step 0 sgd_update "u1" {clip_gradient=[-1], wd=[0], momentum=0.9} (param0 f32[8], input0 f32[8], input3 f32[], input4 f32[], param3 f32[8]) -> (param0 f32[8], param3 f32[8])
step 1 sgd_update "u2" {clip_gradient=[-1], wd=[0], momentum=0.9} (param1 f32[4,8], input1 f32[4,8], input3 f32[], input4 f32[], param4 f32[4,8]) -> (param1 f32[4,8], param4 f32[4,8])
step 2 sgd_update "u3" {clip_gradient=[-1], wd=[0], momentum=0.9} (param2 f32[256,300], input2 f32[256,300], input3 f32[], input4 f32[], param5 f32[256,300]) -> (param2 f32[256,300], param5 f32[256,300])
)");
}

TEST_CASE("group_updates: small updates with the same hyper-parameters become one step", "[codegen][lowering]") {
  StepProgram p = Select(Parse(kUpdates));
  REQUIRE(AssignLayouts(p, Fixed(), LayoutOptions{}).ok());
  std::string before = PrintStepProgram(p);
  GroupUpdates(p);
  std::string after = PrintStepProgram(p);
  INFO(before << "\n" << after);
  REQUIRE(p.steps.size() == 2);
  // The 300 KiB update is not grouped (it stays where the schedule put it); the two small
  // ones are delayed past it, which is independent of them, into one group.
  CHECK(p.steps[0].kind == "sgd_update");
  CHECK(p.steps[0].node_name == "u3");
  CHECK(p.steps[1].kind == "sgd_update_group");
  CHECK(p.steps[1].ints.count("group_size") == 1);
  if (p.steps[1].ints.count("group_size")) CHECK(p.steps[1].ints.at("group_size") == std::vector<int64_t>{2});
  CheckGolden("golden_grouped", after, R"(program "update" (unplanned)
input 0 g1: f32[8]
input 1 g2: f32[4,8]
input 2 g3: f32[256,300]
input 3 lr: f32[]
input 4 rescale_grad: f32[]
param 0 w1: f32[8] updated
param 1 w2: f32[4,8] updated
param 2 w3: f32[256,300] updated
param 3 m1: f32[8] state updated
param 4 m2: f32[4,8] state updated
param 5 m3: f32[256,300] state updated
step 0 sgd_update "u3" {clip_gradient=[-1], wd=[0], momentum=0.9} (param2 f32[256,300], input2 f32[256,300], input3 f32[], input4 f32[], param5 f32[256,300]) -> (param2 f32[256,300], param5 f32[256,300])
step 1 sgd_update_group "u1+1" {clip_gradient=[-1], group_size=[2], wd=[0], momentum=0.9} (param0 f32[8], input0 f32[8], input3 f32[], input4 f32[], param3 f32[8], param1 f32[4,8], input1 f32[4,8], input3 f32[], input4 f32[], param4 f32[4,8]) -> (param0 f32[8], param3 f32[8], param1 f32[4,8], param4 f32[4,8])
)");
  SECTION("idempotent") {
    GroupUpdates(p);
    CHECK(PrintStepProgram(p) == after);
  }
  SECTION("updates with another learning rate do not join") {
    StepProgram q = Select(Parse(kUpdates));
    REQUIRE(AssignLayouts(q, Fixed(), LayoutOptions{}).ok());
    q.steps[1].inputs[2].index = 4;  // u2 reads rescale_grad as its lr: another hyper-parameter
    GroupUpdates(q);
    CHECK(q.steps.size() == 3);
  }
}

TEST_CASE("plan_buffers: offsets, in-place reuse and the memory report", "[codegen][lowering]") {
  StepProgram p = Select(Parse(kInference));
  REQUIRE(AssignLayouts(p, Fixed(), LayoutOptions{}).ok());
  std::string before = PrintStepProgram(p);
  REQUIRE(PlanBuffers(p, PlanOptions{true}).ok());
  std::string after = PrintStepProgram(p);
  INFO(before << "\n" << after);
  CHECK(p.planned);
  CHECK(p.buffers.empty());
  // relu runs in place on the convolution's output (it dies at the relu).
  CHECK(p.memory.num_in_place == 1);
  CHECK(p.memory.arena_bytes <= p.memory.naive_bytes);
  CHECK(p.memory.arena_bytes >= p.memory.lower_bound_bytes);
  CheckGolden("golden_planned", after, R"(program "forward" (planned, arena 2304 bytes)
input 0 x: f32[2,3,6,6]
output 0 y: f32[2,5]
output 1 flat: f32[2,256]
param 0 w: f32[16,3,3,3]
param 1 b: f32[16]
param 2 w2: f32[5,256]
step 0 conv2d "conv" {dilation=[1,1], padding_begin=[0,0], padding_end=[0,0], stride=[1,1]} (input0 f32[2,3,6,6], param0 f32[16,3,3,3], param1 f32[16]) -> (arena+0 f32[2,16,4,4]) scratch (arena+2048 f32[64])
step 1 relu "act" (arena+0 f32[2,16,4,4]) -> (arena+0 f32[2,16,4,4])
step 2 dense "fc" (arena+0 f32[2,256], param2 f32[5,256]) -> (output0 f32[2,5])
step 3 reshape "copy_to_output_flat" {shape=[2,256]} (arena+0 f32[2,256]) -> (output1 f32[2,256])
memory arena_bytes=2304 naive_bytes=4352 lower_bound_bytes=2304 buffers=3 in_place=1 reorders=0 resident_bytes=0
)");
  SECTION("without plan_memory every buffer has its own slot") {
    StepProgram q = Select(Parse(kInference));
    REQUIRE(AssignLayouts(q, backends::cpu::CpuSteps(), LayoutOptions{}).ok());
    REQUIRE(PlanBuffers(q, PlanOptions{false}).ok());
    CHECK(q.memory.num_in_place == 0);
    CHECK(q.memory.arena_bytes == q.memory.naive_bytes);
  }
  SECTION("an unplanned program cannot be instantiated, a planned one can") {
    StepProgram q = Select(Parse(kInference));
    CHECK(runtime::Instantiate(q, backends::cpu::CpuSteps()).status().code() == StatusCode::kFailedPrecondition);
    REQUIRE(AssignLayouts(q, backends::cpu::CpuSteps(), LayoutOptions{}).ok());
    REQUIRE(PlanBuffers(q, PlanOptions{true}).ok());
    CHECK(runtime::Instantiate(q, backends::cpu::CpuSteps()).ok());
  }
}

TEST_CASE("the lowering pipeline reports every pass in order and each program is consistent",
          "[codegen][lowering]") {
  ir::Graph g = Parse(kInference);
  LowerOptions options{true, true, false};
  options.group_updates = true;
  std::vector<std::string> seen;
  options.after_pass = [&](std::string_view pass, const StepProgram& p) {
    seen.emplace_back(pass);
    CHECK(p.planned == (pass == "plan_buffers"));
  };
  REQUIRE(LowerToProgram(g, backends::cpu::CpuSteps(), options).ok());
  CHECK(seen == LoweringPassNames(options));
  CHECK(seen == std::vector<std::string>{"select_steps", "assign_layouts", "group_updates", "plan_buffers"});
}

TEST_CASE("lowered programs compute what the reference interpreter computes", "[codegen][lowering]") {
  // Every combination of the lowering passes' options, on the inference graph and on the
  // update graph (outputs and updated parameters compared).
  for (const char* text : {kInference, kUpdates}) {
    ir::Graph g = Parse(text);
    LowerOptions grouped{true, true, false};
    grouped.group_updates = true;
    LowerOptions frozen{true, true, false};
    frozen.constant_params = true;
    testing::ExpectEquivalent(g, g, 7,
                              {LowerOptions{false, false, false}, LowerOptions{true, false, false},
                               LowerOptions{true, true, false}, grouped, frozen},
                              2e-4);
  }
}

TEST_CASE("grouped and depthwise convolutions take blocked 5-D weight layouts at inference", "[codegen][lowering]") {
  // The CPU target names them "g<G>:<tag>" (oneDNN's Goihw8g / Goihw16g for depthwise): at
  // inference with constant parameters the reorder into that layout is a prepack step, and
  // the results equal the reference; training graphs keep grouped weights dense.
  for (int64_t groups : {int64_t{16}, int64_t{4}}) {
    INFO("groups " << groups);
    ir::Graph g = Parse(R"(graph g {
  input %x : f32[2,16,9,9]NCHW
  param %w : f32[16,)" + std::to_string(16 / groups) + R"(,3,3]OIHW
  param %b : f32[16]C
  %c = conv2d[dw](%x, %w, %b) {dilation=[1,1], groups=)" + std::to_string(groups) +
                        R"(, padding_begin=[1,1], padding_end=[1,1], stride=[2,2]} : f32[2,16,5,5]NCHW
  output y = %c
}
)");
    LowerOptions frozen{true, true, false};
    frozen.constant_params = true;
    auto program = LowerToProgram(g, backends::cpu::CpuSteps(), frozen);
    REQUIRE(program.ok());
    std::string text = PrintStepProgram(*program);
    INFO(text);
    bool blocked_weights = false;
    for (const auto& d : program->steps) {
      if (d.kind == "conv2d") blocked_weights = d.inputs[1].layout.rfind("g" + std::to_string(groups) + ":", 0) == 0;
    }
    if (groups == 16) {  // depthwise: oneDNN's jit kernels want Goihw8g/16g (grouped 4: its choice)
      CHECK(blocked_weights);
      CHECK(program->prepack_steps.size() == 1);  // the weights' reorder
    }
    testing::ExpectEquivalent(g, g, 3, {frozen, LowerOptions{true, true, false}}, 1e-5);
  }
}

}  // namespace
}  // namespace kiln::codegen
