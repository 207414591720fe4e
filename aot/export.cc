#include "aot/export.h"

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <map>
#include <set>

#include "compiler/compile.h"
#include "graph/symbol.h"

namespace kiln::aot {

StatusOr<runtime::ArtifactContents> CompileForExport(graph::nn::Block& net, const Shape& input_shape,
                                                     const ExportOptions& options,
                                                     std::vector<std::unique_ptr<Tensor>>* weights,
                                                     double* compile_seconds) {
  auto start = std::chrono::steady_clock::now();
  auto named = net.CollectParams();  // assigns structural names
  auto compile = [&](const Shape& shape) -> StatusOr<compiler::CompiledModule> {
    graph::Tracer t("forward");
    t.SetShapeLog(options.compile.shape_log);
    graph::Sym x = t.Input("data", DType::kF32, shape);
    ASSIGN_OR_RETURN(graph::Sym out, net.Forward(x));
    t.graph().AddOutput("output", out.id);
    // The Predictor's request (so the loaded artifact is bit-identical to Predictor::Forward),
    // without an executable: the writer takes the program.
    compiler::CompileRequest request = graph::InferenceRequest(options.compile);
    request.instantiate = false;
    return compiler::Compile(t.TakeGraph(), request);
  };
  if (input_shape.empty()) return InvalidArgument("export: the input shape has no batch dim");
  ASSIGN_OR_RETURN(compiler::CompiledModule m, compile(input_shape));
  runtime::ArtifactContents c;
  std::set<int64_t> buckets(options.batch_buckets.begin(), options.batch_buckets.end());
  buckets.erase(input_shape[0]);
  for (int64_t batch : buckets) {
    if (batch < 1) return InvalidArgument("export: batch bucket " + std::to_string(batch) + " must be >= 1");
    Shape shape = input_shape;
    shape[0] = batch;
    auto bm = compile(shape);
    if (!bm.ok()) return bm.status().WithContext("export: batch bucket " + std::to_string(batch));
    c.buckets.push_back(std::move(bm->program));
  }
  c.model_name = options.model_name;
  c.program = std::move(m.program);
  c.isa = m.target->runtime_target().isa();
  c.graph_text = std::move(m.ir_text);
  if (!c.program.writeback_steps.empty()) {
    return Unimplemented("export: resident training parameters (write-back steps) are not stored in artifacts");
  }
  std::map<std::string, graph::Parameter*> by_name(named.begin(), named.end());
  for (const auto& spec : c.program.params) {
    auto it = by_name.find(spec.name);
    Tensor* value = it == by_name.end() ? nullptr : it->second->data_or_null();
    if (!value) return FailedPrecondition("export: parameter '" + spec.name + "' is not initialized");
    weights->push_back(std::make_unique<Tensor>(*value));
    c.weights.push_back(weights->back().get());
  }
  for (const Tensor* w : c.weights) c.program.memory.weight_bytes += w->size_bytes();
  c.metadata = options.metadata;
  c.metadata["compiler"] = "kiln aot::ExportArtifact";
  c.metadata["input_shape"] = ShapeToString(input_shape);
  if (!buckets.empty()) {
    buckets.insert(input_shape[0]);
    std::string list;
    for (int64_t b : buckets) list += (list.empty() ? "" : ",") + std::to_string(b);
    c.metadata["batch_buckets"] = list;
  }
  c.metadata["opt_level"] = std::to_string(options.compile.opt_level);
  c.metadata["target"] = c.program.target;
  c.metadata["isa"] = c.isa;
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
  r.num_steps = static_cast<int>(c.program.steps.size());
  r.memory = c.program.memory;
  return r;
}

}  // namespace kiln::aot
