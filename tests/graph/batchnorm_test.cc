// nn::BatchNorm and nn::Dropout (graph/nn.h) through the compiled step: training mode uses
// the batch's statistics and updates the running ones inside the step (momentum 0.9 of
// Gluon), inference mode uses the running statistics; the whole training step of a conv +
// BatchNorm + Dropout network equals the reference interpreter, dense and with -O2's
// layouts; dropout masks follow the step's seed and vanish at inference; the running
// statistics are saved and loaded with the parameters.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdio>
#include <map>

#include "graph/nn.h"
#include "graph/trainer.h"
#include "tests/passes/equivalence.h"

namespace kiln::graph {
namespace {

Tensor Wave(Shape shape, float freq, float offset = 0) {
  Tensor x(DType::kF32, std::move(shape));
  for (int64_t i = 0; i < x.num_elements(); ++i) x.f32()[i] = std::sin(freq * static_cast<float>(i)) * 2 + offset;
  return x;
}

std::vector<float> Values(Parameter* p) {
  Tensor* t = p->Data().value();
  return std::vector<float>(t->f32(), t->f32() + t->num_elements());
}

std::shared_ptr<nn::Sequential> ConvBnNet(double dropout) {
  auto net = std::make_shared<nn::Sequential>();
  net->Add(nn::Make<nn::Conv2D>(6, 3, nn::Conv2DOptions{.padding = {1, 1}, .use_bias = false}));
  net->Add(nn::Make<nn::BatchNorm>());
  net->Add(nn::Make<nn::Activation>("relu"));
  net->Add(nn::Make<nn::MaxPool2D>(2));
  net->Add(nn::Make<nn::Dropout>(dropout));
  net->Add(nn::Make<nn::Dense>(10));
  Seed(9);
  REQUIRE(net->Initialize(Xavier()).ok());
  return net;
}

TEST_CASE("BatchNorm training updates the running statistics with momentum 0.9", "[graph][batch_norm]") {
  auto net = std::make_shared<nn::Sequential>();
  auto* bn = net->Add(nn::Make<nn::BatchNorm>());
  net->Add(nn::Make<nn::Dense>(4));
  REQUIRE(net->Initialize(Xavier()).ok());
  Trainer trainer(*net, "sgd", {{"learning_rate", 0.1}});
  for (int opt : {0, 2}) {
    INFO("-O" << opt);
    REQUIRE(bn->running_mean()->SetData(Tensor(DType::kF32, {3})).ok());
    Tensor ones(DType::kF32, {3});
    for (int c = 0; c < 3; ++c) ones.f32()[c] = 1;
    REQUIRE(bn->running_var()->SetData(ones).ok());
    TrainStep step(*net, SoftmaxCrossEntropyLoss(), trainer, CompileOptions{.opt_level = opt});
    Tensor data = Wave({4, 3, 5, 5}, 0.37f, 0.5f), label(DType::kS32, {4}), loss, out;
    REQUIRE(step.Run(data, label, 4, &loss, &out).ok());
    // Batch statistics per channel over N, H, W (biased variance, as MXNet).
    std::vector<float> mean = Values(bn->running_mean()), var = Values(bn->running_var());
    for (int c = 0; c < 3; ++c) {
      double s = 0, ss = 0;
      int m = 0;
      for (int n = 0; n < 4; ++n) {
        for (int k = 0; k < 25; ++k) {
          double v = data.f32()[(n * 3 + c) * 25 + k];
          s += v;
          ss += v * v;
          ++m;
        }
      }
      double bm = s / m, bv = ss / m - bm * bm;
      CHECK(mean[static_cast<size_t>(c)] == Approx(0.1 * bm).epsilon(1e-4));
      CHECK(var[static_cast<size_t>(c)] == Approx(0.9 + 0.1 * bv).epsilon(1e-4));
    }
    // gamma and beta train; the running statistics got no gradient of their own.
    CHECK(step.graph_text().find("batch_norm_training") != std::string::npos);
  }
}

TEST_CASE("BatchNorm inference normalizes with the running statistics", "[graph][batch_norm]") {
  auto net = std::make_shared<nn::Sequential>();
  auto* bn = net->Add(nn::Make<nn::BatchNorm>(nn::BatchNormOptions{.epsilon = 1e-3}));
  REQUIRE(net->Initialize().ok());
  Tensor x = Wave({2, 4, 3, 3}, 0.21f), y0, y2;
  Predictor warm(*net);
  REQUIRE(warm.Forward(x, &y0).ok());  // completes the deferred shapes
  Tensor gamma(DType::kF32, {4}), beta(DType::kF32, {4}), mean(DType::kF32, {4}), var(DType::kF32, {4});
  for (int c = 0; c < 4; ++c) {
    gamma.f32()[c] = 0.5f + static_cast<float>(c);
    beta.f32()[c] = -0.25f * static_cast<float>(c);
    mean.f32()[c] = 0.1f * static_cast<float>(c);
    var.f32()[c] = 0.5f + 0.3f * static_cast<float>(c);
  }
  REQUIRE(bn->gamma()->SetData(gamma).ok());
  REQUIRE(bn->beta()->SetData(beta).ok());
  REQUIRE(bn->running_mean()->SetData(mean).ok());
  REQUIRE(bn->running_var()->SetData(var).ok());
  Predictor p0(*net, CompileOptions{.opt_level = 0});
  Predictor p2(*net, CompileOptions{.constant_params = true});
  REQUIRE(p0.Forward(x, &y0).ok());
  REQUIRE(p2.Forward(x, &y2).ok());
  for (int64_t i = 0; i < x.num_elements(); ++i) {
    int64_t c = (i / 9) % 4;
    double want = (x.f32()[i] - mean.f32()[c]) / std::sqrt(var.f32()[c] + 1e-3) * gamma.f32()[c] + beta.f32()[c];
    CHECK(y0.f32()[i] == Approx(want).margin(1e-5));
    CHECK(y2.f32()[i] == Approx(want).margin(1e-5));
  }
  // With a ReLU after it, -O2 fuses the two (oneDNN's fuse_norm_relu).
  net->Add(nn::Make<nn::Activation>("relu"));
  Predictor r0(*net, CompileOptions{.opt_level = 0}), r2(*net);
  REQUIRE(r0.Forward(x, &y0).ok());
  REQUIRE(r2.Forward(x, &y2).ok());
  CHECK(r2.graph_text().find("activation=\"relu\"") != std::string::npos);
  CHECK(r0.graph_text().find("= relu[") != std::string::npos);
  CHECK(r2.graph_text().find("= relu[") == std::string::npos);
  for (int64_t i = 0; i < x.num_elements(); ++i) {
    CHECK(y2.f32()[i] == Approx(y0.f32()[i]).margin(1e-5));
    CHECK(y0.f32()[i] >= 0);
  }
  // Inference changes nothing.
  CHECK(Values(bn->running_mean()) == std::vector<float>(mean.f32(), mean.f32() + 4));
}

TEST_CASE("a conv + BatchNorm + Dropout training step equals the reference interpreter",
          "[graph][batch_norm][dropout][train]") {
  auto net = ConvBnNet(0.3);
  Trainer trainer(*net, "sgd", {{"learning_rate", 0.1}, {"momentum", 0.9}});
  TrainStep step(*net, SoftmaxCrossEntropyLoss(), trainer, CompileOptions{.opt_level = 0});
  Tensor data = Wave({3, 2, 8, 8}, 0.11f), label(DType::kS32, {3}), loss, out;
  REQUIRE(step.Run(data, label, 3, &loss, &out).ok());
  ir::Graph g = testing::ParseOrFail(step.graph_text());
  CHECK(testing::CountOp(g, "batch_norm_training") == 1);
  CHECK(testing::CountOp(g, "batch_norm_backward") == 1);
  CHECK(testing::CountOp(g, "moving_average") == 2);
  CHECK(testing::CountOp(g, "dropout") == 2);  // forward and its gradient
  testing::ExpectEquivalent(g, g, 31, {codegen::LowerOptions{false, false, false}, codegen::LowerOptions{true, true, true}},
                            1e-4);
}

TEST_CASE("a conv + BatchNorm network trains at -O2 and predicts with the running statistics",
          "[graph][batch_norm][train]") {
  auto net = ConvBnNet(0.0);
  Trainer trainer(*net, "sgd", {{"learning_rate", 0.05}, {"momentum", 0.9}});
  TrainStep step(*net, SoftmaxCrossEntropyLoss(), trainer);
  Tensor data = Wave({8, 2, 8, 8}, 0.23f), label(DType::kS32, {8}), loss, out;
  for (int i = 0; i < 8; ++i) label.s32()[i] = i % 3;
  REQUIRE(step.Run(data, label, 8, &loss, &out).ok());
  double first = 0, last = 0;
  for (int i = 0; i < 8; ++i) first += loss.f32()[i];
  for (int k = 0; k < 40; ++k) REQUIRE(step.Run(data, label, 8, &loss, &out).ok());
  for (int i = 0; i < 8; ++i) last += loss.f32()[i];
  CHECK(last < 0.5 * first);
  // After many steps on one batch the running statistics approach the batch's, so the
  // inference output approaches the training-mode output of that batch.
  Predictor p(*net);
  Tensor y;
  REQUIRE(p.Forward(data, &y).ok());
  REQUIRE(step.Run(data, label, 8, &loss, &out).ok());
  Tensor y_after;
  REQUIRE(p.Forward(data, &y_after).ok());
  double diff = 0, scale = 0;
  for (int64_t i = 0; i < y_after.num_elements(); ++i) {
    diff = std::max(diff, static_cast<double>(std::abs(y_after.f32()[i] - out.f32()[i])));
    scale = std::max(scale, static_cast<double>(std::abs(out.f32()[i])));
  }
  CHECK(diff < 0.1 * scale);
}

TEST_CASE("Dropout: the step's seed decides the mask; inference is the identity", "[graph][dropout]") {
  auto run = [](uint32_t seed) {
    auto net = ConvBnNet(0.5);
    Trainer trainer(*net, "sgd", {{"learning_rate", 0.1}});
    TrainStep step(*net, SoftmaxCrossEntropyLoss(), trainer);
    step.set_dropout_seed(seed);
    Tensor data = Wave({4, 2, 8, 8}, 0.13f), label(DType::kS32, {4}), loss, out;
    REQUIRE(step.Run(data, label, 4, &loss, &out).ok());
    return std::vector<float>(out.f32(), out.f32() + out.num_elements());
  };
  std::vector<float> a = run(5), b = run(5), c = run(6);
  CHECK(a == b);
  CHECK(a != c);
  // Inference: the same network with rate 0.5 and without dropout give the same output.
  auto with = ConvBnNet(0.5), without = ConvBnNet(0.0);
  Tensor x = Wave({2, 2, 8, 8}, 0.3f), y1, y2;
  Predictor p1(*with), p2(*without);
  Seed(1);  // the deferred initialization draws at the first Forward
  REQUIRE(p1.Forward(x, &y1).ok());
  Seed(1);
  REQUIRE(p2.Forward(x, &y2).ok());
  REQUIRE(y1.num_elements() == y2.num_elements());
  for (int64_t i = 0; i < y1.num_elements(); ++i) CHECK(y1.f32()[i] == y2.f32()[i]);
  CHECK(p1.graph_text().find("dropout") == std::string::npos);
}

TEST_CASE("BatchNorm(scale=false, center=false) keeps gamma 1 and beta 0; the running statistics are saved",
          "[graph][batch_norm]") {
  auto net = std::make_shared<nn::Sequential>();
  auto* bn = net->Add(nn::Make<nn::BatchNorm>(nn::BatchNormOptions{.center = false, .scale = false}));
  net->Add(nn::Make<nn::Dense>(3));
  REQUIRE(net->Initialize(Xavier()).ok());
  Trainer trainer(*net, "sgd", {{"learning_rate", 0.5}});
  TrainStep step(*net, SoftmaxCrossEntropyLoss(), trainer);
  Tensor data = Wave({4, 2, 3, 3}, 0.5f), label(DType::kS32, {4}), loss, out;
  for (int k = 0; k < 3; ++k) REQUIRE(step.Run(data, label, 4, &loss, &out).ok());
  CHECK(Values(bn->gamma()) == std::vector<float>{1, 1});
  CHECK(Values(bn->beta()) == std::vector<float>{0, 0});
  std::vector<float> mean = Values(bn->running_mean());
  CHECK(mean[0] != 0);
  std::string path = std::string(std::getenv("TEST_TMPDIR") ? std::getenv("TEST_TMPDIR") : "/tmp") + "/bn.params";
  REQUIRE(net->SaveParameters(path).ok());
  auto other = std::make_shared<nn::Sequential>();
  auto* bn2 = other->Add(nn::Make<nn::BatchNorm>(nn::BatchNormOptions{.center = false, .scale = false}));
  other->Add(nn::Make<nn::Dense>(3));
  REQUIRE(other->LoadParameters(path).ok());
  CHECK(Values(bn2->running_mean()) == mean);
  std::remove(path.c_str());
}

TEST_CASE("BatchNorm errors name the layer and the shapes", "[graph][batch_norm][errors]") {
  auto net = std::make_shared<nn::Sequential>();
  net->Add(nn::Make<nn::BatchNorm>(nn::BatchNormOptions{.in_channels = 4}));
  REQUIRE(net->Initialize().ok());
  Predictor p(*net);
  Tensor y;
  Status s = p.Forward(Tensor(DType::kF32, {2, 3, 5, 5}), &y);
  CHECK(s.code() == StatusCode::kInvalidArgument);
  CHECK_THAT(s.message(), Catch::Contains("BatchNorm '0.") && Catch::Contains("3 channels") && Catch::Contains("takes 4"));
  auto axis = std::make_shared<nn::Sequential>();
  axis->Add(nn::Make<nn::BatchNorm>(nn::BatchNormOptions{.axis = 3}));
  REQUIRE(axis->Initialize().ok());
  Predictor pa(*axis);
  CHECK_THAT(pa.Forward(Tensor(DType::kF32, {2, 3, 5, 5}), &y).message(), Catch::Contains("axis 1"));
  auto drop = std::make_shared<nn::Sequential>();
  drop->Add(nn::Make<nn::Dropout>(1.0));
  Trainer trainer(*drop, "sgd", {});
  TrainStep step(*drop, SoftmaxCrossEntropyLoss(), trainer);
  Tensor loss, out;
  CHECK_THAT(step.Run(Tensor(DType::kF32, {2, 3}), Tensor(DType::kS32, {2}), 2, &loss, &out).message(),
             Catch::Contains("rate must be in [0, 1)"));
}

}  // namespace
}  // namespace kiln::graph

namespace kiln::graph {
namespace {

TEST_CASE("conv + BatchNorm + relu6 + global pooling: the training step at -O2 equals the reference",
          "[graph][batch_norm][train]") {
  auto act = GENERATE(std::string("relu6"), std::string("relu"), std::string(""));
  INFO("activation " << act);
  auto net = std::make_shared<nn::Sequential>();
  net->Add(nn::Make<nn::Conv2D>(16, 1, nn::Conv2DOptions{.use_bias = false}));
  net->Add(nn::Make<nn::BatchNorm>());
  if (!act.empty()) net->Add(nn::Make<nn::Activation>(act));
  net->Add(nn::Make<nn::GlobalAvgPool2D>());
  net->Add(nn::Make<nn::Dense>(10));
  Seed(3);
  REQUIRE(net->Initialize(Xavier()).ok());
  Trainer trainer(*net, "sgd", {{"learning_rate", 0.1}});
  TrainStep step(*net, SoftmaxCrossEntropyLoss(), trainer, CompileOptions{.opt_level = 0});
  Tensor data = Wave({4, 8, 2, 2}, 0.11f, 1.0f), label(DType::kS32, {4}), loss, out;
  REQUIRE(step.Run(data, label, 4, &loss, &out).ok());
  ir::Graph g = testing::ParseOrFail(step.graph_text());
  testing::ExpectEquivalent(g, g, 8, {codegen::LowerOptions{false, false, false}, codegen::LowerOptions{true, true, true}},
                            1e-4);
}

}  // namespace
}  // namespace kiln::graph

namespace kiln::graph {
namespace {

// The head of MobileNetV2: 1x1 conv, BatchNorm, relu6, global pooling, flatten, dropout 0,
// dense; its gradients at -O2 (every pass and layout) equal -O0's.
TEST_CASE("a MobileNetV2 head's gradients at -O2 equal -O0's", "[graph][batch_norm][train]") {
  const int variant = GENERATE(0, 1);
  INFO("variant " << variant);
  std::map<std::string, std::vector<float>> grads[2];
  for (int k = 0; k < 2; ++k) {
    auto net = std::make_shared<nn::Sequential>();
    if (variant == 1) {  // an inverted residual block with a stride-2 depthwise convolution first
      net->Add(nn::Make<nn::Conv2D>(96, 1, nn::Conv2DOptions{.use_bias = false}));
      net->Add(nn::Make<nn::BatchNorm>());
      net->Add(nn::Make<nn::Activation>("relu6"));
      net->Add(nn::Make<nn::Conv2D>(96, 3, nn::Conv2DOptions{.strides = {2, 2}, .padding = {1, 1}, .groups = 96, .use_bias = false}));
      net->Add(nn::Make<nn::BatchNorm>());
      net->Add(nn::Make<nn::Activation>("relu6"));
      net->Add(nn::Make<nn::Conv2D>(40, 1, nn::Conv2DOptions{.use_bias = false}));
      net->Add(nn::Make<nn::BatchNorm>());
    }
    net->Add(nn::Make<nn::Conv2D>(1280, 1, nn::Conv2DOptions{.use_bias = false}));
    net->Add(nn::Make<nn::BatchNorm>());
    net->Add(nn::Make<nn::Activation>("relu6"));
    net->Add(nn::Make<nn::GlobalAvgPool2D>());
    net->Add(nn::Make<nn::Flatten>());
    net->Add(nn::Make<nn::Dropout>(0.0));
    net->Add(nn::Make<nn::Dense>(10));
    Seed(3);
    REQUIRE(net->Initialize(Xavier()).ok());
    Trainer trainer(*net, "sgd", {{"learning_rate", 0.1}});
    TrainStep step(*net, SoftmaxCrossEntropyLoss(), trainer,
                   CompileOptions{.output_gradients = true, .opt_level = k == 0 ? 0 : 2});
    Tensor data = Wave({4, 32, 8, 8}, 0.11f, 0.5f), label(DType::kS32, {4}), loss, out;
    for (int i = 0; i < 4; ++i) label.s32()[i] = i;
    REQUIRE(step.Run(data, label, 4, &loss, &out).ok());
    for (auto& [name, p] : net->CollectParams()) {
      if (const Tensor* g = step.Gradient(name)) grads[k][name] = std::vector<float>(g->f32(), g->f32() + g->num_elements());
    }
  }
  REQUIRE(grads[0].size() == (variant == 0 ? 5u : 14u));
  for (const auto& [name, g0] : grads[0]) {
    INFO(name);
    const std::vector<float>& g2 = grads[1].at(name);
    // The batch-statistics backward cancels: float32 results agree to about 1e-4 relative.
    double scale = 0, diff = 0;
    for (size_t i = 0; i < g0.size(); ++i) {
      scale = std::max(scale, static_cast<double>(std::abs(g0[i])));
      diff = std::max(diff, static_cast<double>(std::abs(g2[i] - g0[i])));
    }
    CHECK(diff <= 1e-3 * scale + 1e-6);
  }
}

}  // namespace
}  // namespace kiln::graph
