// Numerics checking (CompileOptions::check_numerics, runtime/check_numerics.h): the first
// NaN or Inf a run's inputs hold or a step writes stops the run with an error naming it
// (issue 12: a NaN pixel in training gave a finite loss and no warning; an all-+Inf input
// to a Predictor returned zeros).
#include <catch2/catch.hpp>

#include <cmath>
#include <limits>

#include "examples/lenet_model.h"
#include "graph/trainer.h"
#include "runtime/check_numerics.h"

namespace kiln::graph {
namespace {

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();
constexpr float kInf = std::numeric_limits<float>::infinity();

std::shared_ptr<nn::Sequential> LeNet() {
  auto net = examples::MakeLeNet();
  Seed(3);
  REQUIRE(net->Initialize(Xavier()).ok());
  return net;
}

Tensor Images(int64_t n, float value) {
  Tensor t(DType::kF32, {n, 1, 28, 28});
  for (int64_t i = 0; i < t.num_elements(); ++i) t.f32()[i] = value * static_cast<float>(i % 7) / 7.f;
  return t;
}

Tensor Labels(int64_t n) {
  Tensor t(DType::kS32, {n});
  for (int64_t i = 0; i < n; ++i) t.s32()[i] = static_cast<int32_t>(i % 10);
  return t;
}

std::vector<float> Weights(nn::Block& net) {
  std::vector<float> w;
  for (auto& [name, p] : net.CollectParams()) {
    Tensor* t = *p->Data();
    w.insert(w.end(), t->f32(), t->f32() + t->num_elements());
  }
  return w;
}

TEST_CASE("FindNonFinite finds the first NaN or Inf and counts them", "[runtime][numerics]") {
  std::vector<float> v(1000, 1.f);
  CHECK_FALSE(runtime::FindNonFinite(v.data(), 1000));
  CHECK_FALSE(runtime::FindNonFinite(v.data(), 0));
  v[999] = -kInf;
  v[417] = kNaN;
  v[600] = std::numeric_limits<float>::max();  // finite
  v[601] = std::numeric_limits<float>::denorm_min();
  auto bad = runtime::FindNonFinite(v.data(), 1000);
  REQUIRE(bad);
  CHECK(bad->index == 417);
  CHECK(std::isnan(bad->value));
  CHECK(bad->count == 2);
  CHECK(runtime::NonFiniteName(v[999]) == "-Inf");
  CHECK(runtime::NonFiniteName(kInf) == "+Inf");
  CHECK(runtime::MultiIndexToString({2, 3, 4, 5}, 1 * 60 + 2 * 20 + 3 * 5 + 4) == "[1,2,3,4]");
}

TEST_CASE("check_numerics names a NaN pixel of a training batch before any step runs", "[graph][numerics]") {
  auto net = LeNet();
  Trainer trainer(*net, "sgd", {{"learning_rate", 0.1}});
  CompileOptions options;
  options.check_numerics = true;
  TrainStep step(*net, SoftmaxCrossEntropyLoss(), trainer, options);
  Tensor data = Images(8, 1.f), label = Labels(8), loss, out;
  REQUIRE(step.Run(data, label, 8, &loss, &out).ok());  // finite data runs
  std::vector<float> before = Weights(*net);
  data.f32()[3 * 784 + 5 * 28 + 7] = kNaN;  // image 3, row 5, column 7
  Status s = step.Run(data, label, 8, &loss, &out);
  CHECK(s.code() == StatusCode::kInvalidArgument);
  CHECK_THAT(s.message(), Catch::Contains("check_numerics: input 'data' f32[8,1,28,28] holds NaN at index 2499 [3,0,5,7]"));
  CHECK(Weights(*net) == before);  // nothing ran
  CHECK(trainer.num_update() == 1);

  // Without the check the same batch trains on silently (what issue 12 saw).
  CompileOptions off;
  TrainStep unchecked(*net, SoftmaxCrossEntropyLoss(), trainer, off);
  CHECK(unchecked.Run(data, label, 8, &loss, &out).ok());
}

TEST_CASE("check_numerics names an all-+Inf Predictor input instead of returning zeros", "[graph][numerics]") {
  auto net = LeNet();
  CompileOptions options;
  options.check_numerics = true;
  Predictor predictor(*net, options);
  Tensor data = Images(2, 1.f), out;
  REQUIRE(predictor.Forward(data, &out).ok());
  for (int64_t i = 0; i < data.num_elements(); ++i) data.f32()[i] = kInf;
  Status s = predictor.Forward(data, &out);
  CHECK(s.code() == StatusCode::kInvalidArgument);
  CHECK_THAT(s.message(), Catch::Contains("input 'data' f32[2,1,28,28] holds +Inf at index 0 [0,0,0,0] (1568 of 1568"));
}

TEST_CASE("check_numerics stops at the first step that overflows and names it", "[graph][numerics]") {
  for (int opt : {0, 2}) {
    INFO("-O" << opt);
    auto net = LeNet();
    // A learning rate near FLT_MAX: the first update overflows every weight with a gradient
    // above 1 to Inf, so the first bad step is the optimizer update.
    Trainer trainer(*net, "sgd", {{"learning_rate", 3e38}});
    CompileOptions options;
    options.check_numerics = true;
    options.opt_level = opt;
    TrainStep step(*net, SoftmaxCrossEntropyLoss(), trainer, options);
    Tensor data = Images(1, 200.f), label = Labels(1), loss, out;
    Status s = step.Run(data, label, 1, &loss, &out);
    CHECK(s.code() == StatusCode::kInvalidArgument);
    INFO(s.message());
    CHECK_THAT(s.message(), Catch::Matches("check_numerics: step [0-9]+ of [0-9]+, op sgd_update node .*, wrote [+-]Inf to "
                                           "output 0 'weight_out' f32\\[.*\\]( \\(parameter '.*'\\))? at (index|element) .*"));
  }
}

TEST_CASE("check_numerics names the forward step that overflows, at -O0 and -O2", "[graph][numerics]") {
  for (int opt : {0, 2}) {
    INFO("-O" << opt);
    auto net = LeNet();
    Parameter* w = nullptr;
    for (auto& [name, p] : net->CollectParams()) {
      if (name == "0.weight") w = p;  // the first convolution's weight
    }
    REQUIRE(w != nullptr);
    Tensor big(DType::kF32, {6, 1, 5, 5});
    for (int64_t i = 0; i < big.num_elements(); ++i) big.f32()[i] = 1e38f;  // finite; 25 of them overflow
    REQUIRE(w->SetData(big).ok());
    CompileOptions options;
    options.check_numerics = true;
    options.opt_level = opt;
    Predictor predictor(*net, options);
    Tensor out;
    Status s = predictor.Forward(Images(2, 1.f), &out);
    CHECK(s.code() == StatusCode::kInvalidArgument);
    CHECK_THAT(s.message(), Catch::Contains("op conv2d node") && Catch::Contains("wrote +Inf to output 0 'dst' f32[2,6,"));
    // Off (the default), the run returns what the kernels computed.
    Predictor unchecked(*net, CompileOptions{.opt_level = opt});
    CHECK(unchecked.Forward(Images(2, 1.f), &out).ok());
  }
}

}  // namespace
}  // namespace kiln::graph
