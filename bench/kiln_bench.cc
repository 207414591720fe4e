// kiln_bench: times compiled training steps and inference passes of the benchmark models
// (LeNet-5 on 1x28x28, VGG-11 on 3xHxW) at a chosen optimization level, on random data.
//
//   bazel run -c opt //bench:kiln_bench -- --model lenet --mode train --batch 256 --opt 2
//
// Prints one line per case: median seconds per run over --iters runs (after --warmup runs),
// images/s, and with --profile the time per step kind. Timings exclude data loading and
// compilation (compile time is printed separately). Threads: oneDNN's OpenMP pool
// (OMP_NUM_THREADS). Exit codes (tools/flags.h): 1 when a run fails, 2 for a bad flag.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <map>
#include <random>
#include <string>
#include <tuple>
#include <vector>

#include <CLI/CLI.hpp>

#include "bench/models.h"
#include "codegen/llvm/kernel_llvm.h"
#include "graph/nn.h"
#include "graph/trainer.h"
#include "import/onnx_import.h"
#include "tools/flags.h"

namespace kiln {
namespace {

Tensor RandomTensor(const Shape& shape, std::mt19937& rng) {
  Tensor t(DType::kF32, shape);
  std::uniform_real_distribution<float> u(0.f, 1.f);
  for (int64_t i = 0; i < t.num_elements(); ++i) t.f32()[i] = u(rng);
  return t;
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// Floating-point operations of one run in its convolutions and dense layers (2 per
// multiply-add; forward, backward-data and backward-weights alike), from the steps' shapes:
// MACs = elements of the output-side activation (dst, or diff_dst) * the weight's
// elements per output channel. Everything else (batch norm, pooling, elementwise) is left
// out, as in the usual model FLOP counts (e.g. torchvision's "GFLOPS").
double ConvDenseFlops(const runtime::Executable& exe) {
  double flops = 0;
  for (const auto& step : exe.steps()) {
    const runtime::StepDesc& d = step->desc();
    const Shape* act = nullptr;
    const Shape* w = nullptr;
    if (d.kind == "conv2d" || d.kind == "dense") {
      act = &d.outputs[0].dims;
      w = &d.inputs[1].dims;
    } else if (d.kind == "conv2d_backward_data" || d.kind == "dense_backward_data") {
      act = &d.inputs[0].dims;
      w = &d.inputs[1].dims;
    } else if (d.kind == "conv2d_backward_weights" || d.kind == "dense_backward_weights") {
      act = &d.inputs[1].dims;
      w = &d.outputs[0].dims;
    }
    if (act == nullptr || w->empty()) continue;
    double per_output = static_cast<double>(NumElements(*w)) / static_cast<double>((*w)[0]);
    flops += 2.0 * static_cast<double>(NumElements(*act)) * per_output;
  }
  return flops;
}

int Main(int argc, char** argv) {
  const std::string program = "kiln_bench";
  CLI::App app{"kiln_bench: time compiled training steps and inference"};
  tools::ModelFlags f;
  f.batch = 256;
  int iters = 20, warmup = 3;
  bool profile = false;
  tools::AddModelFlags(app, &f, graph::zoo::ModelNames());
  app.add_option("--iters", iters, "timed runs")->check(tools::PositiveInt())->capture_default_str();
  app.add_option("--warmup", warmup, "untimed runs first (the first compiles)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  app.add_flag("--profile", profile, "print the time per step kind");
  bool frozen = false;
  app.add_flag("--frozen", frozen, "inference with constant parameters (weights reordered once)");
  bool fuse_elementwise = false, llvm = false;
  std::string optimizer = "sgd";
  app.add_flag("--fuse-elementwise", fuse_elementwise,
               "elementwise-fusion pass; lower with LLVM JIT steps (implies --llvm)");
  app.add_flag("--llvm", llvm, "lower with LLVM JIT steps (fused kernels, optimizer updates)");
  app.add_option("--optimizer", optimizer, "sgd (momentum 0.9) | adam")->check(CLI::IsMember({"sgd", "adam"}));
  bool profile_steps = false;
  app.add_flag("--profile-steps", profile_steps, "with --profile: also the time of every step and its operands");
  int streams = 1;
  app.add_option("--streams", streams, "run the batch as this many concurrent sub-batches (throughput mode)")
      ->check(tools::PositiveInt());
  bool no_resident = false;
  app.add_flag("--no-resident", no_resident,
               "training: reorder weights every step instead of keeping them in the steps' layouts");
  std::string onnx_path;
  app.add_option("--onnx", onnx_path,
                 "an ONNX file to benchmark instead of --model (import/onnx_import.h; its batch dim must be "
                 "symbolic or equal --batch)")
      ->check(CLI::ExistingFile);
  if (int code = tools::ParseFlags(app, argc, argv); code >= 0) return code;
  const std::string model = onnx_path.empty() ? f.model : "onnx:" + onnx_path;
  const std::string& mode = f.mode;
  const int64_t batch = f.batch;
  const int opt = f.opt;

  graph::Seed(1);
  std::shared_ptr<graph::nn::Block> net;
  Shape shape;
  if (onnx_path.empty()) {
    std::tie(net, shape) = bench::MakeModel(model, batch, f.image, f.fc, f.channels);
  } else {
    auto t0 = std::chrono::steady_clock::now();
    auto imported = onnx_import::ImportOnnxFile(onnx_path);
    if (!imported.ok()) return tools::Failure(program, imported.status());
    std::printf("imported %s (opset %d, %zu nodes) in %.3f s\n", onnx_path.c_str(), (*imported)->model_opset(),
                (*imported)->nodes().size(),
                std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    auto s = (*imported)->InputShapeForBatch(batch);
    if (!s.ok()) return tools::Failure(program, s.status());
    net = *imported;
    shape = *s;
  }
  if (Status s = net->Initialize(graph::Xavier()); !s.ok()) return tools::Failure(program, s);
  std::mt19937 rng(7);
  Tensor data = RandomTensor(shape, rng);
  Tensor label(DType::kS32, {batch});
  for (int64_t i = 0; i < batch; ++i) label.s32()[i] = static_cast<int32_t>(i % 10);
  Tensor loss, output;

  graph::CompileOptions options;
  options.opt_level = opt;
  options.constant_params = frozen;
  options.fuse_elementwise = fuse_elementwise;
  options.resident_params = !no_resident;
  options.streams = streams;
  options.check_numerics = f.check_numerics;
  options.llvm_kernels = llvm;  // the CPU target then lowers with its LLVM JIT steps
  graph::Trainer trainer = optimizer == "adam"
                               ? graph::Trainer(*net, "adam", {{"learning_rate", 0.001}})
                               : graph::Trainer(*net, "sgd", {{"learning_rate", 0.01}, {"momentum", 0.9}});
  codegen::llvm_gen::CpuKernelCache::Global().ResetStats();
  std::unique_ptr<graph::TrainStep> train;
  std::unique_ptr<graph::Predictor> infer;
  auto run_once = [&]() -> Status {
    if (mode == "train") return train->Run(data, label, batch, &loss, &output);
    return infer->Forward(data, &output);
  };
  auto t0 = std::chrono::steady_clock::now();
  if (mode == "train") {
    train = std::make_unique<graph::TrainStep>(*net, graph::SoftmaxCrossEntropyLoss(), trainer, options);
  } else {
    // Parameter shapes are deferred: one forward pass infers them.
    infer = std::make_unique<graph::Predictor>(*net, options);
  }
  if (Status s = run_once(); !s.ok()) return tools::Failure(program, s);
  double first = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  for (int i = 1; i < warmup; ++i) {
    if (Status s = run_once(); !s.ok()) return tools::Failure(program, s);
  }
  runtime::Session* session = mode == "train" ? train->last_session() : infer->last_session();
  session->SetProfiling(profile);
  std::vector<double> times;
  for (int i = 0; i < iters; ++i) {
    auto s0 = std::chrono::steady_clock::now();
    if (Status s = run_once(); !s.ok()) return tools::Failure(program, s);
    times.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - s0).count());
  }
  double med = Median(times);
  const runtime::Executable& exe = session->executable();
  std::printf("%s %s%s%s%s%s batch=%lld image=%lld -O%d: median %.6f s/run, %.0f images/s, %zu steps, arena %lld bytes, "
              "first run (compile+run) %.3f s\n",
              model.c_str(), mode.c_str(), frozen ? " frozen" : "", f.check_numerics ? " check_numerics" : "",
              mode == "train" && !exe.writeback_steps().empty() ? " resident" : "",
              (mode == "infer" ? infer->last_streams() : train->last_streams()) > 1
                  ? (" streams=" + std::to_string(mode == "infer" ? infer->last_streams() : train->last_streams())).c_str()
                  : "",
              static_cast<long long>(batch), static_cast<long long>(shape[2]), opt, med,
              static_cast<double>(batch) / med, exe.steps().size(), static_cast<long long>(exe.arena_bytes()), first);
  const double flops = ConvDenseFlops(exe);
  if ((mode == "infer" ? infer->last_streams() : train->last_streams()) == 1) std::printf("  compute: %.3f GFLOP/run in convolutions and dense layers, %.1f GFLOP/s\n", flops / 1e9,
              flops / med / 1e9);
  const codegen::LowerStats& stats = mode == "train" ? train->last_compile_stats() : infer->last_compile_stats();
  std::printf("  memory: %s\n", stats.memory.ToString().c_str());
  if (streams > 1) {
    const std::string& note = mode == "infer" ? infer->streams_note() : train->streams_note();
    std::printf("  streams: %d%s%s\n", mode == "infer" ? infer->last_streams() : train->last_streams(),
                note.empty() ? "" : ": ", note.c_str());
  }
  if (options.fuse_elementwise || options.llvm_kernels) {
    auto k = codegen::llvm_gen::CpuKernelCache::Global().stats();
    std::printf("  llvm kernels: %lld compiled in %.3f s, %lld cache hits, hit rate %.1f%%, optimizer %s\n",
                static_cast<long long>(k.misses), k.compile_seconds, static_cast<long long>(k.hits), 100 * k.HitRate(),
                optimizer.c_str());
  }
  if (profile) {
    std::map<std::string, double> by_kind;
    double total = 0;
    for (size_t i = 0; i < exe.steps().size(); ++i) {
      by_kind[exe.steps()[i]->desc().kind] += session->step_seconds()[i];
      total += session->step_seconds()[i];
    }
    std::vector<std::pair<double, std::string>> rows;
    for (auto& [k, s] : by_kind) rows.emplace_back(s, k);
    std::sort(rows.rbegin(), rows.rend());
    for (auto& [s, k] : rows) {
      std::printf("  %-28s %9.1f us/run  %5.1f%%\n", k.c_str(), s / iters * 1e6, 100 * s / total);
    }
    if (profile_steps) {
      for (size_t i = 0; i < exe.steps().size(); ++i) {
        const runtime::StepDesc& d = exe.steps()[i]->desc();
        std::string operands;
        for (const auto* refs : {&d.inputs, &d.outputs}) {
          for (const auto& r : *refs) operands += " " + ShapeToString(r.dims) + (r.dense() ? "" : ":" + r.layout);
          if (refs == &d.inputs) operands += " ->";
        }
        std::printf("    %3zu %9.1f us  %s%s\n", i, session->step_seconds()[i] / iters * 1e6, d.Where().c_str(),
                    operands.c_str());
      }
    }
    // Steps timed one by one vs the whole run: what the runtime adds around the kernels.
    double mean_run = 0;
    for (double t : times) mean_run += t;
    mean_run /= static_cast<double>(times.size());
    std::printf("  steps sum %.6f s/run, whole run (mean) %.6f s/run: runtime overhead %.1f%%\n", total / iters,
                mean_run, 100 * (mean_run - total / iters) / mean_run);
  }
  return 0;
}

}  // namespace
}  // namespace kiln

int main(int argc, char** argv) { return kiln::Main(argc, argv); }
