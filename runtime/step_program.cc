#include "runtime/step_program.h"

#include <cstdio>

namespace kiln::runtime {
namespace {

std::string Mb(int64_t bytes) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f MB", static_cast<double>(bytes) / 1e6);
  return buf;
}

std::string FormatDouble(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.9g", v);
  return buf;
}

std::string Operand(const TensorRef& r, bool planned) {
  std::string where;
  if (r.kind == BufferKind::kArena) {
    where = planned ? "arena+" + std::to_string(r.offset)
                    : "b" + std::to_string(r.index) + (r.offset ? "+" + std::to_string(r.offset) : std::string());
  } else {
    where = std::string(BufferKindName(r.kind)) + std::to_string(r.index) +
            (r.offset ? "+" + std::to_string(r.offset) : std::string());
  }
  std::string s = where + " " + std::string(DTypeName(r.dtype)) + ShapeToString(r.dims);
  if (!r.dense()) s += " " + r.layout + " (" + std::to_string(r.layout_bytes) + " bytes)";
  return s;
}

std::string Operands(const std::vector<TensorRef>& refs, bool planned) {
  std::string s = "(";
  for (size_t i = 0; i < refs.size(); ++i) s += (i ? ", " : "") + Operand(refs[i], planned);
  return s + ")";
}

}  // namespace

std::string MemoryReport::ToString() const {
  return "arena " + Mb(arena_bytes) + " (naive " + Mb(naive_bytes) + ", lower bound " + Mb(lower_bound_bytes) + "), " +
         std::to_string(num_buffers) + " buffers, " + std::to_string(num_in_place) + " in place, " +
         std::to_string(num_reorders) + " reorders" +
         (resident_bytes > 0 ? ", " + Mb(resident_bytes) + " resident parameters" : std::string());
}

std::string PrintStep(const StepDesc& d, bool planned) {
  std::string attrs;
  auto add = [&](const std::string& a) { attrs += (attrs.empty() ? "" : ", ") + a; };
  for (const auto& [k, v] : d.ints) add(k + "=" + ShapeToString(v));
  for (const auto& [k, v] : d.floats) add(k + "=" + FormatDouble(v));
  for (const auto& [k, v] : d.strings) add(k + "=" + v);
  std::string s = d.kind + " \"" + d.node_name + "\"";
  if (!attrs.empty()) s += " {" + attrs + "}";
  s += " " + Operands(d.inputs, planned) + " -> " + Operands(d.outputs, planned);
  if (!d.scratch.empty()) s += " scratch " + Operands(d.scratch, planned);
  return s;
}

std::string PrintStepProgram(const StepProgram& p) {
  std::string s = "program \"" + p.name + "\"";
  if (!p.target.empty()) s += " target " + p.target;
  if (p.has_backward) s += " training";
  s += p.planned ? " (planned, arena " + std::to_string(p.arena_bytes) + " bytes)\n" : " (unplanned)\n";
  for (size_t i = 0; i < p.inputs.size(); ++i) s += "input " + std::to_string(i) + " " + p.inputs[i].ToString() + "\n";
  for (size_t i = 0; i < p.outputs.size(); ++i) {
    s += "output " + std::to_string(i) + " " + p.outputs[i].ToString() + "\n";
  }
  for (size_t i = 0; i < p.params.size(); ++i) {
    s += "param " + std::to_string(i) + " " + p.params[i].ToString();
    if (i < p.param_info.size()) {
      if (p.param_info[i].state) s += " state";
      if (p.param_info[i].updated) s += " updated";
    }
    s += "\n";
  }
  for (size_t i = 0; i < p.constants.size(); ++i) {
    s += "const " + std::to_string(i) + " " + std::string(DTypeName(p.constants[i].dtype())) +
         ShapeToString(p.constants[i].shape()) + "\n";
  }
  for (size_t i = 0; i < p.buffers.size(); ++i) {
    const BufferDesc& b = p.buffers[i];
    s += "buffer " + std::to_string(i) + " \"" + b.name + "\" " + std::to_string(b.bytes) + " bytes" +
         (b.pinned ? " pinned" : "") + "\n";
  }
  auto list = [&](const char* what, const std::vector<StepDesc>& steps) {
    for (size_t i = 0; i < steps.size(); ++i) {
      s += std::string(what) + " " + std::to_string(i) + " " + PrintStep(steps[i], p.planned) + "\n";
    }
  };
  list("prepack", p.prepack_steps);
  list("step", p.steps);
  list("writeback", p.writeback_steps);
  if (p.planned) {
    const MemoryReport& m = p.memory;
    s += "memory arena_bytes=" + std::to_string(m.arena_bytes) + " naive_bytes=" + std::to_string(m.naive_bytes) +
         " lower_bound_bytes=" + std::to_string(m.lower_bound_bytes) + " buffers=" + std::to_string(m.num_buffers) +
         " in_place=" + std::to_string(m.num_in_place) + " reorders=" + std::to_string(m.num_reorders) +
         " resident_bytes=" + std::to_string(m.resident_bytes) + "\n";
  }
  return s;
}

StatusOr<std::shared_ptr<Executable>> Instantiate(const StepProgram& p, const StepFactory& factory) {
  if (!p.planned) {
    return FailedPrecondition("Instantiate: program \"" + p.name + "\" has no buffer plan (run plan_buffers first)");
  }
  auto create = [&](const std::vector<StepDesc>& descs,
                    const char* what) -> StatusOr<std::vector<std::unique_ptr<Step>>> {
    std::vector<std::unique_ptr<Step>> steps;
    for (size_t i = 0; i < descs.size(); ++i) {
      auto step = factory.Create(descs[i]);
      if (!step.ok()) {
        return step.status().WithContext(std::string("instantiating ") + what + std::to_string(i) + " (" +
                                         descs[i].Where() + ")");
      }
      steps.push_back(std::move(step).value());
    }
    return steps;
  };
  ASSIGN_OR_RETURN(auto steps, create(p.steps, "step "));
  ASSIGN_OR_RETURN(auto prepack, create(p.prepack_steps, "prepack step "));
  ASSIGN_OR_RETURN(auto writeback, create(p.writeback_steps, "write-back step "));
  auto exe = std::make_shared<Executable>(p.inputs, p.outputs, p.params, p.constants, std::move(steps),
                                          std::max<int64_t>(p.arena_bytes, 64));
  exe->SetPrepackSteps(std::move(prepack));
  exe->SetWritebackSteps(std::move(writeback));
  return exe;
}

StatusOr<std::shared_ptr<Executable>> Instantiate(const StepProgram& p, const Target& target) {
  if (!p.target.empty() && p.target != target.name()) {
    return FailedPrecondition("program \"" + p.name + "\" was lowered for target '" + p.target + "', not '" +
                              std::string(target.name()) + "'");
  }
  ASSIGN_OR_RETURN(auto exe, Instantiate(p, target.steps()));
  exe->SetTarget(&target);
  return exe;
}

}  // namespace kiln::runtime
