// Gluon's activation layers (graph/nn.h) compiled and run: each layer's output against its
// formula at fixed points, both modes of the compiler (-O0 and -O2), and a network of them
// trained through the compiled step, whose loss must fall.
#include <catch2/catch.hpp>

#include <cmath>
#include <functional>

#include "graph/nn.h"
#include "graph/trainer.h"
#include "tests/passes/equivalence.h"

namespace kiln::graph {
namespace {

double Sigmoid(double x) { return 1 / (1 + std::exp(-x)); }

TEST_CASE("activation layers compute their formulas", "[graph][activations]") {
  struct Case {
    const char* name;
    std::shared_ptr<nn::Block> layer;
    std::function<double(double)> f;
  } cases[] = {
      {"LeakyReLU(0.1)", nn::Make<nn::LeakyReLU>(0.1), [](double x) { return x > 0 ? x : 0.1 * x; }},
      {"ELU(0.5)", nn::Make<nn::ELU>(0.5), [](double x) { return x > 0 ? x : 0.5 * std::expm1(x); }},
      {"SELU", nn::Make<nn::SELU>(),
       [](double x) { return 1.0507009873554805 * (x > 0 ? x : 1.6732632423543772 * std::expm1(x)); }},
      {"GELU", nn::Make<nn::GELU>(), [](double x) { return 0.5 * x * (1 + std::erf(x / std::sqrt(2.0))); }},
      {"Swish(2)", nn::Make<nn::Swish>(2.0), [](double x) { return x * Sigmoid(2 * x); }},
      {"HardSigmoid()", nn::Make<nn::HardSigmoid>(), [](double x) { return std::clamp(0.2 * x + 0.5, 0.0, 1.0); }},
      {"HardSwish", nn::Make<nn::HardSwish>(), [](double x) { return x * std::clamp(x + 3, 0.0, 6.0) / 6; }},
      {"Activation(softrelu)", nn::Make<nn::Activation>("softrelu"), [](double x) { return std::log1p(std::exp(x)); }},
      {"Activation(relu6)", nn::Make<nn::Activation>("relu6"), [](double x) { return std::clamp(x, 0.0, 6.0); }},
      {"Activation(swish)", nn::Make<nn::Activation>("swish"), [](double x) { return x * Sigmoid(x); }},
  };
  Tensor x(DType::kF32, {2, 3, 4, 5});
  for (int64_t i = 0; i < x.num_elements(); ++i) x.f32()[i] = -8.f + 16.f * static_cast<float>(i) / 119.f;
  for (const Case& c : cases) {
    for (int opt : {0, 2}) {
      INFO(c.name << " -O" << opt);
      auto net = std::make_shared<nn::Sequential>();
      net->Add(c.layer);
      REQUIRE(net->Initialize(Xavier()).ok());
      CompileOptions options;
      options.opt_level = opt;
      Predictor p(*net, options);
      Tensor y;
      Status s = p.Forward(x, &y);
      REQUIRE(s.ok());
      REQUIRE(y.shape() == x.shape());
      double worst = 0;
      for (int64_t i = 0; i < x.num_elements(); ++i) {
        double want = c.f(x.f32()[i]);
        worst = std::max(worst, std::abs(y.f32()[i] - want) / std::max(1.0, std::abs(want)));
      }
      CHECK(worst < 1e-5);
    }
  }
}

TEST_CASE("an unknown act_type names the node and the supported ones", "[graph][activations][errors]") {
  auto net = std::make_shared<nn::Sequential>();
  net->Add(nn::Make<nn::Activation>("mish"));
  REQUIRE(net->Initialize(Xavier()).ok());
  Predictor p(*net);
  Tensor y;
  Status s = p.Forward(Tensor(DType::kF32, {1, 4}), &y);
  CHECK(s.code() == StatusCode::kInvalidArgument);
  CHECK_THAT(s.message(), Catch::Contains("unsupported act_type 'mish'") && Catch::Contains("hard_swish"));
}

TEST_CASE("a network of the new activations trains through the compiled step", "[graph][activations][train]") {
  auto net = std::make_shared<nn::Sequential>();
  net->Add(nn::Make<nn::Dense>(32));
  net->Add(nn::Make<nn::GELU>());
  net->Add(nn::Make<nn::Dense>(32));
  net->Add(nn::Make<nn::HardSwish>());
  net->Add(nn::Make<nn::Dense>(32));
  net->Add(nn::Make<nn::ELU>());
  net->Add(nn::Make<nn::Dense>(32));
  net->Add(nn::Make<nn::Swish>());
  net->Add(nn::Make<nn::Dense>(32, nn::DenseOptions{.activation = "relu6"}));
  net->Add(nn::Make<nn::SELU>());
  net->Add(nn::Make<nn::Dense>(10));
  Seed(5);
  REQUIRE(net->Initialize(Xavier()).ok());
  Trainer trainer(*net, "sgd", {{"learning_rate", 0.05}});
  TrainStep step(*net, SoftmaxCrossEntropyLoss(), trainer);
  Tensor data(DType::kF32, {20, 8}), label(DType::kS32, {20}), loss, out;
  for (int64_t i = 0; i < data.num_elements(); ++i) data.f32()[i] = std::sin(0.7f * static_cast<float>(i));
  for (int64_t i = 0; i < 20; ++i) label.s32()[i] = static_cast<int32_t>(i % 10);
  auto mean = [](const Tensor& t) {
    double s = 0;
    for (int64_t i = 0; i < t.num_elements(); ++i) s += t.f32()[i];
    return s / static_cast<double>(t.num_elements());
  };
  REQUIRE(step.Run(data, label, 20, &loss, &out).ok());
  double first = mean(loss);
  for (int i = 0; i < 150; ++i) REQUIRE(step.Run(data, label, 20, &loss, &out).ok());
  double last = mean(loss);
  INFO("loss " << first << " -> " << last);
  CHECK(std::isfinite(last));
  CHECK(last < 0.6 * first);  // 20 fixed samples: the network fits them
}

TEST_CASE("a training step through each new activation equals the reference interpreter", "[graph][activations][train]") {
  struct Case {
    const char* act;
    const char* backward_op;
  } cases[] = {{"elu", "elu_backward"},       {"selu", "selu_backward"},
               {"gelu", "gelu_backward"},     {"swish", "silu_backward"},
               {"hard_sigmoid", "hard_sigmoid_backward"}, {"hard_swish", "hard_swish_backward"},
               {"softrelu", "softplus_backward"}, {"relu6", "clip_backward"},
               {"softsign", "softsign_backward"}};
  uint32_t seed = 11;
  for (const Case& c : cases) {
    INFO(c.act);
    // Two convolutions, so that the activations also see oneDNN's blocked layouts at -O2.
    auto net = std::make_shared<nn::Sequential>();
    for (int i = 0; i < 2; ++i) net->Add(nn::Make<nn::Conv2D>(8, 3, nn::Conv2DOptions{.padding = {1, 1}, .activation = c.act}));
    net->Add(nn::Make<nn::Dense>(10));
    Seed(9);
    REQUIRE(net->Initialize(Xavier()).ok());
    Trainer trainer(*net, "sgd", {{"learning_rate", 0.1}});
    CompileOptions options;
    options.opt_level = 0;  // the traced graph as autodiff and the SGD pass wrote it
    TrainStep step(*net, SoftmaxCrossEntropyLoss(), trainer, options);
    Tensor data(DType::kF32, {2, 3, 6, 6}), label(DType::kS32, {2}), loss, out;
    REQUIRE(step.Run(data, label, 2, &loss, &out).ok());
    ir::Graph g = testing::ParseOrFail(step.graph_text());
    CHECK(testing::CountOp(g, c.backward_op) == 2);
    // Dense NCHW steps, and -O2's lowering (oneDNN's conv layouts, in-place reuse, planned arena).
    testing::ExpectEquivalent(g, g, seed++,
                              {codegen::LowerOptions{false, false, false}, codegen::LowerOptions{true, true, true}}, 1e-4);
  }
}

}  // namespace
}  // namespace kiln::graph
