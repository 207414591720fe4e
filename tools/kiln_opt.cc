// kiln_opt: compile a benchmark model at an optimization level and show what the compiler
// did: the IR after any pass, the step program after any lowering pass, Graphviz DOT of any
// stage (IR after a pass, or the lowered steps with layouts and arena offsets), and the
// memory report.
//
//   bazel run -c opt //tools:kiln_opt -- --model lenet --mode train --batch 256 -O 2 --report
//   bazel run -c opt //tools:kiln_opt -- --model lenet --mode infer --dump-ir-after fuse_activation
//   bazel run -c opt //tools:kiln_opt -- --model vgg11 --mode train --batch 64 --image 32 --dot /tmp/vgg.dot
//   bazel run -c opt //tools:kiln_opt -- --model lenet --mode infer --batch 2 --print-program-after all
//
// The report (also CompileOptions / LowerStats::memory in the API): peak arena bytes, the
// naive total (every tensor its own buffer) and the lower bound (largest set of tensors
// live at one step), the number of steps, in-place outputs and reorders.
#include <cstdio>
#include <fstream>
#include <iostream>
#include <string>

#include <CLI/CLI.hpp>

#include "bench/models.h"
#include "codegen/dot.h"
#include "graph/trainer.h"
#include "passes/pipeline.h"

namespace kiln {
namespace {

int Main(int argc, char** argv) {
  CLI::App app{"kiln_opt: compile a model and show the IR, DOT and memory report"};
  std::string model = "lenet", mode = "train", dump_after, dot_path, dot_stage = "steps", program_after;
  int64_t batch = 64, image = 0, fc = 4096, channels = 0;
  int opt = 2;
  bool report = false;
  app.add_option("--model", model, "lenet | vgg11")->check(CLI::IsMember({"lenet", "vgg11"}));
  app.add_option("--mode", mode, "train (forward, loss, backward, SGD) | infer")
      ->check(CLI::IsMember({"train", "infer"}));
  app.add_option("--batch", batch, "batch size N");
  app.add_option("--image", image, "input height = width (default 28 for lenet, 224 for vgg11)");
  app.add_option("--fc", fc, "VGG fully connected width");
  app.add_option("--channels", channels, "input channels C (default 1 for lenet, 3 for vgg11)");
  app.add_option("-O,--opt", opt, "optimization level 0, 1 or 2")->check(CLI::Range(0, 2));
  app.add_option("--dump-ir-after", dump_after, "print the IR after this pass (or 'all') to stdout");
  app.add_option("--dot", dot_path, "write a Graphviz DOT file of --dot-stage");
  app.add_option("--dot-stage", dot_stage, "'steps' (the lowered executable) or a pass name (the IR after it)");
  app.add_flag("--report", report, "print the memory report");
  app.add_option("--print-program-after", program_after,
                 "print the step program after this lowering pass (select_steps, assign_layouts, group_updates, "
                 "plan_buffers, or 'all') to stdout");
  CLI11_PARSE(app, argc, argv);

  graph::Seed(1);
  auto [net, shape] = bench::MakeModel(model, batch, image, fc, channels);
  if (Status s = net->Initialize(graph::Xavier()); !s.ok()) {
    std::fprintf(stderr, "%s\n", s.ToString().c_str());
    return 1;
  }
  graph::CompileOptions options;
  options.opt_level = opt;
  options.dump_ir_after = dump_after;
  options.dump = &std::cout;
  bool dot_written = false, program_printed = false;
  if (!program_after.empty()) {
    options.after_lowering_pass = [&](std::string_view pass, const runtime::StepProgram& p) {
      if (program_after != "all" && pass != program_after) return;
      std::cout << "--- step program after " << pass << " ---\n" << runtime::PrintStepProgram(p);
      program_printed = true;
    };
  }
  if (!dot_path.empty() && dot_stage != "steps") {
    options.after_pass = [&](std::string_view pass, const ir::Graph& g) {
      if (pass != dot_stage || dot_written) return;
      std::ofstream(dot_path) << codegen::GraphToDot(g);
      dot_written = true;
    };
  }
  Tensor data(DType::kF32, shape), label(DType::kS32, {batch}), loss, output;
  graph::Trainer trainer(*net, "sgd", {{"learning_rate", 0.01}, {"momentum", 0.9}});
  graph::TrainStep train(*net, graph::SoftmaxCrossEntropyLoss(), trainer, options);
  graph::Predictor infer(*net, options);
  Status s = mode == "train" ? train.Run(data, label, batch, &loss, &output) : infer.Forward(data, &output);
  if (!s.ok()) {
    std::fprintf(stderr, "%s\n", s.ToString().c_str());
    return 1;
  }
  runtime::Session* session = mode == "train" ? train.last_session() : infer.last_session();
  const codegen::LowerStats& stats = mode == "train" ? train.last_compile_stats() : infer.last_compile_stats();
  if (!dot_path.empty()) {
    if (dot_stage == "steps") {
      std::ofstream(dot_path) << codegen::ExecutableToDot(session->executable());
      dot_written = true;
    }
    if (!dot_written) {
      std::fprintf(stderr, "no pass named '%s' ran; passes at -O%d:", dot_stage.c_str(), opt);
      for (const auto& p : passes::OptimizationPassNames(opt)) std::fprintf(stderr, " %s", p.c_str());
      std::fprintf(stderr, "\n");
      return 1;
    }
  }
  if (!program_after.empty() && !program_printed) {
    std::fprintf(stderr, "no lowering pass named '%s' ran; lowering passes:", program_after.c_str());
    for (const auto& p : codegen::LoweringPassNames({.group_updates = opt >= 2})) std::fprintf(stderr, " %s", p.c_str());
    std::fprintf(stderr, "\n");
    return 2;
  }
  if (report) {
    std::printf("%s %s %s -O%d: %d steps, compile %.3f s\n  %s\n", model.c_str(), mode.c_str(),
                ShapeToString(shape).c_str(), opt, stats.num_steps, stats.compile_seconds,
                stats.memory.ToString().c_str());
    std::printf("  arena_bytes=%lld naive_bytes=%lld lower_bound_bytes=%lld\n",
                static_cast<long long>(stats.memory.arena_bytes), static_cast<long long>(stats.memory.naive_bytes),
                static_cast<long long>(stats.memory.lower_bound_bytes));
  }
  return 0;
}

}  // namespace
}  // namespace kiln

int main(int argc, char** argv) { return kiln::Main(argc, argv); }
