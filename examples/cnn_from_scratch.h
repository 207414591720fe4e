// Gluon tutorial "CNN from scratch" (the straight dope, chapter 6, cnn-scratch), compiled by
// kiln: explicit weight tensors drawn from N(0, 0.01), nd.Convolution with kernel 3 then 5
// and 20 / 50 filters, average pooling, flatten, two dot products, ReLU, a softmax
// cross-entropy written from log_softmax and one-hot labels, and a hand-written SGD update
// (w = w - lr * grad), all traced into ONE compiled graph per input shape
// (graph/lowlevel.h: Grad, Update, CompiledGraph).
//
//   data [N,1,28,28] -> h1_conv [N,20,26,26] -> h1 avg pool [N,20,13,13]
//   -> h2_conv [N,50,9,9] -> h2 avg pool [N,50,4,4] -> flatten [N,800]
//   -> h3 = relu(dot(h2, W3) + b3) [N,128] -> yhat_linear = dot(h3, W4) + b4 [N,10]
//   loss[n] = -sum_c one_hot(label)[n,c] * log_softmax(yhat_linear)[n,c]
// The gradient is d(sum_n loss[n]) / d(param) (MXNet's loss.backward() on the per-sample
// loss), so the learning rate 0.01 acts on a gradient summed over the batch, as in the
// tutorial. kiln's ops::Dot takes the second operand transposed (W3 is [128, 800], OI, where
// the tutorial has (800, 128)); the math is the same.
#pragma once

#include <cstdio>
#include <ostream>
#include <string>
#include <vector>

#include "base/status.h"

namespace kiln::examples {

struct CnnFromScratchOptions {
  std::string data_dir = "data/mnist";  // the four MNIST IDX files (tools/fetch_data.sh)
  int epochs = 10;
  int64_t batch_size = 64;
  double learning_rate = 0.01;  // on the batch-summed gradient, as the tutorial
  double weight_scale = 0.01;   // N(0, weight_scale) for every weight and bias
  uint64_t seed = 42;
  int64_t max_train_batches = -1;  // > 0: stop each epoch after this many batches (tests)
  std::ostream* shape_log = nullptr;  // debug mode: every traced node's output shape
  std::FILE* log = stdout;            // per-epoch lines; null for silence
};

struct ScratchEpoch {
  double loss = 0;  // mean per-sample loss over the epoch's training batches
  double train_accuracy = 0, test_accuracy = 0;
  double seconds = 0;  // training time of the epoch (compilation included in epoch 1)
  int64_t images = 0;  // training images seen
};

// Loads MNIST, trains and evaluates; one result per epoch. Errors: data loading errors
// (naming the file) and compile/run errors (naming the node, op and shapes).
StatusOr<std::vector<ScratchEpoch>> RunCnnFromScratch(const CnnFromScratchOptions& options);

}  // namespace kiln::examples
