#include "codegen/plan_buffers.h"

#include <algorithm>
#include <map>
#include <numeric>

#include "codegen/memory_plan.h"
#include "runtime/step_kinds.h"

namespace kiln::codegen {

using runtime::BufferKind;
using runtime::StepDesc;
using runtime::TensorRef;

Status PlanBuffers(runtime::StepProgram& p, const PlanOptions& options) {
  if (p.planned) return FailedPrecondition("plan_buffers: program \"" + p.name + "\" is already planned");
  const int64_t align = kArenaAlignmentBytes;
  size_t nb = p.buffers.size();
  std::vector<BufferLifetime> life(nb);
  std::vector<bool> used(nb, false), pinned(nb, false);
  for (size_t b = 0; b < nb; ++b) {
    life[b].bytes = p.buffers[b].bytes;
    pinned[b] = p.buffers[b].pinned;
  }
  auto touch = [&](const TensorRef& r, int step) {
    if (r.kind != BufferKind::kArena) return;
    auto b = static_cast<size_t>(r.index);
    if (!used[b]) {
      life[b].first_step = life[b].last_step = step;
      used[b] = true;
    }
    life[b].first_step = std::min(life[b].first_step, step);
    life[b].last_step = std::max(life[b].last_step, step);
  };
  for (size_t i = 0; i < p.steps.size(); ++i) {
    for (const auto* refs : {&p.steps[i].inputs, &p.steps[i].outputs, &p.steps[i].scratch}) {
      for (const TensorRef& r : *refs) touch(r, static_cast<int>(i));
    }
  }
  // Buffers of the prepack steps that are not pinned (codegen/hoist_constants.h) are live
  // only while the prepack steps run, before any step: they get their own plan over the
  // prepack steps' order, in the same transient region.
  std::vector<BufferLifetime> prepack_life(nb);
  std::vector<bool> prepack_only(nb, false);
  for (size_t i = 0; i < p.prepack_steps.size(); ++i) {
    const StepDesc& d = p.prepack_steps[i];
    for (const auto* refs : {&d.inputs, &d.outputs, &d.scratch}) {
      for (const TensorRef& r : *refs) {
        if (r.kind != BufferKind::kArena) continue;
        auto b = static_cast<size_t>(r.index);
        if (pinned[b]) continue;
        if (used[b]) {
          return Internal("plan_buffers: buffer \"" + p.buffers[b].name +
                          "\" is used by a prepack step and a step but is not pinned");
        }
        BufferLifetime& l = prepack_life[b];
        if (!prepack_only[b]) {
          l.bytes = life[b].bytes;
          l.first_step = l.last_step = static_cast<int>(i);
          prepack_only[b] = true;
        }
        l.last_step = static_cast<int>(i);
      }
    }
  }
  for (size_t b = 0; b < nb; ++b) {
    if (!pinned[b]) continue;
    used[b] = true;
    life[b].first_step = 0;
    life[b].last_step = std::max<int>(0, static_cast<int>(p.steps.size()) - 1);
  }
  // In-place reuse: an output takes over its input 0's buffer when that buffer is last
  // read by this step, has the same size and layout, and the output's buffer starts here.
  std::vector<size_t> parent(nb);
  std::iota(parent.begin(), parent.end(), 0);
  auto root = [&](size_t b) {
    while (parent[b] != b) b = parent[b];
    return b;
  };
  int in_place = 0;
  if (options.plan_memory) {
    for (size_t i = 0; i < p.steps.size(); ++i) {
      const StepDesc& d = p.steps[i];
      if (!runtime::OutputReusesInput0(d.kind) || d.inputs.empty() || d.outputs.empty()) continue;
      const TensorRef &in = d.inputs[0], &out = d.outputs[0];
      if (in.kind != BufferKind::kArena || out.kind != BufferKind::kArena) continue;
      size_t a = root(static_cast<size_t>(in.index)), b = root(static_cast<size_t>(out.index));
      if (a == b || in.layout != out.layout || in.offset != 0 || life[a].bytes != life[b].bytes) continue;
      if (pinned[a] || pinned[b]) continue;
      if (life[a].last_step != static_cast<int>(i) || life[b].first_step != static_cast<int>(i)) continue;
      // Another operand of this step in buffer a would also be overwritten while read.
      bool shared = false;
      for (size_t j = 1; j < d.inputs.size(); ++j) {
        shared |= d.inputs[j].kind == BufferKind::kArena && root(static_cast<size_t>(d.inputs[j].index)) == a;
      }
      if (shared) continue;
      parent[b] = a;
      life[a].last_step = std::max(life[a].last_step, life[b].last_step);
      ++in_place;
    }
  }
  // Pinned buffers hold parameter data for the session's lifetime: they go in a region
  // after the planned transient part, so the plan and its report cover the run's tensors.
  std::vector<int> slot(nb, -1);
  std::vector<BufferLifetime> planned;
  for (size_t b = 0; b < nb; ++b) {
    if (!used[b] || root(b) != b || pinned[b]) continue;
    slot[b] = static_cast<int>(planned.size());
    planned.push_back(life[b]);
  }
  MemoryPlan plan = options.plan_memory ? PlanMemory(planned, align) : NaivePlan(planned, align);
  RETURN_IF_ERROR(CheckPlan(planned, plan, align));
  std::vector<int> prepack_slot(nb, -1);
  std::vector<BufferLifetime> prepack_planned;
  for (size_t b = 0; b < nb; ++b) {
    if (!prepack_only[b]) continue;
    prepack_slot[b] = static_cast<int>(prepack_planned.size());
    prepack_planned.push_back(prepack_life[b]);
  }
  MemoryPlan prepack_plan = PlanMemory(prepack_planned, align);
  RETURN_IF_ERROR(CheckPlan(prepack_planned, prepack_plan, align));
  const int64_t transient_bytes = std::max(plan.arena_bytes, prepack_plan.arena_bytes);
  auto aligned = [&](int64_t bytes) { return (bytes + align - 1) / align * align; };
  std::map<size_t, int64_t> pinned_offsets;
  int64_t pinned_bytes = 0;
  for (size_t b = 0; b < nb; ++b) {
    if (!pinned[b]) continue;
    pinned_offsets[b] = aligned(transient_bytes) + pinned_bytes;
    pinned_bytes += aligned(life[b].bytes);
  }
  for (std::vector<StepDesc>* list : {&p.steps, &p.prepack_steps, &p.writeback_steps}) {
    for (StepDesc& d : *list) {
      for (auto* refs : {&d.inputs, &d.outputs, &d.scratch}) {
        for (TensorRef& r : *refs) {
          if (r.kind != BufferKind::kArena) continue;
          size_t b = root(static_cast<size_t>(r.index));
          auto pin = pinned_offsets.find(b);
          if (pin != pinned_offsets.end()) {
            r.offset += pin->second;
          } else if (prepack_only[b]) {
            r.offset += prepack_plan.offsets[static_cast<size_t>(prepack_slot[b])];
          } else {
            r.offset += plan.offsets[static_cast<size_t>(slot[b])];
          }
          r.index = 0;
        }
      }
    }
  }
  runtime::MemoryReport& m = p.memory;
  // What the session's transient region holds: the run's plan, or the prepack steps' own
  // buffers when those need more (hoisted computations, codegen/hoist_constants.h).
  m.arena_bytes = transient_bytes;
  // Naive and lower bound count every tensor on its own (no in-place sharing).
  std::vector<BufferLifetime> all;
  for (size_t b = 0; b < nb; ++b) {
    if (used[b] && !pinned[b]) all.push_back(BufferLifetime{life[b].bytes, life[b].first_step, life[b].last_step});
  }
  m.naive_bytes = NaiveBytes(all, align);
  m.lower_bound_bytes = LowerBoundBytes(planned, align);
  m.num_buffers = static_cast<int>(all.size());
  m.num_in_place = in_place;
  m.num_reorders = static_cast<int>(p.prepack_steps.size());
  for (const StepDesc& d : p.steps) m.num_reorders += d.kind == "reorder";
  m.resident_bytes = pinned_bytes;
  m.constant_bytes = 0;
  for (const Tensor& c : p.constants) m.constant_bytes += c.size_bytes();
  p.arena_bytes = std::max<int64_t>(aligned(transient_bytes) + pinned_bytes, 64);
  p.buffers.clear();
  p.planned = true;
  return OkStatus();
}

}  // namespace kiln::codegen
