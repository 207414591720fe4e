// Gluon tutorial "MNIST CNN with layers": Conv2D(20, 5, relu) -> MaxPool2D(2, 2) ->
// Conv2D(50, 5, relu) -> MaxPool2D(2, 2) -> Flatten -> Dense(512, relu) -> Dense(10);
// Xavier(magnitude 2.24); batch 64; SGD learning rate 0.1; a moving-average loss
// (smoothing 0.01) printed with train and test accuracy every epoch.
#pragma once

#include <cstdio>
#include <string>
#include <vector>

#include "base/status.h"

namespace kiln::examples {

struct MnistCnnOptions {
  std::string data_dir = "data/mnist";  // the four IDX files (tools/fetch_data.sh)
  int epochs = 10;
  int64_t batch_size = 64;
  double learning_rate = 0.1;
  double smoothing = 0.01;  // moving-average loss: (1 - s) * moving + s * batch mean
  uint64_t seed = 42;
  std::FILE* log = stdout;  // per-epoch lines; null for silence
};

struct EpochResult {
  double moving_loss = 0, train_accuracy = 0, test_accuracy = 0, seconds = 0;
};

// Trains the network and returns one result per epoch. Errors: data loading and
// compilation errors (naming the file, or the node, op and shapes).
StatusOr<std::vector<EpochResult>> RunMnistCnn(const MnistCnnOptions& options);

}  // namespace kiln::examples
