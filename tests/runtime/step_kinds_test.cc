// The step-kind table (runtime/step_kinds.h) is the one list of operand names, dtypes,
// attributes, in-place pairs, scalar inputs and layout rules. The IR ops that lower to a
// step of the same kind name their operands in the op registry too (the verifier, the
// parser and error messages use them, and ir/ may not depend on runtime/); this test keeps
// the two agreeing, so a new op that disagrees with its table line fails here.
#include <catch2/catch.hpp>

#include <set>

#include "backends/cpu/kernels_cpu.h"
#include "ir/op_registry.h"
#include "runtime/step_kinds.h"

namespace kiln {
namespace {

std::vector<std::string> Names(const std::vector<runtime::OperandInfo>& ops) {
  std::vector<std::string> names;
  for (const auto& o : ops) names.emplace_back(o.name);
  return names;
}

TEST_CASE("every IR op with a step kind names its operands as the step-kind table does", "[runtime][step_kinds]") {
  int checked = 0;
  for (const runtime::StepKindInfo& info : runtime::AllStepKinds()) {
    const ir::OpDef* def = ir::FindOp(info.kind);
    if (def == nullptr) continue;  // a runtime-only kind (reorder)
    INFO("kind " << info.kind);
    ++checked;
    // The IR op's operands are the table's, in order; the table may append lowering-only
    // operands (the max-pooling workspace that codegen/select_steps.h adds).
    auto prefix = [](std::vector<std::string> table, const std::vector<std::string>& ir) {
      if (table.size() > ir.size()) table.resize(ir.size());
      return table;
    };
    CHECK(prefix(Names(info.inputs), def->input_names) == def->input_names);
    CHECK(prefix(Names(info.outputs), def->output_names) == def->output_names);
    CHECK(info.inputs.size() <= def->input_names.size() + 1);
    CHECK(info.outputs.size() <= def->output_names.size() + 1);
    int min_inputs = def->min_inputs < 0 ? static_cast<int>(def->input_names.size()) : def->min_inputs;
    CHECK(info.min_inputs == min_inputs);
    // The planner's in-place reuse and the IR trait agree.
    CHECK(runtime::OutputReusesInput0(info.kind) == def->inplace_on_input0);
    // Every attribute the IR op accepts is in the table (the table may add lowering-only
    // ones, e.g. with_workspace).
    std::set<std::string> table;
    for (const auto& a : info.attrs) table.insert(a.name);
    for (const auto* list : {&def->int_attrs, &def->float_attrs, &def->ints_attrs, &def->string_attrs}) {
      for (const std::string& a : *list) {
        INFO("attribute " << a);
        CHECK(table.count(a) == 1);
      }
    }
  }
  CHECK(checked >= 30);
}

TEST_CASE("the step-kind table's facts", "[runtime][step_kinds]") {
  CHECK(runtime::FindStepKind("frobnicate") == nullptr);
  CHECK(runtime::FindStepKind("sgd_update_group") == nullptr);  // groups: SplitGroup gives members
  CHECK(runtime::UpdateInPlaceInput("sgd_update", 0) == 0);
  CHECK(runtime::UpdateInPlaceInput("sgd_update", 1) == 4);   // mom_out over mom
  CHECK(runtime::UpdateInPlaceInput("adam_update", 2) == 3);  // var_out over var
  CHECK(runtime::UpdateInPlaceInput("relu", 0) == -1);        // not an update kind
  CHECK(runtime::OutputReusesInput0("relu"));
  CHECK(!runtime::OutputReusesInput0("conv2d"));
  CHECK(runtime::AcceptsBlockedLayouts("conv2d"));
  CHECK(runtime::AcceptsBlockedLayouts("reorder"));
  CHECK(!runtime::AcceptsBlockedLayouts("dense"));
  CHECK(runtime::FindStepKind("adam_update")->scalar_inputs == std::vector<int>{4, 5});
  std::set<std::string_view> kinds;
  for (const auto& info : runtime::AllStepKinds()) {
    INFO(info.kind);
    CHECK(kinds.insert(info.kind).second);  // no kind twice
    CHECK(info.min_inputs <= static_cast<int>(info.inputs.size()));
    for (const auto& p : info.in_place) {
      CHECK(p.output < static_cast<int>(info.outputs.size()));
      CHECK(p.input < static_cast<int>(info.inputs.size()));
    }
  }
}

TEST_CASE("the CPU backend names operands by the table in its errors", "[runtime][step_kinds]") {
  runtime::StepDesc d;
  d.kind = "conv2d";
  d.node_name = "conv0";
  d.inputs = {{runtime::BufferKind::kArena, 0, 0, DType::kF32, {2, 3, 9, 9}, "", 0}};
  d.outputs = {{runtime::BufferKind::kArena, 0, 1024, DType::kF32, {2, 4, 7, 7}, "", 0}};
  auto step = backends::cpu::CpuSteps().Create(d);
  REQUIRE(!step.ok());
  CHECK(step.status().code() == StatusCode::kInvalidArgument);
  CHECK_THAT(step.status().message(), Catch::Contains("conv2d \"conv0\": takes 2 to 4 inputs, got 1") &&
                                          Catch::Contains("src arena+0 f32[2,3,9,9]") &&
                                          Catch::Contains("dst arena+1024"));
}

}  // namespace
}  // namespace kiln
