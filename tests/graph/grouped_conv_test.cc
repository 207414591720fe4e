// Conv2D(groups=...) (graph/nn.h): a MobileNet-style block (1x1 expand, 3x3 depthwise with
// stride 2, 1x1 project) compiled at -O0 and -O2 gives the same outputs, its whole training
// step equals the reference interpreter dense and with -O2's layouts, and bad group counts
// are errors naming the layer.
#include <catch2/catch.hpp>

#include <cmath>

#include "graph/nn.h"
#include "graph/trainer.h"
#include "tests/passes/equivalence.h"

namespace kiln::graph {
namespace {

std::shared_ptr<nn::Sequential> Block() {
  auto net = std::make_shared<nn::Sequential>();
  net->Add(nn::Make<nn::Conv2D>(16, 1, nn::Conv2DOptions{.activation = "relu6"}));
  net->Add(nn::Make<nn::Conv2D>(16, 3, nn::Conv2DOptions{.strides = {2, 2}, .padding = {1, 1}, .activation = "relu6",
                                                         .groups = 16}));
  net->Add(nn::Make<nn::Conv2D>(24, 3, nn::Conv2DOptions{.padding = {1, 1}, .groups = 8}));  // grouped, 2 in per group
  net->Add(nn::Make<nn::GlobalAvgPool2D>());
  net->Add(nn::Make<nn::Dense>(10));
  Seed(4);
  REQUIRE(net->Initialize(Xavier()).ok());
  return net;
}

TEST_CASE("a depthwise block gives the same outputs at -O0 and -O2", "[graph][conv][groups]") {
  auto net = Block();
  Tensor x(DType::kF32, {3, 5, 12, 12}), y0, y2;
  for (int64_t i = 0; i < x.num_elements(); ++i) x.f32()[i] = std::sin(0.05f * static_cast<float>(i));
  Predictor p0(*net, CompileOptions{.opt_level = 0});
  Predictor p2(*net, CompileOptions{.opt_level = 2});
  REQUIRE(p0.Forward(x, &y0).ok());
  REQUIRE(p2.Forward(x, &y2).ok());
  REQUIRE(y0.shape() == Shape{3, 10});
  for (int64_t i = 0; i < y0.num_elements(); ++i) CHECK(y2.f32()[i] == Approx(y0.f32()[i]).margin(1e-5));
  // The depthwise weight is [16, 1, 3, 3], the grouped one [24, 2, 3, 3].
  for (auto& [name, p] : net->CollectParams()) {
    if (name == "1.weight") CHECK(p->shape() == Shape{16, 1, 3, 3});
    if (name == "2.weight") CHECK(p->shape() == Shape{24, 2, 3, 3});
  }
}

TEST_CASE("a depthwise block's training step equals the reference interpreter", "[graph][conv][groups][train]") {
  auto net = Block();
  Trainer trainer(*net, "sgd", {{"learning_rate", 0.1}, {"momentum", 0.9}});
  TrainStep step(*net, SoftmaxCrossEntropyLoss(), trainer, CompileOptions{.opt_level = 0});
  Tensor data(DType::kF32, {2, 5, 8, 8}), label(DType::kS32, {2}), loss, out;
  REQUIRE(step.Run(data, label, 2, &loss, &out).ok());
  ir::Graph g = testing::ParseOrFail(step.graph_text());
  testing::ExpectEquivalent(g, g, 21, {codegen::LowerOptions{false, false, false}, codegen::LowerOptions{true, true, true}},
                            1e-4);
  // And the -O2 step trains: the loss on a fixed batch falls.
  Trainer t2(*net, "sgd", {{"learning_rate", 0.05}});
  TrainStep fast(*net, SoftmaxCrossEntropyLoss(), t2);
  for (int64_t i = 0; i < data.num_elements(); ++i) data.f32()[i] = std::cos(0.3f * static_cast<float>(i));
  label.s32()[0] = 3;
  label.s32()[1] = 7;
  REQUIRE(fast.Run(data, label, 2, &loss, &out).ok());
  double first = loss.f32()[0] + loss.f32()[1];
  for (int k = 0; k < 30; ++k) REQUIRE(fast.Run(data, label, 2, &loss, &out).ok());
  CHECK(loss.f32()[0] + loss.f32()[1] < first);
}

TEST_CASE("groups that do not divide the channels are an error naming the layer", "[graph][conv][groups][errors]") {
  auto net = std::make_shared<nn::Sequential>();
  net->Add(nn::Make<nn::Conv2D>(6, 3, nn::Conv2DOptions{.groups = 4}));
  REQUIRE(net->Initialize(Xavier()).ok());
  Predictor p(*net);
  Tensor y;
  Status s = p.Forward(Tensor(DType::kF32, {1, 8, 5, 5}), &y);
  CHECK(s.code() == StatusCode::kInvalidArgument);
  CHECK_THAT(s.message(), Catch::Contains("Conv2D '0.weight'") && Catch::Contains("groups 4") &&
                              Catch::Contains("6 output channels"));
}

}  // namespace
}  // namespace kiln::graph
