// Concatenation and friends through the front end: HybridConcurrent (an Inception-style
// block), PReLU, Gluon's reshape codes, slice and transpose, and a squeeze-and-excitation
// block x * sigmoid(fc(pool(x))) with its [N,C,1,1] broadcast: outputs at -O0 = -O2 and
// the whole training step = the reference interpreter, dense and with -O2's layouts.
#include <catch2/catch.hpp>

#include <cmath>

#include "graph/nn.h"
#include "graph/trainer.h"
#include "tests/passes/equivalence.h"

namespace kiln::graph {
namespace {

Tensor Wave(Shape shape, float freq) {
  Tensor x(DType::kF32, std::move(shape));
  for (int64_t i = 0; i < x.num_elements(); ++i) x.f32()[i] = std::sin(freq * static_cast<float>(i));
  return x;
}

// Squeeze and excitation (Hu et al. 2018): channel weights from the pooled input.
class SqueezeExcite : public nn::Block {
 public:
  explicit SqueezeExcite(int64_t channels) {
    fc1_ = RegisterChild("fc1", nn::Make<nn::Conv2D>(channels / 2, 1, nn::Conv2DOptions{.activation = "relu"}));
    fc2_ = RegisterChild("fc2", nn::Make<nn::Conv2D>(channels, 1));
  }
  StatusOr<Sym> Forward(Sym x) override {
    ASSIGN_OR_RETURN(Sym s, pool_.Forward(x));
    ASSIGN_OR_RETURN(s, fc1_->Forward(s));
    ASSIGN_OR_RETURN(s, fc2_->Forward(s));
    ASSIGN_OR_RETURN(s, ops::Activation(s, "sigmoid"));
    return ops::Mul(x, s, "se_scale");  // [N,C,H,W] * [N,C,1,1]
  }

 private:
  nn::GlobalAvgPool2D pool_;
  nn::Conv2D *fc1_, *fc2_;
};

std::shared_ptr<nn::Sequential> InceptionNet() {
  auto net = std::make_shared<nn::Sequential>();
  auto* branches = net->Add(nn::Make<nn::HybridConcurrent>());
  branches->Add(nn::Make<nn::Conv2D>(4, 1, nn::Conv2DOptions{.activation = "relu"}));
  auto b2 = nn::Make<nn::Sequential>();
  b2->Add(nn::Make<nn::Conv2D>(3, 1, nn::Conv2DOptions{.activation = "relu"}));
  b2->Add(nn::Make<nn::Conv2D>(5, 3, nn::Conv2DOptions{.padding = {1, 1}}));
  branches->Add(b2);
  branches->Add(nn::Make<nn::MaxPool2D>(3, 1, 1));
  net->Add(nn::Make<nn::PReLU>(12));  // 4 + 5 + 3 channels
  net->Add(nn::Make<SqueezeExcite>(12));
  net->Add(nn::Make<nn::GlobalAvgPool2D>());
  net->Add(nn::Make<nn::Dense>(10));
  Seed(5);
  REQUIRE(net->Initialize(Xavier()).ok());
  return net;
}

TEST_CASE("an Inception block with PReLU and squeeze-excitation: -O0 = -O2", "[graph][concat]") {
  auto net = InceptionNet();
  Tensor x = Wave({2, 3, 9, 9}, 0.07f), y0, y2;
  Predictor p0(*net, CompileOptions{.opt_level = 0});
  Predictor p2(*net);
  REQUIRE(p0.Forward(x, &y0).ok());
  REQUIRE(p2.Forward(x, &y2).ok());
  REQUIRE(y0.shape() == Shape{2, 10});
  for (int64_t i = 0; i < y0.num_elements(); ++i) CHECK(y2.f32()[i] == Approx(y0.f32()[i]).margin(1e-5));
  CHECK(p0.graph_text().find("concat") != std::string::npos);
}

TEST_CASE("an Inception block's training step equals the reference interpreter", "[graph][concat][train]") {
  auto net = InceptionNet();
  Trainer trainer(*net, "sgd", {{"learning_rate", 0.1}, {"momentum", 0.9}});
  TrainStep step(*net, SoftmaxCrossEntropyLoss(), trainer, CompileOptions{.opt_level = 0});
  Tensor data = Wave({2, 3, 6, 6}, 0.3f), label(DType::kS32, {2}), loss, out;
  REQUIRE(step.Run(data, label, 2, &loss, &out).ok());
  ir::Graph g = testing::ParseOrFail(step.graph_text());
  CHECK(testing::CountOp(g, "split") >= 1);  // concat's gradient
  testing::ExpectEquivalent(g, g, 17, {codegen::LowerOptions{false, false, false}, codegen::LowerOptions{true, true, true}},
                            1e-4);
}

TEST_CASE("reshape codes, slice and transpose through the front end", "[graph][reshape]") {
  Tracer t("shapes");
  Sym x = t.Input("x", DType::kF32, {2, 3, 4, 5});
  CHECK(ops::Reshape(x, {0, -1}).value().shape() == Shape{2, 60});
  CHECK(ops::Reshape(x, {0, 0, 20}).value().shape() == Shape{2, 3, 20});
  CHECK(ops::Reshape(x, {-1, 5}).value().shape() == Shape{24, 5});
  auto two = ops::Reshape(x, {-1, -1});
  REQUIRE_FALSE(two.ok());
  CHECK_THAT(two.status().message(), Catch::Contains("[2,3,4,5]") && Catch::Contains("at most one -1"));
  CHECK_FALSE(ops::Reshape(x, {7, -1}).ok());
  // The other codes of MXNet 1.9 (the examples of its reshape documentation).
  CHECK(ops::Reshape(x, {-2}).value().shape() == Shape{2, 3, 4, 5});
  CHECK(ops::Reshape(x, {2, -2}).value().shape() == Shape{2, 3, 4, 5});
  CHECK(ops::Reshape(x, {-2, 1, 1}).value().shape() == Shape{2, 3, 4, 5, 1, 1});
  CHECK(ops::Reshape(x, {-3, 4, 5}).value().shape() == Shape{6, 4, 5});
  CHECK(ops::Reshape(x, {0, -3, -2}).value().shape() == Shape{2, 12, 5});
  CHECK(ops::Reshape(x, {-3, -3}).value().shape() == Shape{6, 20});
  CHECK(ops::Reshape(x, {-4, 1, 2, -2}).value().shape() == Shape{1, 2, 3, 4, 5});
  CHECK(ops::Reshape(x, {2, -4, -1, 3, -2}).value().shape() == Shape{2, 1, 3, 4, 5});
  CHECK(ops::Reshape(x, {0, 0, -4, 2, -1, 5}).value().shape() == Shape{2, 3, 2, 2, 5});
  CHECK(ops::Reshape(x, {0, -1, 0}).value().shape() == Shape{2, 15, 4});  // -1 consumes dim 1: 0 copies dim 2
  for (const Shape& bad : {Shape{-4, -1, -1, -2}, Shape{-4, 3, 3, -2}, Shape{0, 0, 0, 0, 0}, Shape{-3, -3, -3},
                           Shape{-5}, Shape{-4, 2}, Shape{2, 3, 4}}) {
    INFO(ShapeToString(bad));
    auto r = ops::Reshape(x, bad);
    REQUIRE_FALSE(r.ok());
    CHECK_THAT(r.status().message(), Catch::Contains("[2,3,4,5]"));
  }
  CHECK(ops::SliceAxis(x, 1, 1, 3).value().shape() == Shape{2, 2, 4, 5});
  CHECK(ops::SliceAxis(x, -1, 0, 2).value().shape() == Shape{2, 3, 4, 2});
  CHECK_FALSE(ops::SliceAxis(x, 1, 2, 2).ok());
  CHECK(ops::Transpose(x).value().shape() == Shape{5, 4, 3, 2});
  CHECK(ops::Transpose(x, {0, 2, 3, 1}).value().shape() == Shape{2, 4, 5, 3});
  std::vector<Sym> many(20, x);
  CHECK(ops::Concat(many, 1).value().shape() == Shape{2, 60, 4, 5});
}

TEST_CASE("PReLU: x for x > 0, alpha * x below, alpha learnable", "[graph][prelu]") {
  auto net = std::make_shared<nn::Sequential>();
  auto* prelu = net->Add(nn::Make<nn::PReLU>());
  REQUIRE(net->Initialize().ok());
  Tensor x(DType::kF32, {1, 4}), y;
  std::vector<float> v{-2, -0.5f, 0.5f, 3};
  std::copy(v.begin(), v.end(), x.f32());
  Predictor p(*net);
  REQUIRE(p.Forward(x, &y).ok());
  CHECK(std::vector<float>(y.f32(), y.f32() + 4) == std::vector<float>{-0.5f, -0.125f, 0.5f, 3});
  CHECK(prelu->alpha()->shape() == Shape{1});
}

}  // namespace
}  // namespace kiln::graph
