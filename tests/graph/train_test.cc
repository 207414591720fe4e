// A short training run on real Fashion-MNIST data must reach an accuracy bar.
// Needs KILN_DATA_DIR (set by tools/test.sh and CI, which fetch the data first).
#include <catch2/catch.hpp>

#include <cstdlib>

#include "examples/lenet_model.h"
#include "graph/data.h"
#include "graph/idx.h"
#include "graph/trainer.h"
#include "tests/graph/fashion_training.h"

namespace kiln::graph {
namespace {

TEST_CASE("LeNet learns Fashion-MNIST: 12,000 images, 2 epochs, test accuracy > 0.75", "[graph][train][data]") {
  const char* dir = std::getenv("KILN_DATA_DIR");
  if (!dir) {
    if (std::getenv("KILN_REQUIRE_DATA")) FAIL("KILN_DATA_DIR is not set but KILN_REQUIRE_DATA is");
    WARN("KILN_DATA_DIR not set: skipping the real-data training test");
    return;
  }
  auto train = LoadIdxDataset(std::string(dir) + "/fashion-mnist", true);
  auto test = LoadIdxDataset(std::string(dir) + "/fashion-mnist", false);
  REQUIRE(train.ok());
  REQUIRE(test.ok());
  Dataset small_train = testing::Prefix(*train, 12000);
  Dataset small_test = testing::Prefix(*test, 2000);
  transforms::Compose transform(transforms::ToTensor(), {transforms::Normalize(0.13f, 0.31f)});
  auto train_loader = DataLoader::Create(small_train, 64, true, LastBatch::kKeep, 1, transform);
  auto test_loader = DataLoader::Create(small_test, 250, false, LastBatch::kKeep, 0, transform);
  REQUIRE(train_loader.ok());
  REQUIRE(test_loader.ok());

  Seed(1);
  auto net = examples::MakeLeNet();
  REQUIRE(net->Initialize(Xavier()).ok());
  Trainer trainer(*net, "sgd", {{"learning_rate", 0.1}, {"momentum", 0.9}});
  TrainStep step(*net, SoftmaxCrossEntropyLoss(), trainer);
  auto r = testing::TrainAndEvaluate(*net, step, *train_loader, *test_loader, 2);
  REQUIRE(r.status.ok());
  const double first_loss = r.first_loss, last_loss = r.last_loss;
  INFO("epoch losses " << first_loss << " -> " << last_loss << ", test accuracy " << r.accuracy);
  CHECK(last_loss < first_loss);
  CHECK(r.accuracy > 0.75);
}

}  // namespace
}  // namespace kiln::graph
