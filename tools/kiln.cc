// kiln: the command-line compiler and server.
//
//   kiln compile --model lenet --params lenet.params --input-shape 32,1,28,28 -o lenet.kiln
//   kiln compile model.onnx --batch 8 -o model.kiln
//   kiln compile --model lenet --train --input-shape 256,1,28,28 --lr 0.1 -o lenet-train.kiln
//   kiln export-onnx --model lenet --params lenet.params -o lenet.onnx
//   kiln inspect lenet.kiln [--ir]
//   kiln serve lenet.kiln --port 8000
//
// `compile` builds a network by name (aot/models.h: lenet, mnist_cnn, mlp; kiln networks are
// declared in C++), loads trained parameters from a Gluon-compatible .params file (without
// --params the weights are Xavier-initialized from --seed: an untrained model, for tests),
// compiles the inference graph for the given input shape (NCHW; its first dim is the batch
// the artifact runs) and writes the artifact; or imports an ONNX file (import/onnx_import.h:
// its weights, its input shape with --batch for a symbolic batch dim) and compiles that. `inspect` loads an artifact with the runtime
// (so it validates it) and prints its signatures, steps, fused nodes and memory report.
// `serve` is kiln-serve (serve/server.h). Exit codes (tools/flags.h): 1 when compiling,
// loading or serving fails, 2 for a usage error (a bad flag value, e.g. --opt-level 7).
#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <set>
#include <sstream>
#include <vector>

#include "aot/export.h"
#include "aot/models.h"
#include "import/onnx_export.h"
#include "import/onnx_import.h"
#include "graph/parameter.h"
#include "graph/trainer.h"
#include "runtime/model.h"
#include "serve/serve_flags.h"
#include "serve/server.h"
#include "tools/flags.h"

namespace {

using namespace kiln;

int Fail(const Status& s, const char* what) {
  std::fprintf(stderr, "kiln %s: %s\n", what, s.ToString().c_str());
  return 1;
}

std::string Bytes(int64_t b) {
  char buf[64];
  if (b >= (1 << 20)) {
    std::snprintf(buf, sizeof buf, "%lld bytes (%.2f MiB)", static_cast<long long>(b), static_cast<double>(b) / (1 << 20));
  } else if (b >= 1024) {
    std::snprintf(buf, sizeof buf, "%lld bytes (%.1f KiB)", static_cast<long long>(b), static_cast<double>(b) / 1024);
  } else {
    std::snprintf(buf, sizeof buf, "%lld bytes", static_cast<long long>(b));
  }
  return buf;
}

// A step counts as fused when the fusion pass folded element-wise ops into it (an
// "activation" or "post_ops" attribute, which become oneDNN post-ops) or its kind says so.
bool IsFused(const runtime::StepDesc& d) {
  return d.kind.find("fused") != std::string::npos || d.ints.count("post_ops") || d.strings.count("post_ops") ||
         d.strings.count("activation");
}

std::string Attributes(const runtime::StepDesc& d) {
  std::string s;
  auto sep = [&] { s += s.empty() ? "" : ", "; };
  for (const auto& [k, v] : d.ints) {
    sep();
    s += k + "=" + (v.size() == 1 ? std::to_string(v[0]) : ShapeToString(v));
  }
  for (const auto& [k, v] : d.floats) {
    sep();
    char buf[48];
    std::snprintf(buf, sizeof buf, "%g", v);
    s += k + "=" + buf;
  }
  for (const auto& [k, v] : d.strings) {
    sep();
    s += k + "=\"" + v + "\"";
  }
  return s;
}

// ", batch buckets 1,2,4,8" when the artifact holds several batch sizes.
std::string BucketText(const Shape& shape, const std::vector<int64_t>& buckets) {
  std::set<int64_t> all(buckets.begin(), buckets.end());
  if (all.empty() || shape.empty()) return "";
  all.insert(shape[0]);
  std::string text;
  for (int64_t b : all) text += (text.empty() ? ", batch buckets " : ",") + std::to_string(b);
  return text;
}

// The network `model_name` (aot/models.h) with the parameters of the .params file `params`,
// or Xavier-initialized from `seed` when there is none (then, with `warn_untrained`, a note
// on stderr that the model is untrained). Errors: MakeModel's, Initialize's, LoadParameters'.
StatusOr<std::shared_ptr<graph::nn::Block>> BuildNet(const std::string& model_name, const std::string& params,
                                                     uint64_t seed, const char* what, bool warn_untrained) {
  ASSIGN_OR_RETURN(auto net, aot::MakeModel(model_name));
  if (params.empty()) {
    graph::Seed(seed);
    RETURN_IF_ERROR(net->Initialize(graph::Xavier()));
    if (warn_untrained) {
      std::fprintf(stderr, "kiln %s: no --params: Xavier-initialized weights (seed %llu), an untrained model\n", what,
                   static_cast<unsigned long long>(seed));
    }
  } else {
    RETURN_IF_ERROR(net->LoadParameters(params));
  }
  return net;
}

// `kiln compile model.onnx`: the imported network, its input shape for `batch` (or
// `shape_text` when given), and the artifact's metadata.
int CompileOnnx(const std::string& path, int64_t batch, const std::string& shape_text, const std::string& out,
                const std::string& name, int opt_level, bool constant_params, const std::vector<int64_t>& buckets) {
  auto start = std::chrono::steady_clock::now();
  auto net = onnx_import::ImportOnnxFile(path);
  if (!net.ok()) return Fail(net.status(), "compile");
  double import_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  auto shape = shape_text.empty() ? (*net)->InputShapeForBatch(batch) : tools::ParseShape("--input-shape", shape_text);
  if (!shape.ok()) return Fail(shape.status(), "compile");
  aot::ExportOptions options;
  options.model_name = name.empty() ? std::filesystem::path(path).stem().string() : name;
  options.compile.opt_level = opt_level;
  options.compile.constant_params = constant_params;
  options.batch_buckets = buckets;
  options.metadata["model"] = "onnx";
  options.metadata["onnx_file"] = path;
  options.metadata["onnx_opset"] = std::to_string((*net)->model_opset());
  options.metadata["onnx_producer"] = (*net)->producer();
  options.metadata["onnx_input"] = (*net)->input_name() + " " + ShapeToString((*net)->input_dims());
  auto r = aot::ExportArtifact(**net, *shape, out, options);
  if (!r.ok()) return Fail(r.status(), "compile");
  std::printf("imported %s (opset %d, %zu nodes) in %.3f s; wrote %s: %s, input %s, %d steps, arena %s, weights %s, "
              "compiled in %.3f s\n",
              path.c_str(), (*net)->model_opset(), (*net)->nodes().size(), import_s, out.c_str(),
              Bytes(r->file_bytes).c_str(), ShapeToString(*shape).c_str(), r->num_steps,
              Bytes(r->memory.arena_bytes).c_str(), Bytes(r->memory.weight_bytes).c_str(), r->compile_seconds);
  if (!buckets.empty()) std::printf("%s\n", BucketText(*shape, buckets).substr(2).c_str());
  return 0;
}

int Compile(const std::string& model_name, const std::string& params, const std::string& shape_text,
            const std::string& out, const std::string& name, int opt_level, uint64_t seed, bool constant_params,
            const std::vector<int64_t>& buckets) {
  auto shape = tools::ParseShape("--input-shape", shape_text.empty() ? "1,1,28,28" : shape_text);
  if (!shape.ok()) return Fail(shape.status(), "compile");
  auto net = BuildNet(model_name, params, seed, "compile", true);
  if (!net.ok()) return Fail(net.status(), "compile");
  aot::ExportOptions options;
  options.model_name = name.empty() ? model_name : name;
  options.compile.opt_level = opt_level;
  options.compile.constant_params = constant_params;
  options.batch_buckets = buckets;
  options.metadata["model"] = model_name;
  options.metadata["params_file"] = params.empty() ? "(none: Xavier init, seed " + std::to_string(seed) + ")" : params;
  auto r = aot::ExportArtifact(**net, *shape, out, options);
  if (!r.ok()) return Fail(r.status(), "compile");
  std::printf("wrote %s: %s, %d steps, arena %s, weights %s, compiled in %.3f s%s\n", out.c_str(),
              Bytes(r->file_bytes).c_str(), r->num_steps, Bytes(r->memory.arena_bytes).c_str(),
              Bytes(r->memory.weight_bytes).c_str(), r->compile_seconds, BucketText(*shape, buckets).c_str());
  return 0;
}

// `kiln compile --train`: the training step of a network by name (aot::ExportTrainingArtifact)
// with softmax cross-entropy (Gluon's SoftmaxCrossEntropyLoss) and the optimizer's options,
// from trained parameters or a seeded Xavier initialization; kiln-train runs it.
struct TrainFlags {
  bool train = false;
  std::string optimizer = "sgd";
  double lr = 0.1;
  double momentum = 0, wd = 0, beta1 = 0.9, beta2 = 0.999, epsilon = 1e-8;
  int64_t eval_batch = 0;
};

int CompileTraining(const std::string& model_name, const std::string& params, const std::string& shape_text,
                    const std::string& out, const std::string& name, int opt_level, uint64_t seed,
                    const TrainFlags& flags) {
  auto shape = tools::ParseShape("--input-shape", shape_text.empty() ? "256,1,28,28" : shape_text);
  if (!shape.ok()) return Fail(shape.status(), "compile");
  auto net = BuildNet(model_name, params, seed, "compile", false);
  if (!net.ok()) return Fail(net.status(), "compile");
  std::map<std::string, double> options = {{"learning_rate", flags.lr}, {"wd", flags.wd}};
  if (flags.optimizer == "adam") {
    options.insert({{"beta1", flags.beta1}, {"beta2", flags.beta2}, {"epsilon", flags.epsilon}});
  } else {
    options["momentum"] = flags.momentum;
  }
  graph::Trainer trainer(**net, flags.optimizer, options);
  aot::TrainExportOptions export_options;
  export_options.model_name = name.empty() ? model_name + "-train" : name;
  export_options.compile.opt_level = opt_level;
  export_options.eval_batch = flags.eval_batch;
  export_options.metadata["model"] = model_name;
  export_options.metadata["params_file"] =
      params.empty() ? "(none: Xavier init, seed " + std::to_string(seed) + ")" : params;
  export_options.metadata["loss"] = "softmax cross-entropy (Gluon SoftmaxCrossEntropyLoss)";
  auto r = aot::ExportTrainingArtifact(**net, graph::SoftmaxCrossEntropyLoss(), trainer, *shape, out, export_options);
  if (!r.ok()) return Fail(r.status(), "compile");
  std::printf("wrote %s: training step for %s (%s, lr %g), %s, %d steps, arena %s, weights and state %s, "
              "compiled in %.3f s\n",
              out.c_str(), ShapeToString(*shape).c_str(), flags.optimizer.c_str(), flags.lr,
              Bytes(r->file_bytes).c_str(), r->num_steps, Bytes(r->memory.arena_bytes).c_str(),
              Bytes(r->memory.weight_bytes).c_str(), r->compile_seconds);
  return 0;
}

// `kiln export-onnx`: a network by name with its trained parameters as an ONNX model
// (import/onnx_export.h), batch dim symbolic unless `static_batch`.
int ExportOnnxFile(const std::string& model_name, const std::string& params, const std::string& shape_text,
                   const std::string& out, uint64_t seed, bool static_batch) {
  auto shape = tools::ParseShape("--input-shape", shape_text.empty() ? "1,1,28,28" : shape_text);
  if (!shape.ok()) return Fail(shape.status(), "export-onnx");
  auto net = BuildNet(model_name, params, seed, "export-onnx", true);
  if (!net.ok()) return Fail(net.status(), "export-onnx");
  if (params.empty()) {
    // Deferred parameter shapes are inferred by a first trace.
    graph::Predictor predictor(**net);
    Tensor x(DType::kF32, *shape), y;
    if (Status s = predictor.Forward(x, &y); !s.ok()) return Fail(s, "export-onnx");
  }
  onnx_import::ExportOptions options;
  options.dynamic_batch = !static_batch;
  if (Status s = onnx_import::ExportOnnx(**net, *shape, out, options); !s.ok()) return Fail(s, "export-onnx");
  std::printf("wrote %s: %s (ONNX opset 13, input data %s%s, output output)\n", out.c_str(),
              Bytes(static_cast<int64_t>(std::filesystem::file_size(out))).c_str(), ShapeToString(*shape).c_str(),
              static_batch ? "" : ", batch dim symbolic");
  return 0;
}

int Inspect(const std::string& path, bool ir, bool attrs) {
  auto model = runtime::Model::Load(path);
  if (!model.ok()) return Fail(model.status(), "inspect");
  const runtime::ModelInfo& info = (*model)->info();
  std::printf("artifact   %s\n", path.c_str());
  std::printf("model      %s (format version %u, %s)\n", info.name.c_str(), info.format_version,
              Bytes(info.file_bytes).c_str());
  for (const auto& [k, v] : info.metadata) std::printf("meta       %s = %s\n", k.c_str(), v.c_str());
  std::printf("\nsignatures (dense row-major):\n");
  for (const auto& s : (*model)->inputs()) std::printf("  input    %s\n", s.ToString().c_str());
  for (const auto& s : (*model)->outputs()) std::printf("  output   %s\n", s.ToString().c_str());
  int64_t weight_bytes = 0;
  for (size_t i = 0; i < info.params.size(); ++i) {
    const auto& s = info.params[i];
    weight_bytes += NumElements(s.shape) * DTypeSizeBytes(s.dtype);
    bool state = i < info.param_info.size() && info.param_info[i].state;
    std::printf("  %s %s\n", state ? "state   " : "param   ", s.ToString().c_str());
  }
  if (info.training) {
    std::printf("\ntraining step (run with kiln-train): optimizer %s, %lld steps done", info.training->optimizer.c_str(),
                static_cast<long long>(info.training->num_update));
    for (const auto& [k, v] : info.training->options) std::printf(", %s %g", k.c_str(), v);
    std::printf("\n  write-back steps (resident weights and state to dense): %zu\n", info.writeback_steps.size());
    if (auto eval = (*model)->eval_executable()) {
      std::printf("  eval program: %s -> %s, %zu steps, %s\n", eval->inputs().at(0).ToString().c_str(),
                  eval->outputs().at(0).ToString().c_str(), eval->steps().size(), info.eval_memory.ToString().c_str());
    }
  }
  std::printf("\nprepack steps, run once per session (%zu):\n", info.prepack_steps.size());
  for (const auto& d : info.prepack_steps) std::printf("  %s\n", d.Where().c_str());
  std::printf("\nsteps (%zu):\n", info.steps.size());
  std::vector<const runtime::StepDesc*> fused;
  for (size_t i = 0; i < info.steps.size(); ++i) {
    const runtime::StepDesc& d = info.steps[i];
    if (IsFused(d)) fused.push_back(&d);
    std::string ops;
    for (const auto& r : d.inputs) ops += " " + r.ToString();
    ops += " ->";
    for (const auto& r : d.outputs) ops += " " + r.ToString();
    std::printf("  %3zu %-24s %-28s%s\n", i, d.kind.c_str(), ("\"" + d.node_name + "\"").c_str(), ops.c_str());
    if (attrs && !d.ints.empty() + !d.floats.empty() + !d.strings.empty()) {
      std::printf("      {%s}\n", Attributes(d).c_str());
    }
  }
  std::printf("\nfused nodes (%zu):\n", fused.size());
  for (const auto* d : fused) std::printf("  %s {%s}\n", d->Where().c_str(), Attributes(*d).c_str());
  std::map<std::string, int> kinds;
  for (const auto& d : info.steps) kinds[d.kind]++;
  std::printf("\nop list:");
  for (const auto& [k, n] : kinds) std::printf(" %s x%d", k.c_str(), n);
  std::printf("\n\nmemory:\n");
  std::printf("  arena (planned)        %s\n", Bytes(info.arena_bytes).c_str());
  if (info.memory.naive_bytes) std::printf("  naive (no reuse)       %s\n", Bytes(info.memory.naive_bytes).c_str());
  if (info.memory.lower_bound_bytes) {
    std::printf("  lower bound (live set) %s\n", Bytes(info.memory.lower_bound_bytes).c_str());
  }
  std::printf("  weights                %s in %zu tensors (%s)\n", Bytes(weight_bytes).c_str(), info.params.size(),
              info.weights_in_place ? "used in place from the memory map" : "copied");
  std::printf("  constants              %s\n", Bytes(info.memory.constant_bytes).c_str());
  if (info.batch_sizes.size() > 1) {
    std::printf("\nbatch buckets (one copy of the weights; steps and arena per batch):\n");
    for (int64_t b : info.batch_sizes) {
      auto it = info.bucket_memory.find(b);
      const runtime::MemoryReport& m = it == info.bucket_memory.end() ? info.memory : it->second;
      std::printf("  batch %-5lld %zu steps, %s\n", static_cast<long long>(b), (*model)->executable(b).steps().size(),
                  m.ToString().c_str());
    }
  }
  std::printf("\nkernels (generated machine code): %zu\n", info.kernel_names.size());
  for (const auto& k : info.kernel_names) std::printf("  %s\n", k.c_str());
  if (ir) std::printf("\noptimized IR:\n%s\n", info.graph_text.c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"kiln: compile networks ahead of time, inspect artifacts, serve them"};
  app.require_subcommand(1);

  auto* compile = app.add_subcommand("compile", "compile a network with trained parameters into an artifact");
  std::string model_name, params, shape, out = "model.kiln", name, onnx_path;
  int opt_level = 2;
  uint64_t seed = 42;
  int64_t batch = 1;
  bool constant_params = true;
  std::string known;
  for (const auto& n : aot::ModelNames()) known += (known.empty() ? "" : "|") + n;
  auto* onnx_opt = compile->add_option("onnx", onnx_path, "an ONNX model file to compile instead of --model")
                       ->check(CLI::ExistingFile);
  auto* model_opt = compile->add_option("--model", model_name, "network to build: " + known)
                        ->check(CLI::IsMember(aot::ModelNames()))
                        ->excludes(onnx_opt);
  auto* params_opt = compile->add_option("--params", params, ".params file with the trained parameters (Gluon format)");
  params_opt->excludes(onnx_opt);
  compile->add_option("--input-shape", shape,
                      "input shape N,C,H,W; N is the batch the artifact runs (default 1,1,28,28; ONNX: the model's)")
      ->check(tools::ShapeText());
  compile->add_option("--batch", batch, "ONNX: the batch to compile for (the model's batch dim may be symbolic)")
      ->check(tools::PositiveInt())
      ->capture_default_str();
  std::vector<int64_t> buckets;
  compile->add_option("--batch-buckets", buckets,
                      "further batch sizes to compile for, e.g. 1,2,4,8,16 (with N of the input shape: the artifact's "
                      "buckets, sharing one copy of the weights; kiln-serve runs a batch on the smallest that holds it)")
      ->delimiter(',')
      ->check(tools::PositiveInt());
  compile->add_option("-o,--output", out, "artifact path")->check(tools::FolderExists())->capture_default_str();
  compile->add_option("--name", name, "model name stored in the artifact (default: --model)");
  tools::AddOptLevelFlag(*compile, &opt_level, "-O,--opt-level");

  compile->add_option("--seed", seed, "weight seed when no --params is given")->capture_default_str();
  compile->add_flag("--constant-params,!--no-constant-params", constant_params,
                    "weights are constants (default; an artifact's weights never change): batch norms fold into "
                    "their convolutions and the weights' reorders and folding run once per session (prepack steps)")
      ->capture_default_str();

  TrainFlags train;
  auto* train_opt = compile->add_flag("--train", train.train,
                                      "write a training artifact instead: forward, softmax cross-entropy loss, "
                                      "backward and the optimizer update with its state, for kiln-train (the input "
                                      "shape's N is the training batch; default 256,1,28,28)");
  train_opt->excludes(onnx_opt);
  compile->add_option("--optimizer", train.optimizer, "--train: sgd or adam (MXNet 1.9 semantics)")
      ->check(CLI::IsMember({"sgd", "adam"}))
      ->capture_default_str();
  compile->add_option("--lr", train.lr, "--train: learning rate")->check(CLI::NonNegativeNumber)->capture_default_str();
  compile->add_option("--momentum", train.momentum, "--train: SGD momentum")
      ->check(CLI::Range(0.0, 1.0))
      ->capture_default_str();
  compile->add_option("--wd", train.wd, "--train: weight decay")->check(CLI::NonNegativeNumber)->capture_default_str();
  compile->add_option("--beta1", train.beta1, "--train: Adam beta1")->check(CLI::Range(0.0, 1.0))->capture_default_str();
  compile->add_option("--beta2", train.beta2, "--train: Adam beta2")->check(CLI::Range(0.0, 1.0))->capture_default_str();
  compile->add_option("--eval-batch", train.eval_batch,
                      "--train: batch of the eval program (the forward pass in inference mode; 0 = the training "
                      "batch, -1 = none)")
      ->check(CLI::Range(int64_t{-1}, int64_t{1} << 20))
      ->capture_default_str();

  auto* export_onnx = app.add_subcommand("export-onnx", "write a network with trained parameters as an ONNX model");
  std::string ex_model, ex_params, ex_shape, ex_out = "model.onnx";
  uint64_t ex_seed = 42;
  bool ex_static = false;
  export_onnx->add_option("--model", ex_model, "network to build: " + known)
      ->required()
      ->check(CLI::IsMember(aot::ModelNames()));
  export_onnx->add_option("--params", ex_params, ".params file with the trained parameters (Gluon format)");
  export_onnx->add_option("--input-shape", ex_shape, "input shape N,C,H,W (default 1,1,28,28)")->check(tools::ShapeText());
  export_onnx->add_option("-o,--output", ex_out, "ONNX file")->check(tools::FolderExists())->capture_default_str();
  export_onnx->add_option("--seed", ex_seed, "weight seed when no --params is given")->capture_default_str();
  export_onnx->add_flag("--static-batch", ex_static, "write the batch dim as fixed (default: symbolic N)");

  auto* inspect = app.add_subcommand("inspect", "print an artifact's signatures, steps, fused nodes and memory");
  std::string inspect_path;
  bool ir = false, attrs = false;
  inspect->add_option("artifact", inspect_path, "the .kiln file")->required();
  inspect->add_flag("--ir", ir, "also print the optimized IR");
  inspect->add_flag("--attrs", attrs, "also print every step's attributes");

  auto* serve = app.add_subcommand("serve", "serve an artifact over KServe v2 HTTP/JSON (see kiln-serve)");
  std::string serve_path, serve_repository;
  serve::ServerOptions serve_options;
  serve::AddServeSource(*serve, serve_path, serve_repository);
  serve::AddServeFlags(*serve, serve_options);

  if (int code = tools::ParseFlags(app, argc, argv); code >= 0) return code;
  if (*compile) {
    if (!onnx_path.empty()) {
      return CompileOnnx(onnx_path, batch, shape, out, name, opt_level, constant_params, buckets);
    }
    if (model_opt->count() == 0) {
      std::fprintf(stderr, "kiln compile: give --model NAME or an ONNX file (kiln compile model.onnx)\n");
      return 2;
    }
    if (train.train) {
      if (!buckets.empty()) {
        std::fprintf(stderr, "kiln compile: --batch-buckets does not apply to --train\n");
        return 2;
      }
      return CompileTraining(model_name, params, shape, out, name, opt_level, seed, train);
    }
    return Compile(model_name, params, shape, out, name, opt_level, seed, constant_params, buckets);
  }
  if (*inspect) return Inspect(inspect_path, ir, attrs);
  if (*export_onnx) return ExportOnnxFile(ex_model, ex_params, ex_shape, ex_out, ex_seed, ex_static);
  return serve::ServeUntilSignal(serve_path, serve_options, serve_repository);
}
