#include "codegen/lower.h"

#include <chrono>

#include "codegen/assign_layouts.h"
#include "codegen/group_updates.h"
#include "codegen/hoist_constants.h"
#include "codegen/plan_buffers.h"

namespace kiln::codegen {

std::vector<std::string> LoweringPassNames(const LowerOptions& options) {
  std::vector<std::string> names = {"select_steps", "assign_layouts"};
  if (options.constant_params) names.push_back("hoist_constants");
  if (options.group_updates) names.push_back("group_updates");
  names.push_back("plan_buffers");
  return names;
}

StatusOr<runtime::StepProgram> LowerToProgram(const ir::Graph& graph, const runtime::StepFactory& factory,
                                              const LowerOptions& options, LowerStats* stats) {
  auto after = [&](std::string_view pass, const runtime::StepProgram& p) {
    if (options.after_pass) options.after_pass(pass, p);
  };
  SelectOptions select;
  select.pool_workspace = options.pool_workspace && options.blocked_layouts;
  select.pool_workspace_min_channels = options.pool_workspace_min_channels;
  ASSIGN_OR_RETURN(runtime::StepProgram program, SelectSteps(graph, select));
  after("select_steps", program);
  LayoutOptions layouts;
  layouts.blocked_layouts = options.blocked_layouts;
  layouts.constant_params = options.constant_params;
  layouts.resident_params = options.resident_params;
  RETURN_IF_ERROR(AssignLayouts(program, factory, layouts));
  program.target = options.target;
  after("assign_layouts", program);
  if (options.constant_params) {
    HoistConstants(program);
    after("hoist_constants", program);
  }
  if (options.group_updates) {
    GroupUpdates(program);
    after("group_updates", program);
  }
  RETURN_IF_ERROR(PlanBuffers(program, PlanOptions{options.plan_memory}));
  after("plan_buffers", program);
  if (stats) {
    stats->arena_bytes = program.arena_bytes;
    stats->num_steps = static_cast<int>(program.steps.size());
    stats->memory = program.memory;
  }
  return program;
}

StatusOr<std::shared_ptr<runtime::Executable>> Lower(const ir::Graph& graph, const runtime::StepFactory& factory,
                                                     LowerStats* stats, const LowerOptions& options) {
  auto start = std::chrono::steady_clock::now();
  ASSIGN_OR_RETURN(runtime::StepProgram program, LowerToProgram(graph, factory, options, stats));
  auto exe = runtime::Instantiate(program, factory);
  if (!exe.ok()) return exe.status().WithContext("lowering \"" + graph.name() + "\"");
  if (stats) stats->compile_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return exe;
}

}  // namespace kiln::codegen
