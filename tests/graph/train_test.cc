// A short training run on real Fashion-MNIST data must reach an accuracy bar.
// Needs KILN_DATA_DIR (set by tools/test.sh and CI, which fetch the data first).
#include <catch2/catch.hpp>

#include <cstdlib>

#include "examples/lenet_model.h"
#include "graph/data.h"
#include "graph/idx.h"
#include "graph/trainer.h"

namespace kiln::graph {
namespace {

// The first `n` samples of `d`.
Dataset Prefix(const Dataset& d, int64_t n) {
  Dataset out = d;
  out.images.count = n;
  out.images.pixels.resize(static_cast<size_t>(n * d.images.rows * d.images.cols));
  out.labels.resize(static_cast<size_t>(n));
  return out;
}

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
  Dataset small_train = Prefix(*train, 12000);
  Dataset small_test = Prefix(*test, 2000);
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
  Batch batch;
  Tensor loss, out;
  double first_loss = -1, last_loss = 0;
  for (int epoch = 0; epoch < 2; ++epoch) {
    train_loader->Reset();
    double sum = 0;
    int64_t n = 0;
    while (train_loader->Next(batch)) {
      REQUIRE(step.Run(batch.data, batch.label, batch.size(), &loss, &out).ok());
      for (int64_t i = 0; i < loss.num_elements(); ++i) sum += loss.f32()[i];
      n += batch.size();
    }
    if (first_loss < 0) first_loss = sum / static_cast<double>(n);
    last_loss = sum / static_cast<double>(n);
  }
  Predictor predictor(*net);
  Accuracy acc;
  test_loader->Reset();
  while (test_loader->Next(batch)) {
    REQUIRE(predictor.Forward(batch.data, &out).ok());
    REQUIRE(acc.Update(batch.label, out).ok());
  }
  INFO("epoch losses " << first_loss << " -> " << last_loss << ", test accuracy " << acc.Get().second);
  CHECK(last_loss < first_loss);
  CHECK(acc.Get().second > 0.75);
}

}  // namespace
}  // namespace kiln::graph
