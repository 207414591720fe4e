#include "aot/export.h"

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <map>

#include "graph/symbol.h"

namespace kiln::aot {

runtime::MemoryReport MemoryReportFromSteps(const std::vector<runtime::StepDesc>& steps, int64_t arena_bytes) {
  struct Interval {
    int64_t bytes;
    size_t begin, end;
  };
  std::vector<Interval> intervals;
  std::map<std::pair<int64_t, int64_t>, size_t> live;  // (offset, bytes) -> interval index
  for (size_t i = 0; i < steps.size(); ++i) {
    const runtime::StepDesc& d = steps[i];
    for (const auto& r : d.inputs) {
      if (r.kind != runtime::BufferKind::kArena) continue;
      auto key = std::make_pair(r.offset, r.size_bytes());
      auto it = live.find(key);
      if (it == live.end()) {
        live[key] = intervals.size();
        intervals.push_back({r.size_bytes(), 0, i});
      } else {
        intervals[it->second].end = i;
      }
    }
    for (const auto& r : d.outputs) {
      if (r.kind != runtime::BufferKind::kArena) continue;
      auto key = std::make_pair(r.offset, r.size_bytes());
      bool in_place = std::any_of(d.inputs.begin(), d.inputs.end(), [&](const runtime::TensorRef& x) {
        return x.kind == runtime::BufferKind::kArena && x.offset == r.offset && x.size_bytes() == r.size_bytes();
      });
      if (in_place && live.count(key)) continue;
      live[key] = intervals.size();
      intervals.push_back({r.size_bytes(), i, i});
    }
    for (const auto& r : d.scratch) intervals.push_back({r.size_bytes(), i, i});
  }
  runtime::MemoryReport m;
  m.arena_bytes = arena_bytes;
  for (const auto& iv : intervals) m.naive_bytes += iv.bytes;
  for (size_t i = 0; i < steps.size(); ++i) {
    int64_t sum = 0;
    for (const auto& iv : intervals) {
      if (iv.begin <= i && i <= iv.end) sum += iv.bytes;
    }
    m.lower_bound_bytes = std::max(m.lower_bound_bytes, sum);
  }
  return m;
}

StatusOr<runtime::ArtifactContents> CompileForExport(graph::nn::Block& net, const Shape& input_shape,
                                                     const ExportOptions& options,
                                                     std::vector<std::unique_ptr<Tensor>>* weights,
                                                     double* compile_seconds) {
  auto start = std::chrono::steady_clock::now();
  auto named = net.CollectParams();  // assigns structural names
  graph::Tracer t("forward");
  t.SetShapeLog(options.compile.shape_log);
  graph::Sym x = t.Input("data", DType::kF32, input_shape);
  ASSIGN_OR_RETURN(graph::Sym out, net.Forward(x));
  t.graph().AddOutput("output", out.id);
  std::string text;
  codegen::LowerStats stats;
  ASSIGN_OR_RETURN(auto session, graph::CompileGraph(t.TakeGraph(), net, options.compile, &text, &stats));
  const runtime::Executable& exe = session->executable();
  if (!exe.writeback_steps().empty()) {
    return Unimplemented("export: resident training parameters (write-back steps) are not stored in artifacts");
  }

  runtime::ArtifactContents c;
  c.model_name = options.model_name;
  c.inputs = exe.inputs();
  c.outputs = exe.outputs();
  c.params = exe.params();
  for (const auto& step : exe.steps()) c.steps.push_back(step->desc());
  for (const auto& step : exe.prepack_steps()) c.prepack_steps.push_back(step->desc());
  c.arena_bytes = exe.arena_bytes();
  c.constants = exe.constants();
  c.graph_text = text;
  std::map<std::string, graph::Parameter*> by_name(named.begin(), named.end());
  for (const auto& spec : c.params) {
    auto it = by_name.find(spec.name);
    Tensor* value = it == by_name.end() ? nullptr : it->second->data_or_null();
    if (!value) return FailedPrecondition("export: parameter '" + spec.name + "' is not initialized");
    weights->push_back(std::make_unique<Tensor>(*value));
    c.weights.push_back(weights->back().get());
  }
  c.memory = MemoryReportFromSteps(c.steps, c.arena_bytes);
  for (const Tensor* w : c.weights) c.memory.weight_bytes += w->size_bytes();
  for (const Tensor& k : c.constants) c.memory.constant_bytes += k.size_bytes();
  c.metadata = options.metadata;
  c.metadata["compiler"] = "kiln aot::ExportArtifact";
  c.metadata["input_shape"] = ShapeToString(input_shape);
  c.metadata["opt_level"] = std::to_string(options.compile.opt_level);
  if (compile_seconds) {
    *compile_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  }
  return c;
}

StatusOr<ExportResult> ExportArtifact(graph::nn::Block& net, const Shape& input_shape, const std::string& path,
                                      const ExportOptions& options) {
  std::vector<std::unique_ptr<Tensor>> weights;
  ExportResult r;
  ASSIGN_OR_RETURN(runtime::ArtifactContents c, CompileForExport(net, input_shape, options, &weights,
                                                                 &r.compile_seconds));
  RETURN_IF_ERROR(runtime::WriteArtifact(c, path));
  std::error_code ec;
  r.file_bytes = static_cast<int64_t>(std::filesystem::file_size(path, ec));
  r.num_steps = static_cast<int>(c.steps.size());
  r.memory = c.memory;
  return r;
}

}  // namespace kiln::aot
