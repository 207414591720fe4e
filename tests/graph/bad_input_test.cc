// Bad input to the C++ API gets a clear error, never NaN weights or an internal error
// (issue 12's cases that concern the compile-and-run API).
#include <catch2/catch.hpp>

#include <cmath>
#include <filesystem>

#include "examples/lenet_model.h"
#include "graph/trainer.h"

namespace kiln::graph {
namespace {

struct Net {
  std::shared_ptr<nn::Sequential> net = examples::MakeLeNet();
  Net() {
    Seed(3);
    REQUIRE(net->Initialize(Xavier()).ok());
  }
};

bool AllFinite(nn::Block& net) {
  for (auto& [name, p] : net.CollectParams()) {
    Tensor* t = p->data_or_null();
    if (t == nullptr) continue;
    for (int64_t i = 0; i < t->num_elements(); ++i) {
      if (!std::isfinite(t->f32()[i])) return false;
    }
  }
  return true;
}

TEST_CASE("TrainStep refuses batch_size < 1 instead of dividing the gradients by it", "[graph][errors]") {
  Net n;
  Trainer trainer(*n.net, "sgd", {{"learning_rate", 0.1}});
  TrainStep step(*n.net, SoftmaxCrossEntropyLoss(), trainer);
  Tensor data(DType::kF32, {4, 1, 28, 28}), label(DType::kS32, {4}), loss, out;
  for (int64_t bad : {int64_t{0}, int64_t{-4}}) {
    INFO("batch_size " << bad);
    Status s = step.Run(data, label, bad, &loss, &out);
    CHECK(s.code() == StatusCode::kInvalidArgument);
    CHECK_THAT(s.message(), Catch::Contains("batch_size must be >= 1") && Catch::Contains(std::to_string(bad)));
  }
  CHECK(trainer.num_update() == 0);
  CHECK(AllFinite(*n.net));
  REQUIRE(step.Run(data, label, 4, &loss, &out).ok());  // and the step still works
  CHECK(AllFinite(*n.net));
}

TEST_CASE("a batch of 0 rows is an InvalidArgument about the input", "[graph][errors]") {
  Net n;
  Tensor empty(DType::kF32, {0, 1, 28, 28}), label(DType::kS32, {0}), loss, out;
  Trainer trainer(*n.net, "sgd", {});
  TrainStep step(*n.net, SoftmaxCrossEntropyLoss(), trainer);
  Status s = step.Run(empty, label, 1, &loss, &out);
  CHECK(s.code() == StatusCode::kInvalidArgument);
  CHECK_THAT(s.message(), Catch::Contains("f32[0,1,28,28] has no rows"));
  Predictor predictor(*n.net);
  Status p = predictor.Forward(empty, &out);
  CHECK(p.code() == StatusCode::kInvalidArgument);
  CHECK_THAT(p.message(), Catch::Contains("Predictor") && Catch::Contains("has no rows"));
}

TEST_CASE("loading parameters from a directory is an error, not an exception", "[graph][errors]") {
  Net n;
  std::string dir = std::filesystem::temp_directory_path().string();
  Status s = n.net->LoadParameters(dir);
  CHECK(s.code() == StatusCode::kInvalidArgument);
  CHECK_THAT(s.message(), Catch::Contains("is a directory"));
}

TEST_CASE("SetData refuses a value with no elements for a deferred parameter", "[graph][errors]") {
  auto net = examples::MakeLeNet();
  REQUIRE(net->Initialize(Xavier()).ok());  // deferred: the weight is [6,0,5,5] until a batch
  for (auto& [name, p] : net->CollectParams()) {
    if (name != "0.weight") continue;
    Status s = p->SetData(Tensor(DType::kF32, p->shape()));
    CHECK(s.code() == StatusCode::kInvalidArgument);
    CHECK_THAT(s.message(), Catch::Contains("'0.weight'") && Catch::Contains("[6,0,5,5]") &&
                                Catch::Contains("no elements"));
    CHECK(p->SetData(Tensor(DType::kF32, {6, 1, 5, 5})).ok());
  }
}

TEST_CASE("a channel mismatch names the layer input and the graph input that caused it", "[graph][errors]") {
  Net n;  // LeNet, weights fixed for 1-channel images
  Predictor predictor(*n.net);
  Tensor gray(DType::kF32, {2, 1, 28, 28}), rgb(DType::kF32, {2, 3, 28, 28}), out;
  REQUIRE(predictor.Forward(gray, &out).ok());
  Status s = predictor.Forward(rgb, &out);
  CHECK(s.code() == StatusCode::kInvalidArgument);
  CHECK_THAT(s.message(), Catch::Contains("input 'data' f32[2,3,28,28] has 3 channels") &&
                              Catch::Contains("[6,1,5,5]") && Catch::Contains("takes 1"));
  // A mismatch deeper in the network names the layer's input value and the graph input.
  auto net = std::make_shared<nn::Sequential>();
  net->Add(nn::Make<nn::Dense>(8));
  net->Add(nn::Make<nn::Dense>(4, nn::DenseOptions{.in_units = 5}));
  Seed(1);
  REQUIRE(net->Initialize(Xavier()).ok());
  Predictor p2(*net);
  Status d = p2.Forward(Tensor(DType::kF32, {3, 7}), &out);
  CHECK(d.code() == StatusCode::kInvalidArgument);
  CHECK_THAT(d.message(), Catch::Contains("flattens to 8 features") && Catch::Contains("traced from input 'data' f32[3,7]") &&
                              Catch::Contains("takes 5"));
}

}  // namespace
}  // namespace kiln::graph
