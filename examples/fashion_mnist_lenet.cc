// The main job: train LeNet-5 on Fashion-MNIST through one compiled graph (forward, loss,
// backward and SGD update), as the Gluon tutorial does with hybridize(); then save the
// parameters, load them into a fresh network, re-evaluate, predict the first six test
// images and draw them with their true and predicted labels into a PNG (--picture), and draw
// the loss and accuracy per epoch into another PNG (--plot), as the tutorial does with
// matplotlib (examples/plot.h, on cairo).
//
//   bazel run -c opt //examples:fashion_mnist_lenet -- --data-dir data/fashion-mnist
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "aot/export.h"
#include "examples/lenet_model.h"
#include "examples/fashion_report.h"
#include "graph/data.h"
#include "graph/idx.h"
#include "graph/trainer.h"
#include "runtime/model.h"
#include "runtime/streams.h"
#include "tools/flags.h"

namespace {

using namespace kiln;
using namespace kiln::graph;

void Die(const Status& s, const char* what) {
  std::fprintf(stderr, "error: %s: %s\n", what, s.ToString().c_str());
  std::exit(1);
}

// Test-set accuracy of the compiled forward pass (exits on an error).
double Evaluate(Predictor& predictor, DataLoader& loader) {
  auto acc = examples::EvaluateAccuracy(predictor, loader);
  if (!acc.ok()) Die(acc.status(), "evaluation");
  return *acc;
}

// Exports the network's inference graph for one image [1,1,28,28] as an artifact
// (aot::ExportArtifact), loads it with the compiler-free runtime (runtime::Model) and checks
// that its logits on the first six test images are bit-identical to the in-process compile.
bool ExportAndCheck(nn::Block& net, const Batch& batch, const std::string& path) {
  std::filesystem::path dir = std::filesystem::path(path).parent_path();
  std::error_code ec;
  if (!dir.empty()) std::filesystem::create_directories(dir, ec);
  auto exported = aot::ExportArtifact(net, {1, 1, 28, 28}, path, {.model_name = "lenet"});
  if (!exported.ok()) Die(exported.status(), "export artifact");
  auto model = runtime::Model::Load(path);
  if (!model.ok()) Die(model.status(), "load artifact");
  auto session = (*model)->NewSession();
  if (!session.ok()) Die(session.status(), "artifact session");
  Predictor predictor(net);
  Tensor image(DType::kF32, {1, 1, 28, 28}), want, got;
  int same = 0;
  for (int i = 0; i < 6; ++i) {
    std::memcpy(image.data(), batch.data.f32() + i * 784, 784 * sizeof(float));
    if (Status s = predictor.Forward(image, &want); !s.ok()) Die(s, "predict");
    if (Status s = (*session)->Run({&image}, {&got}); !s.ok()) Die(s, "artifact run");
    same += std::memcmp(want.data(), got.data(), static_cast<size_t>(got.size_bytes())) == 0;
  }
  std::printf("exported to %s (%lld bytes, %d steps); runtime-only reload: %d/6 test images bit-identical\n",
              path.c_str(), static_cast<long long>(exported->file_bytes), exported->num_steps, same);
  return same == 6;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Train LeNet-5 on Fashion-MNIST with kiln (the Gluon tutorial, compiled)"};
  std::string data_dir = "data/fashion-mnist", params_path = "lenet-fashion-mnist.params";
  std::string picture_path = "out/predictions.png", plot_path = "out/training.png";
  int epochs = 10;
  int64_t batch_size = 256;
  double lr = 0.1;
  uint64_t seed = 42;
  app.add_option("--data-dir", data_dir, "folder with the four standard IDX files");
  app.add_option("--epochs", epochs, "number of epochs")->check(tools::PositiveInt());
  app.add_option("--batch-size", batch_size, "images per batch")->check(tools::PositiveInt());
  app.add_option("--lr", lr, "SGD learning rate")->check(CLI::NonNegativeNumber);
  app.add_option("--seed", seed, "seed for initialization and shuffling");
  app.add_option("--params", params_path, "where to save the trained parameters")->check(tools::FolderExists());
  std::string artifact_path = "out/lenet.kiln";
  app.add_option("--artifact", artifact_path,
                 "where to export the trained network as a kiln artifact (batch 1; \"\" = skip)");
  app.add_option("--picture", picture_path, "PNG of the first six test images with true and predicted labels");
  app.add_option("--plot", plot_path, "PNG of the loss and accuracy per epoch");
  int streams = 0;
  app.add_option("--streams", streams,
                 "run each batch as this many concurrent sub-batches, one core each (CompileOptions::streams; "
                 "0 = one per OpenMP thread, 1 = off)")
      ->check(CLI::NonNegativeNumber);
  bool check_numerics = false;
  tools::AddCheckNumericsFlag(app, &check_numerics);
  if (int code = tools::ParseFlags(app, argc, argv); code >= 0) return code;
  if (streams <= 0) streams = runtime::MaxThreads();

  Seed(seed);
  auto train_set = LoadIdxDataset(data_dir, /*train=*/true);
  if (!train_set.ok()) Die(train_set.status(), "loading the training set");
  auto test_set = LoadIdxDataset(data_dir, /*train=*/false);
  if (!test_set.ok()) Die(test_set.status(), "loading the test set");
  std::printf("Fashion-MNIST: %lld training and %lld test images from %s\n", static_cast<long long>(train_set->size()),
              static_cast<long long>(test_set->size()), data_dir.c_str());

  transforms::Compose transform(transforms::ToTensor(), {transforms::Normalize(0.13f, 0.31f)});
  auto train_loader = DataLoader::Create(*train_set, batch_size, /*shuffle=*/true, LastBatch::kKeep, seed, transform);
  auto test_loader = DataLoader::Create(*test_set, batch_size, /*shuffle=*/false, LastBatch::kKeep, 0, transform);
  if (!train_loader.ok()) Die(train_loader.status(), "data loader");
  if (!test_loader.ok()) Die(test_loader.status(), "data loader");

  auto net = examples::MakeLeNet();
  if (Status s = net->Initialize(Xavier()); !s.ok()) Die(s, "initialize");
  Trainer trainer(*net, "sgd", {{"learning_rate", lr}});
  CompileOptions compile;
  compile.streams = streams;
  compile.check_numerics = check_numerics;
  TrainStep step(*net, SoftmaxCrossEntropyLoss(), trainer, compile);
  Predictor predictor(*net, compile);

  std::printf("LeNet-5, Xavier init, SGD lr %.3g, batch %lld, %d epochs, %d stream%s\n", lr,
              static_cast<long long>(batch_size), epochs, streams, streams == 1 ? "" : "s");
  Batch batch;
  Tensor loss, out;
  double best_test = 0, last_test = 0;
  examples::EpochLog log;
  for (int epoch = 0; epoch < epochs; ++epoch) {
    Accuracy train_acc;
    double loss_sum = 0;
    int64_t seen = 0, done = 0;
    train_loader->Reset();
    auto start = std::chrono::steady_clock::now();
    while (train_loader->Next(batch)) {
      Status s = step.Run(batch.data, batch.label, batch.size(), &loss, &out);
      if (!s.ok()) Die(s, "training step");
      for (int64_t i = 0; i < loss.num_elements(); ++i) loss_sum += loss.f32()[i];
      seen += batch.size();
      (void)train_acc.Update(batch.label, out);
      examples::PrintProgress(++done, train_loader->size(),
               std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
    }
    double train_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    last_test = Evaluate(predictor, *test_loader);
    best_test = std::max(best_test, last_test);
    log.loss.push_back(loss_sum / static_cast<double>(seen));
    log.train_acc.push_back(train_acc.Get().second);
    log.test_acc.push_back(last_test);
    std::printf("epoch %2d: loss %.4f, train acc %.4f, test acc %.4f, %.2f s, %.0f images/s\n", epoch + 1,
                loss_sum / static_cast<double>(seen), train_acc.Get().second, last_test, train_seconds,
                static_cast<double>(seen) / train_seconds);
    std::fflush(stdout);
  }
  std::printf("best test acc %.4f, final test acc %.4f\n", best_test, last_test);

  if (Status s = net->SaveParameters(params_path); !s.ok()) Die(s, "save_parameters");
  auto fresh = examples::MakeLeNet();
  if (Status s = fresh->LoadParameters(params_path); !s.ok()) Die(s, "load_parameters");
  Predictor fresh_predictor(*fresh);
  double reloaded = Evaluate(fresh_predictor, *test_loader);
  std::printf("saved to %s; reloaded into a fresh network: test acc %.4f (%s)\n", params_path.c_str(), reloaded,
              reloaded == last_test ? "same" : "DIFFERENT");

  // Predictions for the first six test images, and the curves.
  if (Status s = examples::ReportFirstPredictions(fresh_predictor, *test_loader, *test_set, picture_path); !s.ok()) {
    Die(s, "predicting and drawing the first six test images");
  }
  if (!log.loss.empty()) {
    if (Status s = examples::DrawTrainingCurves(log, plot_path); !s.ok()) Die(s, "drawing the training plot");
  }
  test_loader->Reset();
  if (!test_loader->Next(batch)) return 1;
  bool artifact_ok = true;
  if (!artifact_path.empty()) artifact_ok = ExportAndCheck(*fresh, batch, artifact_path);
  return reloaded == last_test && artifact_ok ? 0 : 1;
}
