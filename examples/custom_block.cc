// A user-defined block (Gluon tutorial): lazy initialization, one training step on a dummy
// 10x1x32x32 batch, and the gradients.
//   bazel run -c opt //examples:custom_block
#include <cstdio>
#include <random>

#include "examples/custom_block.h"
#include "graph/trainer.h"

using namespace kiln;
using namespace kiln::graph;

int main() {
  Seed(0);
  examples::CustomNet net;
  if (Status s = net.Initialize(Xavier()); !s.ok()) return 1;
  net.CollectParams();
  // As in Gluon, the weight's in_channels is unknown until the first forward pass.
  auto early = net.conv1()->weight()->Data();
  std::printf("before the first forward pass: %s\n", early.status().ToString().c_str());

  Trainer trainer(net, "sgd", {{"learning_rate", 0.01}});
  TrainStep step(net, SoftmaxCrossEntropyLoss(), trainer, CompileOptions{.output_gradients = true});
  Tensor x(DType::kF32, {10, 1, 32, 32}), label(DType::kS32, {10}), loss, out;
  std::mt19937 rng(1);
  std::normal_distribution<float> normal;
  for (int64_t i = 0; i < x.num_elements(); ++i) x.f32()[i] = normal(rng);
  for (int i = 0; i < 10; ++i) label.s32()[i] = i;
  if (Status s = step.Run(x, label, 10, &loss, &out); !s.ok()) {
    std::fprintf(stderr, "error: %s\n", s.ToString().c_str());
    return 1;
  }
  double mean = 0;
  for (int i = 0; i < 10; ++i) mean += loss.f32()[i] / 10;
  std::printf("one step on a dummy batch: mean loss %.4f, output %s\n", mean, ShapeToString(out.shape()).c_str());
  for (auto& [name, p] : net.CollectParams()) {
    const Tensor* g = step.Gradient(name);
    if (!g) return 1;
    double norm = 0;
    for (int64_t i = 0; i < g->num_elements(); ++i) norm += static_cast<double>(g->f32()[i]) * g->f32()[i];
    std::printf("  %-12s grad %-16s |grad| %.5f  first %.6f\n", name.c_str(), ShapeToString(g->shape()).c_str(),
                std::sqrt(norm), static_cast<double>(g->f32()[0]));
  }
  return 0;
}
