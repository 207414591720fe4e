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

StatusOr<runtime::ArtifactContents> CompileTrainingForExport(graph::nn::Block& net, const graph::LossFn& loss_fn,
                                                             graph::Trainer& trainer, const Shape& input_shape,
                                                             const TrainExportOptions& options,
                                                             std::vector<std::unique_ptr<Tensor>>* weights,
                                                             double* compile_seconds) {
  auto start = std::chrono::steady_clock::now();
  RETURN_IF_ERROR(trainer.status());
  graph::CompileOptions copts = options.compile;
  copts.streams = 1;
  copts.output_gradients = false;
  ASSIGN_OR_RETURN(auto graph, graph::TraceTrainingGraph(net, loss_fn, input_shape, copts.shape_log));
  compiler::CompileRequest request = graph::TrainingRequest(copts, trainer);
  request.instantiate = false;
  ASSIGN_OR_RETURN(compiler::CompiledModule m, compiler::Compile(std::move(graph), request));
  runtime::ArtifactContents c;
  c.model_name = options.model_name;
  c.program = std::move(m.program);
  c.isa = m.target->runtime_target().isa();
  c.graph_text = std::move(m.ir_text);
  if (options.eval_batch >= 0) {
    Shape eval_shape = input_shape;
    if (options.eval_batch > 0) eval_shape[0] = options.eval_batch;
    graph::Tracer t("forward");
    graph::Sym x = t.Input("data", DType::kF32, eval_shape);
    ASSIGN_OR_RETURN(graph::Sym out, net.Forward(x));
    t.graph().AddOutput("output", out.id);
    graph::CompileOptions eopts = copts;
    eopts.constant_params = true;
    compiler::CompileRequest er = graph::InferenceRequest(eopts);
    er.instantiate = false;
    auto em = compiler::Compile(t.TakeGraph(), er);
    if (!em.ok()) return em.status().WithContext("export: the eval program");
    c.eval = std::move(em->program);
  }
  auto named = net.CollectParams();
  std::map<std::string, graph::Parameter*> by_name(named.begin(), named.end());
  for (size_t i = 0; i < c.program.params.size(); ++i) {
    const runtime::TensorSpec& spec = c.program.params[i];
    auto it = by_name.find(spec.name);
    const Tensor* value = nullptr;
    if (it != by_name.end()) {
      value = it->second->data_or_null();
      if (!value) return FailedPrecondition("export: parameter '" + spec.name + "' is not initialized");
    } else {
      ASSIGN_OR_RETURN(value, trainer.StateEntry(spec.name, spec.shape)->Read());
    }
    weights->push_back(std::make_unique<Tensor>(*value));
    c.weights.push_back(weights->back().get());
  }
  for (const Tensor* w : c.weights) c.program.memory.weight_bytes += w->size_bytes();
  runtime::TrainingInfo info;
  info.optimizer = trainer.optimizer();
  info.num_update = trainer.num_update();
  info.options["learning_rate"] = trainer.learning_rate();
  info.options["rescale_grad"] = trainer.StepScale(1);
  if (trainer.optimizer() == "adam") {
    info.options["beta1"] = trainer.adam().beta1;
    info.options["beta2"] = trainer.adam().beta2;
    info.options["epsilon"] = trainer.adam().epsilon;
    info.options["wd"] = trainer.adam().wd;
    info.options["clip_gradient"] = trainer.adam().clip_gradient;
  } else {
    info.options["momentum"] = trainer.sgd().momentum;
    info.options["wd"] = trainer.sgd().wd;
    info.options["clip_gradient"] = trainer.sgd().clip_gradient;
  }
  c.training = info;
  c.metadata = options.metadata;
  c.metadata["compiler"] = "kiln aot::ExportTrainingArtifact";
  c.metadata["training"] = "forward, loss, backward and " + trainer.optimizer() + " update";
  c.metadata["input_shape"] = ShapeToString(input_shape);
  c.metadata["opt_level"] = std::to_string(copts.opt_level);
  c.metadata["target"] = c.program.target;
  c.metadata["isa"] = c.isa;
  if (compile_seconds) {
    *compile_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  }
  return c;
}

StatusOr<ExportResult> ExportTrainingArtifact(graph::nn::Block& net, const graph::LossFn& loss_fn,
                                              graph::Trainer& trainer, const Shape& input_shape, const std::string& path,
                                              const TrainExportOptions& options) {
  std::vector<std::unique_ptr<Tensor>> weights;
  ExportResult r;
  ASSIGN_OR_RETURN(runtime::ArtifactContents c,
                   CompileTrainingForExport(net, loss_fn, trainer, input_shape, options, &weights, &r.compile_seconds));
  RETURN_IF_ERROR(runtime::WriteArtifact(c, path));
  std::error_code ec;
  r.file_bytes = static_cast<int64_t>(std::filesystem::file_size(path, ec));
  r.num_steps = static_cast<int>(c.program.steps.size());
  r.memory = c.program.memory;
  return r;
}

}  // namespace kiln::aot
