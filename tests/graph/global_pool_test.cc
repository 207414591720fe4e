// GlobalAvgPool2D / GlobalMaxPool2D (graph/nn.h): the mean / max of every channel, at -O0
// and -O2 (blocked layouts after a convolution), and a training step through them.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>

#include "graph/nn.h"
#include "graph/trainer.h"

namespace kiln::graph {
namespace {

TEST_CASE("global pooling gives each channel's mean and max", "[graph][pool]") {
  Tensor x(DType::kF32, {2, 3, 5, 7});
  for (int64_t i = 0; i < x.num_elements(); ++i) x.f32()[i] = std::sin(0.37f * static_cast<float>(i));
  for (bool avg : {true, false}) {
    for (int opt : {0, 2}) {
      INFO((avg ? "avg" : "max") << " -O" << opt);
      auto net = std::make_shared<nn::Sequential>();
      if (avg) {
        net->Add(nn::Make<nn::GlobalAvgPool2D>());
      } else {
        net->Add(nn::Make<nn::GlobalMaxPool2D>());
      }
      REQUIRE(net->Initialize(Xavier()).ok());
      Predictor p(*net, CompileOptions{.opt_level = opt});
      Tensor y;
      REQUIRE(p.Forward(x, &y).ok());
      REQUIRE(y.shape() == Shape{2, 3, 1, 1});
      for (int64_t c = 0; c < 6; ++c) {
        const float* plane = x.f32() + c * 35;
        double want = avg ? 0 : -1e30;
        for (int i = 0; i < 35; ++i) want = avg ? want + plane[i] / 35.0 : std::max<double>(want, plane[i]);
        CHECK(y.f32()[c] == Approx(want).margin(1e-6));
      }
    }
  }
}

TEST_CASE("global pooling refuses a non-NCHW input and trains after a convolution", "[graph][pool]") {
  auto flat = std::make_shared<nn::Sequential>();
  flat->Add(nn::Make<nn::GlobalAvgPool2D>());
  REQUIRE(flat->Initialize(Xavier()).ok());
  Predictor p(*flat);
  Tensor y;
  Status s = p.Forward(Tensor(DType::kF32, {2, 8}), &y);
  CHECK(s.code() == StatusCode::kInvalidArgument);
  CHECK_THAT(s.message(), Catch::Contains("GlobalAvgPool2D") && Catch::Contains("[2,8]"));

  auto net = std::make_shared<nn::Sequential>();
  net->Add(nn::Make<nn::Conv2D>(16, 3, nn::Conv2DOptions{.padding = {1, 1}, .activation = "relu"}));
  net->Add(nn::Make<nn::GlobalMaxPool2D>());
  net->Add(nn::Make<nn::Conv2D>(10, 1));
  net->Add(nn::Make<nn::GlobalAvgPool2D>());
  net->Add(nn::Make<nn::Flatten>());
  Seed(2);
  REQUIRE(net->Initialize(Xavier()).ok());
  Trainer trainer(*net, "sgd", {{"learning_rate", 0.1}});
  TrainStep step(*net, SoftmaxCrossEntropyLoss(), trainer);
  Tensor data(DType::kF32, {10, 3, 8, 8}), label(DType::kS32, {10}), loss, out;
  for (int64_t i = 0; i < data.num_elements(); ++i) data.f32()[i] = std::cos(0.11f * static_cast<float>(i));
  for (int64_t i = 0; i < 10; ++i) label.s32()[i] = static_cast<int32_t>(i);
  REQUIRE(step.Run(data, label, 10, &loss, &out).ok());
  REQUIRE(out.shape() == Shape{10, 10});
  double first = 0, last = 0;
  for (int i = 0; i < 10; ++i) first += loss.f32()[i];
  for (int k = 0; k < 100; ++k) REQUIRE(step.Run(data, label, 10, &loss, &out).ok());
  for (int i = 0; i < 10; ++i) last += loss.f32()[i];
  INFO("loss " << first << " -> " << last);
  CHECK(last < first);
}

}  // namespace
}  // namespace kiln::graph
