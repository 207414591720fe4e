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

}  // namespace
}  // namespace kiln::graph
