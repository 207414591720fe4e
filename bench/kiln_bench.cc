// kiln_bench: times compiled training steps and inference passes of the benchmark models
// (LeNet-5 on 1x28x28, VGG-11 on 3xHxW) at a chosen optimization level, on random data.
//
//   bazel run -c opt //bench:kiln_bench -- --model lenet --mode train --batch 256 --opt 2
//
// Prints one line per case: median seconds per run over --iters runs (after --warmup runs),
// images/s, and with --profile the time per step kind. Timings exclude data loading and
// compilation (compile time is printed separately). Threads: oneDNN's OpenMP pool
// (OMP_NUM_THREADS).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <map>
#include <random>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "examples/lenet_model.h"
#include "graph/nn.h"
#include "graph/trainer.h"

namespace kiln {
namespace {

using graph::nn::Conv2D;
using graph::nn::Conv2DOptions;
using graph::nn::Dense;
using graph::nn::DenseOptions;
using graph::nn::Make;

// VGG-11 (configuration "A" of Simonyan & Zisserman 2015): conv3x3 pad 1 stacks
// (1,64),(1,128),(2,256),(2,512),(2,512) each followed by 2x2 max pooling, then
// Dense(fc, relu), Dense(fc, relu), Dense(classes).
std::shared_ptr<graph::nn::Sequential> MakeVgg11(int64_t fc, int64_t classes) {
  auto net = std::make_shared<graph::nn::Sequential>();
  const std::vector<std::pair<int, int64_t>> arch{{1, 64}, {1, 128}, {2, 256}, {2, 512}, {2, 512}};
  for (auto [convs, channels] : arch) {
    for (int i = 0; i < convs; ++i) {
      net->Add(Make<Conv2D>(channels, 3, Conv2DOptions{.padding = {1, 1}, .activation = "relu"}));
    }
    net->Add(Make<graph::nn::MaxPool2D>(2, 2));
  }
  net->Add(Make<graph::nn::Flatten>());
  net->Add(Make<Dense>(fc, DenseOptions{.activation = "relu"}));
  net->Add(Make<Dense>(fc, DenseOptions{.activation = "relu"}));
  net->Add(Make<Dense>(classes));
  return net;
}

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

int Main(int argc, char** argv) {
  CLI::App app{"kiln_bench: time compiled training steps and inference"};
  std::string model = "lenet", mode = "train";
  int64_t batch = 256, image = 0, fc = 4096;
  int opt = 2, iters = 20, warmup = 3;
  bool profile = false;
  app.add_option("--model", model, "lenet | vgg11")->check(CLI::IsMember({"lenet", "vgg11"}));
  app.add_option("--mode", mode, "train | infer")->check(CLI::IsMember({"train", "infer"}));
  app.add_option("--batch", batch, "batch size N");
  app.add_option("--image", image, "input height = width (default 28 for lenet, 224 for vgg11)");
  app.add_option("--fc", fc, "VGG fully connected width");
  app.add_option("--opt", opt, "optimization level 0, 1 or 2")->check(CLI::Range(0, 2));
  app.add_option("--iters", iters, "timed runs");
  app.add_option("--warmup", warmup, "untimed runs first");
  app.add_flag("--profile", profile, "print the time per step kind");
  CLI11_PARSE(app, argc, argv);

  graph::Seed(1);
  std::shared_ptr<graph::nn::Sequential> net;
  Shape shape;
  if (model == "lenet") {
    net = examples::MakeLeNet();
    shape = {batch, 1, image ? image : 28, image ? image : 28};
  } else {
    net = MakeVgg11(fc, 10);
    shape = {batch, 3, image ? image : 224, image ? image : 224};
  }
  if (Status s = net->Initialize(graph::Xavier()); !s.ok()) {
    std::fprintf(stderr, "%s\n", s.ToString().c_str());
    return 1;
  }
  std::mt19937 rng(7);
  Tensor data = RandomTensor(shape, rng);
  Tensor label(DType::kS32, {batch});
  for (int64_t i = 0; i < batch; ++i) label.s32()[i] = static_cast<int32_t>(i % 10);
  Tensor loss, output;

  graph::CompileOptions options;
  options.opt_level = opt;
  graph::Trainer trainer(*net, "sgd", {{"learning_rate", 0.01}, {"momentum", 0.9}});
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
  if (Status s = run_once(); !s.ok()) {
    std::fprintf(stderr, "%s\n", s.ToString().c_str());
    return 1;
  }
  double first = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  for (int i = 1; i < warmup; ++i) (void)run_once();
  runtime::Session* session = mode == "train" ? train->last_session() : infer->last_session();
  session->SetProfiling(profile);
  std::vector<double> times;
  for (int i = 0; i < iters; ++i) {
    auto s0 = std::chrono::steady_clock::now();
    if (Status s = run_once(); !s.ok()) {
      std::fprintf(stderr, "%s\n", s.ToString().c_str());
      return 1;
    }
    times.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - s0).count());
  }
  double med = Median(times);
  const runtime::Executable& exe = session->executable();
  std::printf("%s %s batch=%lld image=%lld -O%d: median %.6f s/run, %.0f images/s, %zu steps, arena %lld bytes, "
              "first run (compile+run) %.3f s\n",
              model.c_str(), mode.c_str(), static_cast<long long>(batch), static_cast<long long>(shape[2]), opt, med,
              static_cast<double>(batch) / med, exe.steps().size(), static_cast<long long>(exe.arena_bytes()), first);
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
  }
  return 0;
}

}  // namespace
}  // namespace kiln

int main(int argc, char** argv) { return kiln::Main(argc, argv); }
