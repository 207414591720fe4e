// kiln-train: trains a network from a training artifact (kiln compile --train) on an
// MNIST-style IDX data set, with the runtime alone: no compiler, no LLVM, no graph/ model
// code (tests/runtime/runtime_deps_test.cc checks the binary), so it runs where only the
// runtime is deployed (e.g. an accelerator machine without a toolchain).
//
//   kiln compile --model lenet --train --input-shape 256,1,28,28 --lr 0.1 -o lenet-train.kiln
//   kiln-train lenet-train.kiln --data-dir data/fashion-mnist --epochs 10
//       --checkpoint out/lenet.ckpt --save-params out/lenet.params   (one command line)
//
// Each epoch shuffles the training set (seeded), runs one optimizer step per full batch (the
// artifact's batch; the short last batch is dropped, Gluon's last_batch="discard"), then
// evaluates the test set with the artifact's eval program, and prints the main job's line
// (loss, train accuracy, test accuracy, seconds, images/s). --checkpoint is written
// atomically after every epoch (weights, optimizer state, step count: runtime/training.h);
// --resume continues from one (the shuffle order replayed to the epoch it ended). Images are
// ToTensor + Normalize(--mean, --std) as in the main job. Exit codes: 0, 1 when loading,
// training or the accuracy bar (--min-test-acc) fails, 2 for a usage error.
#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>
#include <cstring>

#include "graph/data.h"
#include "graph/idx.h"
#include "runtime/model.h"
#include "runtime/training.h"
#include "tools/flags.h"

namespace {

using namespace kiln;

[[noreturn]] void Die(const Status& s, const char* what) {
  std::fprintf(stderr, "kiln-train: %s: %s\n", what, s.ToString().c_str());
  std::exit(1);
}

// The first `limit` samples of `d` (all when limit <= 0 or larger).
graph::Dataset Head(const graph::Dataset& d, int64_t limit) {
  if (limit <= 0 || limit >= d.size()) return d;
  graph::Dataset h;
  h.images.count = limit;
  h.images.rows = d.images.rows;
  h.images.cols = d.images.cols;
  auto bytes = static_cast<size_t>(limit * d.images.rows * d.images.cols);
  h.images.pixels.assign(d.images.pixels.begin(), d.images.pixels.begin() + static_cast<std::ptrdiff_t>(bytes));
  h.labels.assign(d.labels.begin(), d.labels.begin() + limit);
  return h;
}

// Correct argmax predictions (first maximum wins, as mx.metric.Accuracy) among the first
// `rows` rows of logits [B, C].
int64_t Correct(const Tensor& logits, const Tensor& label, int64_t rows) {
  int64_t classes = logits.shape().at(1), correct = 0;
  for (int64_t i = 0; i < rows; ++i) {
    const float* row = logits.f32() + i * classes;
    int64_t best = 0;
    for (int64_t c = 1; c < classes; ++c) {
      if (row[c] > row[best]) best = c;
    }
    correct += best == label.s32()[i];
  }
  return correct;
}

// Test accuracy with the eval program: batches of its batch; a short last batch is padded
// with zero images whose predictions are not counted.
double Evaluate(runtime::TrainingSession& run, graph::DataLoader& loader) {
  Shape shape = run.eval_input_shape();
  Tensor padded(DType::kF32, shape), logits;
  graph::Batch batch;
  int64_t correct = 0, total = 0;
  loader.Reset();
  while (loader.Next(batch)) {
    int64_t rows = batch.size();
    const Tensor* in = &batch.data;
    if (rows != shape[0]) {
      std::memset(padded.data(), 0, static_cast<size_t>(padded.size_bytes()));
      std::memcpy(padded.data(), batch.data.data(), static_cast<size_t>(batch.data.size_bytes()));
      in = &padded;
    }
    if (Status s = run.Predict(*in, &logits); !s.ok()) Die(s, "evaluating");
    correct += Correct(logits, batch.label, rows);
    total += rows;
  }
  return total ? static_cast<double>(correct) / static_cast<double>(total) : 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"kiln-train: train from a training artifact (kiln compile --train) on IDX data, runtime only"};
  std::string artifact, data_dir, checkpoint, resume, save_params;
  int epochs = 10;
  double lr = -1, mean = 0.13, stddev = 0.31, min_test_acc = -1;
  uint64_t seed = 42;
  int64_t limit_train = 0, limit_test = 0;
  bool check_numerics = false;
  app.add_option("artifact", artifact, "training artifact (.kiln from kiln compile --train)")
      ->required()
      ->check(CLI::ExistingFile);
  app.add_option("--data-dir", data_dir, "folder with train-images-idx3-ubyte, t10k-labels-idx1-ubyte, ...")
      ->required()
      ->check(CLI::ExistingDirectory);
  app.add_option("--epochs", epochs, "epochs to run (after --resume: further epochs)")
      ->check(CLI::Range(0, 100000))
      ->capture_default_str();
  app.add_option("--lr", lr, "learning rate (default: the artifact's, or the checkpoint's)")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--seed", seed, "shuffle seed; also the first dropout seed")->capture_default_str();
  app.add_option("--mean", mean, "Normalize mean after ToTensor")->capture_default_str();
  app.add_option("--std", stddev, "Normalize standard deviation after ToTensor")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--checkpoint", checkpoint, "checkpoint written atomically after every epoch")
      ->check(tools::FolderExists());
  app.add_option("--resume", resume, "checkpoint to continue from")->check(CLI::ExistingFile);
  app.add_option("--save-params", save_params, "weights at the end, .params format (kiln compile --params reads it)")
      ->check(tools::FolderExists());
  app.add_option("--limit-train", limit_train, "use the first N training images only (0 = all)")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--limit-test", limit_test, "use the first N test images only (0 = all)")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--min-test-acc", min_test_acc, "exit 1 when the final test accuracy is below this");
  tools::AddCheckNumericsFlag(app, &check_numerics);
  if (int code = tools::ParseFlags(app, argc, argv); code >= 0) return code;

  runtime::LoadOptions load;
  load.check_numerics = check_numerics;
  auto model = runtime::Model::Load(artifact, load);
  if (!model.ok()) Die(model.status(), "loading the artifact");
  auto created = runtime::TrainingSession::Create(*model);
  if (!created.ok()) Die(created.status(), "opening the training session");
  runtime::TrainingSession& run = **created;
  if (!run.has_eval()) {
    Die(FailedPrecondition("the artifact has no eval program (compiled with --eval-batch -1)"), "evaluating");
  }
  run.set_dropout_seed(static_cast<uint32_t>(seed));
  if (!resume.empty()) {
    if (Status s = run.LoadCheckpoint(resume); !s.ok()) Die(s, "resuming");
  }
  if (lr >= 0) run.set_learning_rate(lr);

  auto train_full = graph::LoadIdxDataset(data_dir, /*train=*/true);
  if (!train_full.ok()) Die(train_full.status(), "loading the training set");
  auto test_full = graph::LoadIdxDataset(data_dir, /*train=*/false);
  if (!test_full.ok()) Die(test_full.status(), "loading the test set");
  graph::Dataset train_set = Head(*train_full, limit_train), test_set = Head(*test_full, limit_test);
  const Shape& shape = run.input_shape();
  if (shape.size() != 4 || shape[1] != 1 || shape[2] != train_set.images.rows || shape[3] != train_set.images.cols) {
    Die(InvalidArgument("the artifact trains on " + ShapeToString(shape) + ", the data set has " +
                        std::to_string(train_set.images.rows) + "x" + std::to_string(train_set.images.cols) +
                        " gray images (N,1,H,W)"),
        "checking the input shape");
  }
  int64_t batch_size = shape[0];
  graph::transforms::Compose transform(graph::transforms::ToTensor(), {graph::transforms::Normalize(static_cast<float>(mean),
                                                                               static_cast<float>(stddev))});
  auto train_loader =
      graph::DataLoader::Create(train_set, batch_size, /*shuffle=*/true, graph::LastBatch::kDiscard, seed, transform);
  auto test_loader = graph::DataLoader::Create(test_set, run.eval_input_shape()[0], /*shuffle=*/false,
                                               graph::LastBatch::kKeep, 0, transform);
  if (!train_loader.ok()) Die(train_loader.status(), "data loader");
  if (!test_loader.ok()) Die(test_loader.status(), "data loader");
  if (train_loader->size() == 0) {
    Die(InvalidArgument("the training set (" + std::to_string(train_set.size()) + " images) is smaller than one batch (" +
                        std::to_string(batch_size) + ")"),
        "data loader");
  }
  // Resuming: the epochs the checkpoint completed replay the shuffle order.
  int64_t first_epoch = run.num_update() / train_loader->size();
  for (int64_t e = 0; e < first_epoch; ++e) train_loader->Reset();

  const runtime::ModelInfo& info = (*model)->info();
  std::printf("%s: %s, %s lr %g, batch %lld, %d epoch%s from step %lld, runtime only (target %s)\n",
              info.name.c_str(), artifact.c_str(), run.optimizer().optimizer.c_str(), run.learning_rate(),
              static_cast<long long>(batch_size), epochs, epochs == 1 ? "" : "s",
              static_cast<long long>(run.num_update()), info.target.c_str());
  std::printf("data: %lld training and %lld test images from %s\n", static_cast<long long>(train_set.size()),
              static_cast<long long>(test_set.size()), data_dir.c_str());
  graph::Batch batch;
  Tensor loss, out;
  double best = 0, last = 0;
  for (int epoch = 0; epoch < epochs; ++epoch) {
    if (epoch > 0) train_loader->Reset();
    double loss_sum = 0;
    int64_t seen = 0, correct = 0;
    auto start = std::chrono::steady_clock::now();
    while (train_loader->Next(batch)) {
      if (Status s = run.Step(batch.data, batch.label, &loss, &out); !s.ok()) Die(s, "training step");
      for (int64_t i = 0; i < loss.num_elements(); ++i) loss_sum += loss.f32()[i];
      correct += Correct(out, batch.label, batch.size());
      seen += batch.size();
    }
    double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    last = Evaluate(run, *test_loader);
    best = std::max(best, last);
    std::printf("epoch %2lld: loss %.4f, train acc %.4f, test acc %.4f, %.2f s, %.0f images/s\n",
                static_cast<long long>(first_epoch + epoch + 1), loss_sum / static_cast<double>(seen),
                static_cast<double>(correct) / static_cast<double>(seen), last, seconds,
                static_cast<double>(seen) / seconds);
    std::fflush(stdout);
    if (!checkpoint.empty()) {
      if (Status s = run.SaveCheckpoint(checkpoint); !s.ok()) Die(s, "writing the checkpoint");
    }
  }
  if (epochs == 0) last = best = Evaluate(run, *test_loader);
  std::printf("best test acc %.4f, final test acc %.4f after %lld steps\n", best, last,
              static_cast<long long>(run.num_update()));
  if (!checkpoint.empty()) std::printf("checkpoint: %s\n", checkpoint.c_str());
  if (!save_params.empty()) {
    if (Status s = run.SaveParameters(save_params); !s.ok()) Die(s, "saving the parameters");
    std::printf("saved the weights to %s\n", save_params.c_str());
  }
  if (min_test_acc >= 0 && last < min_test_acc) {
    std::fprintf(stderr, "kiln-train: final test accuracy %.4f is below --min-test-acc %.4f\n", last, min_test_acc);
    return 1;
  }
  return 0;
}
