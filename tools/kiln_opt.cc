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
//
// Exit codes (tools/flags.h): 0, 1 when the model does not compile or a file cannot be
// written, 2 for a usage error (a bad flag value; a pass name no pass of the compile had).
#include <cstdio>
#include <fstream>
#include <iostream>
#include <string>

#include <CLI/CLI.hpp>

#include "bench/models.h"
#include "codegen/dot.h"
#include "graph/trainer.h"
#include "passes/pipeline.h"
#include "tools/flags.h"

namespace kiln {
namespace {

int Main(int argc, char** argv) {
  const std::string program = "kiln_opt";
  CLI::App app{"kiln_opt: compile a model and show the IR, DOT and memory report"};
  tools::ModelFlags f;
  std::string dump_after, dot_path, dot_stage = "steps", program_after;
  bool report = false;
  tools::AddModelFlags(app, &f);
  app.add_option("--dump-ir-after", dump_after, "print the IR after this pass (or 'all') to stdout");
  app.add_option("--dot", dot_path, "write a Graphviz DOT file of --dot-stage")->check(tools::FolderExists());
  app.add_option("--dot-stage", dot_stage, "'steps' (the lowered executable) or a pass name (the IR after it)")
      ->capture_default_str();
  app.add_flag("--report", report, "print the memory report");
  app.add_option("--print-program-after", program_after,
                 "print the step program after this lowering pass (select_steps, assign_layouts, group_updates, "
                 "plan_buffers, or 'all') to stdout");
  if (int code = tools::ParseFlags(app, argc, argv); code >= 0) return code;

  graph::Seed(1);
  auto [net, shape] = bench::MakeModel(f.model, f.batch, f.image, f.fc, f.channels);
  if (Status s = net->Initialize(graph::Xavier()); !s.ok()) return tools::Failure(program, s);
  graph::CompileOptions options;
  options.opt_level = f.opt;
  options.check_numerics = f.check_numerics;
  options.dump_ir_after = dump_after;
  options.dump = &std::cout;
  std::vector<std::string> passes_ran, lowering_ran;
  std::string dot_text;
  options.after_lowering_pass = [&](std::string_view pass, const runtime::StepProgram& p) {
    lowering_ran.emplace_back(pass);
    if (program_after.empty() || (program_after != "all" && pass != program_after)) return;
    std::cout << "--- step program after " << pass << " ---\n" << runtime::PrintStepProgram(p);
  };
  options.after_pass = [&](std::string_view pass, const ir::Graph& g) {
    passes_ran.emplace_back(pass);
    if (!dot_path.empty() && pass == dot_stage && dot_text.empty()) dot_text = codegen::GraphToDot(g);
  };
  Tensor data(DType::kF32, shape), label(DType::kS32, {f.batch}), loss, output;
  graph::Trainer trainer(*net, "sgd", {{"learning_rate", 0.01}, {"momentum", 0.9}});
  graph::TrainStep train(*net, graph::SoftmaxCrossEntropyLoss(), trainer, options);
  graph::Predictor infer(*net, options);
  Status s = f.mode == "train" ? train.Run(data, label, f.batch, &loss, &output) : infer.Forward(data, &output);
  if (!s.ok()) return tools::Failure(program, s);
  // Names that named nothing are usage errors (they printed nothing).
  if (int code = tools::CheckPassName(program, "--dump-ir-after", dump_after, passes_ran, true); code >= 0) return code;
  if (int code = tools::CheckPassName(program, "--print-program-after", program_after, lowering_ran, true); code >= 0) {
    return code;
  }
  if (!dot_path.empty() && dot_stage != "steps") {
    if (int code = tools::CheckPassName(program, "--dot-stage", dot_stage, passes_ran, false); code >= 0) return code;
  }
  runtime::Session* session = f.mode == "train" ? train.last_session() : infer.last_session();
  const codegen::LowerStats& stats = f.mode == "train" ? train.last_compile_stats() : infer.last_compile_stats();
  if (!dot_path.empty()) {
    if (dot_stage == "steps") dot_text = codegen::ExecutableToDot(session->executable());
    std::ofstream out(dot_path);
    out << dot_text;
    out.close();
    if (!out) return tools::Failure(program, InvalidArgument("cannot write --dot '" + dot_path + "'"));
  }
  if (report) {
    std::printf("%s %s %s -O%d: %d steps, compile %.3f s\n  %s\n", f.model.c_str(), f.mode.c_str(),
                ShapeToString(shape).c_str(), f.opt, stats.num_steps, stats.compile_seconds,
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
