// The user-defined block tutorial: lazy parameters, one step, gradients that match the update.
#include <catch2/catch.hpp>

#include <random>

#include "examples/custom_block.h"
#include "graph/trainer.h"

namespace kiln::graph {

TEST_CASE("a user-defined block initializes lazily and trains one step", "[examples][block]") {
  Seed(3);
  examples::CustomNet net;
  REQUIRE(net.Initialize(Xavier()).ok());
  auto params = net.CollectParams();
  REQUIRE(params.size() == 10);
  CHECK(params[0].first == "conv1.bias");
  auto early = net.conv1()->weight()->Data();
  REQUIRE_FALSE(early.ok());
  CHECK(early.status().code() == StatusCode::kFailedPrecondition);
  CHECK_THAT(early.status().message(), Catch::Contains("conv1.weight") && Catch::Contains("deferred"));

  const double lr = 0.05;
  Trainer trainer(net, "sgd", {{"learning_rate", lr}});
  TrainStep step(net, SoftmaxCrossEntropyLoss(), trainer, CompileOptions{.output_gradients = true});
  Tensor x(DType::kF32, {10, 1, 32, 32}), label(DType::kS32, {10}), loss, out;
  std::mt19937 rng(1);
  std::normal_distribution<float> normal;
  for (int64_t i = 0; i < x.num_elements(); ++i) x.f32()[i] = normal(rng);
  for (int i = 0; i < 10; ++i) label.s32()[i] = i;
  // Run once to materialize the parameters, snapshot them, then run the step we check.
  REQUIRE(step.Run(x, label, 10, &loss, &out).ok());
  std::map<std::string, Tensor> before;
  for (auto& [name, p] : net.CollectParams()) before[name] = **p->Data();
  REQUIRE(step.Run(x, label, 10, &loss, &out).ok());
  CHECK(out.shape() == Shape{10, 10});
  CHECK((*net.conv1()->weight()->Data())->shape() == Shape{6, 1, 5, 5});
  for (auto& [name, p] : net.CollectParams()) {
    const Tensor* g = step.Gradient(name);
    REQUIRE(g != nullptr);
    REQUIRE(g->shape() == p->shape());
    // Plain SGD: w' = w - lr * g / batch_size, element by element.
    const Tensor& w0 = before.at(name);
    const Tensor& w1 = **p->Data();
    double gnorm = 0;
    for (int64_t i = 0; i < g->num_elements(); ++i) {
      float want = w0.f32()[i] - static_cast<float>(lr / 10.0) * g->f32()[i];
      INFO(name << "[" << i << "]");
      REQUIRE(std::abs(w1.f32()[i] - want) <= 1e-6f * std::max(1.f, std::abs(want)));
      gnorm += std::abs(g->f32()[i]);
    }
    INFO(name);
    CHECK(gnorm > 0);
  }
}

}  // namespace kiln::graph
