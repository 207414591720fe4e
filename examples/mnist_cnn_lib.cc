#include <chrono>

#include "examples/mnist_cnn.h"
#include "graph/data.h"
#include "graph/idx.h"
#include "graph/trainer.h"

namespace kiln::examples {

using namespace kiln::graph;

StatusOr<std::vector<EpochResult>> RunMnistCnn(const MnistCnnOptions& o) {
  Seed(o.seed);
  ASSIGN_OR_RETURN(Dataset train, LoadIdxDataset(o.data_dir, true));
  ASSIGN_OR_RETURN(Dataset test, LoadIdxDataset(o.data_dir, false));
  transforms::Compose to_tensor;  // ToTensor only, as the tutorial
  ASSIGN_OR_RETURN(DataLoader train_loader, DataLoader::Create(train, o.batch_size, true, LastBatch::kKeep, o.seed, to_tensor));
  ASSIGN_OR_RETURN(DataLoader test_loader, DataLoader::Create(test, o.batch_size, false, LastBatch::kKeep, 0, to_tensor));

  nn::Sequential net;
  net.Add(nn::Make<nn::Conv2D>(20, 5, nn::Conv2DOptions{.activation = "relu"}));
  net.Add(nn::Make<nn::MaxPool2D>(2, 2));
  net.Add(nn::Make<nn::Conv2D>(50, 5, nn::Conv2DOptions{.activation = "relu"}));
  net.Add(nn::Make<nn::MaxPool2D>(2, 2));
  net.Add(nn::Make<nn::Flatten>());
  net.Add(nn::Make<nn::Dense>(512, nn::DenseOptions{.activation = "relu"}));
  net.Add(nn::Make<nn::Dense>(10));
  RETURN_IF_ERROR(net.Initialize(Xavier(2.24)));
  Trainer trainer(net, "sgd", {{"learning_rate", o.learning_rate}});
  TrainStep step(net, SoftmaxCrossEntropyLoss(), trainer);
  Predictor predictor(net);

  std::vector<EpochResult> results;
  Batch batch;
  Tensor loss, out;
  double moving_loss = 0;
  bool first = true;
  for (int e = 0; e < o.epochs; ++e) {
    auto start = std::chrono::steady_clock::now();
    Accuracy train_acc, test_acc;
    train_loader.Reset();
    while (train_loader.Next(batch)) {
      RETURN_IF_ERROR(step.Run(batch.data, batch.label, batch.size(), &loss, &out));
      double mean = 0;
      for (int64_t i = 0; i < loss.num_elements(); ++i) mean += loss.f32()[i];
      mean /= static_cast<double>(loss.num_elements());
      moving_loss = first ? mean : (1 - o.smoothing) * moving_loss + o.smoothing * mean;
      first = false;
      RETURN_IF_ERROR(train_acc.Update(batch.label, out));
    }
    double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    test_loader.Reset();
    while (test_loader.Next(batch)) {
      RETURN_IF_ERROR(predictor.Forward(batch.data, &out));
      RETURN_IF_ERROR(test_acc.Update(batch.label, out));
    }
    EpochResult r{moving_loss, train_acc.Get().second, test_acc.Get().second, seconds};
    results.push_back(r);
    if (o.log) {
      std::fprintf(o.log, "Epoch %d. Loss: %.5f, Train_acc %.4f, Test_acc %.4f (%.2f s, %.0f images/s)\n", e,
                   r.moving_loss, r.train_accuracy, r.test_accuracy, seconds,
                   static_cast<double>(train.size()) / seconds);
      std::fflush(o.log);
    }
  }
  return results;
}

}  // namespace kiln::examples
