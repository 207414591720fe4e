// Adam (MXNet 1.9 semantics, GLUON_SEMANTICS.md section 4) through graph::Trainer: the
// bias-corrected lr_t, the compiled LeNet training step with Adam against the reference
// interpreter over several steps, and a short run whose loss falls.
#include <catch2/catch.hpp>

#include <cmath>
#include <random>

#include "examples/lenet_model.h"
#include "graph/trainer.h"
#include "ir/interpreter.h"
#include "passes/autodiff.h"
#include "passes/pass.h"
#include "tests/ir/grad_check.h"

namespace kiln::graph {
namespace {

TEST_CASE("Trainer(\"adam\") options, lr_t and errors", "[graph][adam]") {
  auto net = examples::MakeLeNet();
  REQUIRE(net->Initialize(Xavier()).ok());
  Trainer t(*net, "adam", {{"learning_rate", 0.01}, {"beta1", 0.8}, {"beta2", 0.99}, {"epsilon", 1e-6}, {"wd", 0.1}});
  REQUIRE(t.status().ok());
  CHECK(t.optimizer() == "adam");
  CHECK(t.adam().beta1 == 0.8);
  CHECK(t.adam().beta2 == 0.99);
  CHECK(t.adam().epsilon == 1e-6);
  CHECK(t.adam().wd == 0.1);
  // lr_t = lr * sqrt(1 - beta2^t) / (1 - beta1^t), t = 1, 2, 3.
  for (int step = 1; step <= 3; ++step) {
    CHECK(t.num_update() == step - 1);
    CHECK(t.NextStepLearningRate() ==
          Approx(0.01 * std::sqrt(1 - std::pow(0.99, step)) / (1 - std::pow(0.8, step))).epsilon(1e-12));
    t.CountStep();
  }
  Trainer d(*net, "adam", {});
  CHECK(d.learning_rate() == 0.001);  // MXNet Adam default
  CHECK(d.adam().beta1 == 0.9);
  CHECK(d.adam().beta2 == 0.999);
  CHECK(d.adam().epsilon == 1e-8);
  Trainer sgd(*net, "sgd", {{"learning_rate", 0.1}});
  sgd.CountStep();
  CHECK(sgd.NextStepLearningRate() == 0.1);  // no bias correction for SGD
  CHECK_THAT(Trainer(*net, "adam", {{"momentum", 0.9}}).status().message(), Catch::Contains("momentum"));
  CHECK_THAT(Trainer(*net, "sgd", {{"beta1", 0.9}}).status().message(), Catch::Contains("beta1"));
  CHECK_THAT(Trainer(*net, "rmsprop", {}).status().message(), Catch::Contains("rmsprop"));
}

TEST_CASE("compiled LeNet Adam steps match the reference interpreter", "[graph][adam][codegen]") {
  const int64_t batch = 3;
  const int steps = 3;
  Seed(21);
  auto net = examples::MakeLeNet();
  REQUIRE(net->Initialize(Xavier()).ok());
  net->CollectParams();
  // The reference: the same network traced, with BuildTrainingGraph's Adam updates.
  Tracer tr("lenet");
  Sym x = tr.Input("data", DType::kF32, {batch, 1, 28, 28});
  Sym label = tr.Input("label", DType::kS32, {batch});
  auto out = net->Forward(x);
  REQUIRE(out.ok());
  auto loss = SoftmaxCrossEntropyLoss()(*out, label);
  REQUIRE(loss.ok());
  tr.graph().AddOutput("loss", loss->id);
  tr.graph().AddOutput("output", out->id);
  std::unique_ptr<ir::Graph> g = tr.TakeGraph();
  // epsilon 1e-4 rather than 1e-8: with 1e-8, a gradient that is float rounding noise in the
  // compiled step (|g| ~ 1e-7) would still move its weight by about +-lr_t, in a random
  // direction; with 1e-4 such noise moves weights by < 1e-6.
  passes::AdamOptions adam{0.9, 0.999, 1e-4, 1e-2, -1};
  passes::PassManager pm;
  pm.Add(std::make_unique<passes::BuildTrainingGraph>("loss", adam));
  REQUIRE(pm.Run(*g).ok());

  ir::RefEnv env;
  std::mt19937 rng(4);
  Tensor data = ir::FromRef(testing::RandomRef({batch, 1, 28, 28}, rng, -1, 2), DType::kF32);
  Tensor labels(DType::kS32, {batch});
  for (int64_t i = 0; i < batch; ++i) labels.s32()[i] = static_cast<int32_t>((i * 3 + 1) % 10);
  env[*g->FindValue("data")] = ir::ToRef(data);
  env[*g->FindValue("label")] = ir::ToRef(labels);
  std::vector<std::string> names;
  for (auto& [name, p] : net->CollectParams()) {
    names.push_back(name);
    env[*g->FindValue(name)] = ir::ToRef(**p->Data());
    for (const char* suffix : {".mean", ".var"}) {
      auto s = g->FindValue(name + suffix);
      REQUIRE(s);
      env[*s] = ir::RefTensor(g->value(*s).type.shape);  // zero at the first step, as MXNet
    }
  }
  ir::ValueId lr = *g->FindValue("lr"), rescale = *g->FindValue("rescale_grad");
  env[rescale] = ir::RefTensor(Shape{});
  env[rescale][0] = 1.0 / static_cast<double>(batch);
  env[lr] = ir::RefTensor(Shape{});

  Trainer trainer(*net, "adam",
                  {{"learning_rate", 0.01}, {"beta1", 0.9}, {"beta2", 0.999}, {"epsilon", 1e-4}, {"wd", 1e-2}});
  TrainStep step(*net, SoftmaxCrossEntropyLoss(), trainer);
  auto close = [](double a, double b) { return std::abs(a - b) <= 2e-4 * std::max(1.0, std::abs(b)); };
  ir::RefEnv initial = env;
  for (int t = 1; t <= steps; ++t) {
    INFO("step " << t);
    env[lr][0] = 0.01 * std::sqrt(1 - std::pow(0.999, t)) / (1 - std::pow(0.9, t));
    REQUIRE(ir::RunReference(*g, env, /*apply_updates=*/true).ok());
    Tensor l, o;
    REQUIRE(step.Run(data, labels, batch, &l, &o).ok());
    const ir::RefTensor& want = env.at(*g->FindOutput("loss"));
    for (int64_t i = 0; i < batch; ++i) CHECK(close(l.f32()[i], want[i]));
  }
  CHECK(trainer.num_update() == steps);
  CHECK_THAT(step.graph_text(), Catch::Contains("adam_update"));
  int64_t compared = 0;
  for (const std::string& name : names) {
    INFO(name);
    const ir::RefTensor& want = env.at(*g->FindValue(name));
    const ir::RefTensor& before = initial.at(*g->FindValue(name));
    const Tensor* param = nullptr;
    for (auto& [n, p] : net->CollectParams()) {
      if (n == name) param = *p->Data();
    }
    REQUIRE(param);
    double moved = 0;
    for (int64_t i = 0; i < want.size(); ++i) {
      INFO(name << "[" << i << "]");
      REQUIRE(close(param->f32()[i], want[i]));
      moved = std::max(moved, std::abs(want[i] - before[i]));
      ++compared;
    }
    CHECK(moved > 1e-3);  // Adam moves every weight by about lr_t per step
    for (const char* suffix : {".mean", ".var"}) {
      const ir::RefTensor& s_want = env.at(*g->FindValue(name + suffix));
      Tensor* s_got = trainer.State(name + suffix, s_want.shape);
      for (int64_t i = 0; i < s_want.size(); ++i) {
        INFO(name << suffix << "[" << i << "]");
        REQUIRE(std::abs(s_got->f32()[i] - s_want[i]) <= 1e-4 * std::max(1e-2, std::abs(s_want[i])));
      }
    }
  }
  CHECK(compared > 40000);
}

TEST_CASE("a short LeNet run with Adam lowers the loss", "[graph][adam][train]") {
  // 64 fixed random images with fixed labels: the network can only fit them by learning, so
  // the mean loss must fall well below log(10) ~ 2.30 within 40 Adam steps.
  const int64_t batch = 64;
  Seed(5);
  auto net = examples::MakeLeNet();
  REQUIRE(net->Initialize(Xavier()).ok());
  std::mt19937 rng(9);
  Tensor data = ir::FromRef(testing::RandomRef({batch, 1, 28, 28}, rng, 0, 1), DType::kF32);
  Tensor labels(DType::kS32, {batch});
  for (int64_t i = 0; i < batch; ++i) labels.s32()[i] = static_cast<int32_t>(i % 10);
  Trainer trainer(*net, "adam", {{"learning_rate", 0.003}});
  TrainStep step(*net, SoftmaxCrossEntropyLoss(), trainer);
  Tensor loss, out;
  std::vector<double> means;
  for (int i = 0; i < 40; ++i) {
    REQUIRE(step.Run(data, labels, batch, &loss, &out).ok());
    double sum = 0;
    for (int64_t k = 0; k < batch; ++k) sum += loss.f32()[k];
    means.push_back(sum / static_cast<double>(batch));
  }
  INFO("loss " << means.front() << " -> " << means.back());
  CHECK(std::isfinite(means.back()));
  CHECK(means.front() > 1.5);
  CHECK(means.back() < 0.5 * means.front());
}

}  // namespace
}  // namespace kiln::graph
