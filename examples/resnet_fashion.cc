// A ResNet trained from scratch on Fashion-MNIST through one compiled graph (forward with
// batch statistics, loss, backward, SGD with momentum and the running statistics' update),
// the way a Gluon user trains a CNN with BatchNorm after hybridize(): the small ResNet of
// examples/resnet_fashion_model.h (residual blocks, BatchNorm, global average pooling,
// Dropout), cosine learning-rate decay, then save, reload, re-evaluate, predict and draw the
// first six test images (--picture), plot loss and accuracy per epoch (--plot), and export a
// batch-1 artifact whose batch norms are folded into the convolutions (--artifact).
//
//   bazel run -c opt //examples:resnet_fashion -- --data-dir $PWD/data/fashion-mnist
#include <CLI/CLI.hpp>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <string>

#include "aot/export.h"
#include "examples/fashion_report.h"
#include "examples/resnet_fashion_model.h"
#include "graph/data.h"
#include "graph/idx.h"
#include "graph/trainer.h"
#include "runtime/model.h"
#include "tools/flags.h"

namespace {

using namespace kiln;
using namespace kiln::graph;

void Die(const Status& s, const char* what) {
  std::fprintf(stderr, "error: %s: %s\n", what, s.ToString().c_str());
  std::exit(1);
}

double Evaluate(Predictor& predictor, DataLoader& loader) {
  auto acc = examples::EvaluateAccuracy(predictor, loader);
  if (!acc.ok()) Die(acc.status(), "evaluation");
  return *acc;
}

// Cosine decay from `lr` to 0 over `epochs` (Loshchilov & Hutter 2017, SGDR without
// restarts), per epoch: lr * (1 + cos(pi * epoch / epochs)) / 2.
double CosineLr(double lr, int epoch, int epochs) {
  return lr * 0.5 * (1.0 + std::cos(M_PI * static_cast<double>(epoch) / static_cast<double>(epochs)));
}

// Exports `net` for one image as an artifact (constant weights: batch norms folded into the
// convolutions), reloads it with the compiler-free runtime and compares its logits on the
// first six test images with a frozen Predictor (the same compile: bit-identical) and with
// the plain Predictor (batch norm unfolded: equal up to float rounding).
bool ExportAndCheck(nn::Block& net, DataLoader& test_loader, const std::string& path) {
  std::filesystem::path dir = std::filesystem::path(path).parent_path();
  std::error_code ec;
  if (!dir.empty()) std::filesystem::create_directories(dir, ec);
  aot::ExportOptions options{.model_name = "resnet_fashion"};
  options.compile.constant_params = true;
  auto exported = aot::ExportArtifact(net, {1, 1, 28, 28}, path, options);
  if (!exported.ok()) Die(exported.status(), "export artifact");
  auto model = runtime::Model::Load(path);
  if (!model.ok()) Die(model.status(), "load artifact");
  auto session = (*model)->NewSession();
  if (!session.ok()) Die(session.status(), "artifact session");
  Predictor frozen(net, CompileOptions{.constant_params = true}), plain(net);
  Batch batch;
  test_loader.Reset();
  if (!test_loader.Next(batch)) return false;
  Tensor image(DType::kF32, {1, 1, 28, 28}), want, got, unfolded;
  int same = 0;
  double worst = 0;
  for (int i = 0; i < 6; ++i) {
    std::memcpy(image.data(), batch.data.f32() + i * 784, 784 * sizeof(float));
    if (Status s = frozen.Forward(image, &want); !s.ok()) Die(s, "predict");
    if (Status s = plain.Forward(image, &unfolded); !s.ok()) Die(s, "predict");
    if (Status s = (*session)->Run({&image}, {&got}); !s.ok()) Die(s, "artifact run");
    same += std::memcmp(want.data(), got.data(), static_cast<size_t>(got.size_bytes())) == 0;
    for (int64_t k = 0; k < got.num_elements(); ++k) {
      worst = std::max(worst, static_cast<double>(std::fabs(got.f32()[k] - unfolded.f32()[k])));
    }
  }
  std::printf("exported to %s (%lld bytes, %d steps, batch norms folded); runtime-only reload: %d/6 test images "
              "bit-identical to the frozen Predictor, max |logit difference| to the unfolded one %.2g\n",
              path.c_str(), static_cast<long long>(exported->file_bytes), exported->num_steps, same, worst);
  return same == 6 && worst < 1e-3;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Train a small ResNet on Fashion-MNIST with kiln (BatchNorm, residual blocks, compiled)"};
  std::string data_dir = "data/fashion-mnist", params_path = "resnet-fashion-mnist.params";
  std::string picture_path = "out/resnet_predictions.png", plot_path = "out/resnet_training.png";
  std::string artifact_path = "out/resnet_fashion.kiln";
  int epochs = 12;
  int64_t batch_size = 128, train_images = 0;
  double lr = 0.1, momentum = 0.9, wd = 5e-4, dropout = 0.2;
  uint64_t seed = 42;
  app.add_option("--data-dir", data_dir, "folder with the four standard IDX files");
  app.add_option("--epochs", epochs, "number of epochs")->check(tools::PositiveInt())->capture_default_str();
  app.add_option("--batch-size", batch_size, "images per batch")->check(tools::PositiveInt())->capture_default_str();
  app.add_option("--train-images", train_images, "train on the first N images only (0 = all 60,000)")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--lr", lr, "initial SGD learning rate (cosine decay to 0)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  app.add_option("--momentum", momentum, "SGD momentum")->check(CLI::Range(0.0, 1.0))->capture_default_str();
  app.add_option("--wd", wd, "weight decay")->check(CLI::NonNegativeNumber)->capture_default_str();
  app.add_option("--dropout", dropout, "Dropout rate before the classifier")
      ->check(CLI::Range(0.0, 0.99))
      ->capture_default_str();
  app.add_option("--seed", seed, "seed for initialization, shuffling and the dropout masks");
  app.add_option("--params", params_path, "where to save the trained parameters")->check(tools::FolderExists());
  app.add_option("--artifact", artifact_path, "where to export the trained network as a kiln artifact (batch 1; \"\" = skip)");
  app.add_option("--picture", picture_path, "PNG of the first six test images with true and predicted labels");
  app.add_option("--plot", plot_path, "PNG of the loss and accuracy per epoch");
  bool check_numerics = false;
  tools::AddCheckNumericsFlag(app, &check_numerics);
  if (int code = tools::ParseFlags(app, argc, argv); code >= 0) return code;

  Seed(seed);
  auto train_set = LoadIdxDataset(data_dir, /*train=*/true);
  if (!train_set.ok()) Die(train_set.status(), "loading the training set");
  auto test_set = LoadIdxDataset(data_dir, /*train=*/false);
  if (!test_set.ok()) Die(test_set.status(), "loading the test set");
  if (train_images > 0 && train_images < train_set->size()) {
    train_set->images.count = train_images;
    train_set->images.pixels.resize(static_cast<size_t>(train_images * train_set->images.rows * train_set->images.cols));
    train_set->labels.resize(static_cast<size_t>(train_images));
  }
  std::printf("Fashion-MNIST: %lld training and %lld test images from %s\n", static_cast<long long>(train_set->size()),
              static_cast<long long>(test_set->size()), data_dir.c_str());

  // Fashion-MNIST's pixel mean and standard deviation (training set, on [0, 1]).
  transforms::Compose transform(transforms::ToTensor(), {transforms::Normalize(0.286f, 0.353f)});
  auto train_loader = DataLoader::Create(*train_set, batch_size, /*shuffle=*/true, LastBatch::kKeep, seed, transform);
  auto test_loader = DataLoader::Create(*test_set, 250, /*shuffle=*/false, LastBatch::kKeep, 0, transform);
  if (!train_loader.ok()) Die(train_loader.status(), "data loader");
  if (!test_loader.ok()) Die(test_loader.status(), "data loader");

  auto net = examples::MakeSmallResNet(dropout);
  // He initialization (Xavier "gaussian", "out", magnitude 2: MXNet's MSRAPrelu).
  if (Status s = net->Initialize(Xavier(2.0, "gaussian", "out")); !s.ok()) Die(s, "initialize");
  Trainer trainer(*net, "sgd", {{"learning_rate", lr}, {"momentum", momentum}, {"wd", wd}});
  CompileOptions compile;
  compile.check_numerics = check_numerics;
  TrainStep step(*net, SoftmaxCrossEntropyLoss(), trainer, compile);
  Predictor predictor(*net, compile);

  std::printf("small ResNet, He init, SGD lr %.3g (cosine), momentum %.2g, wd %.2g, dropout %.2g, batch %lld, %d epochs\n",
              lr, momentum, wd, dropout, static_cast<long long>(batch_size), epochs);
  Batch batch;
  Tensor loss, out;
  double best_test = 0, last_test = 0;
  examples::EpochLog log;
  for (int epoch = 0; epoch < epochs; ++epoch) {
    trainer.set_learning_rate(CosineLr(lr, epoch, epochs));
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
    std::printf("epoch %2d: lr %.4f, loss %.4f, train acc %.4f, test acc %.4f, %.2f s, %.0f images/s\n", epoch + 1,
                trainer.learning_rate(), log.loss.back(), log.train_acc.back(), last_test, train_seconds,
                static_cast<double>(seen) / train_seconds);
    std::fflush(stdout);
  }
  // (Parameter shapes are known once the first step has traced the network.)
  int64_t num_params = 0;
  for (const auto& [name, p] : net->CollectParams()) num_params += NumElements(p->shape());
  std::printf("best test acc %.4f, final test acc %.4f (%lld parameters and running statistics)\n", best_test,
              last_test, static_cast<long long>(num_params));

  if (Status s = net->SaveParameters(params_path); !s.ok()) Die(s, "save_parameters");
  auto fresh = examples::MakeSmallResNet(dropout);
  if (Status s = fresh->LoadParameters(params_path); !s.ok()) Die(s, "load_parameters");
  Predictor fresh_predictor(*fresh);
  double reloaded = Evaluate(fresh_predictor, *test_loader);
  std::printf("saved to %s; reloaded into a fresh network: test acc %.4f (%s)\n", params_path.c_str(), reloaded,
              reloaded == last_test ? "same" : "DIFFERENT");
  if (Status s = examples::ReportFirstPredictions(fresh_predictor, *test_loader, *test_set, picture_path); !s.ok()) {
    Die(s, "predicting and drawing the first six test images");
  }
  if (Status s = examples::DrawTrainingCurves(log, plot_path); !s.ok()) Die(s, "drawing the training plot");
  bool artifact_ok = true;
  if (!artifact_path.empty()) artifact_ok = ExportAndCheck(*fresh, *test_loader, artifact_path);
  return reloaded == last_test && artifact_ok ? 0 : 1;
}
