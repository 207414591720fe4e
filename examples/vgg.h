// Gluon tutorial "VGG: very deep networks with repeating blocks" (the straight dope,
// chapter 7), compiled by kiln: vgg_block(num_convs, channels) and vgg_stack(architecture)
// builder functions returning HybridSequential, then Flatten, Dense(4096, relu),
// Dense(4096, relu), Dense(10); Xavier(magnitude 2.24) initialization; SGD.
// The tutorial puts Dropout(0.5) after each Dense(4096); kiln has no dropout op, so the
// classifier is built without it (see docs/gluon-parity.md).
// Every kiln block is hybridized: each (network, loss, backward, update) compiles to one graph.
#pragma once

#include <cstdio>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "base/tensor.h"
#include "graph/idx.h"
#include "graph/nn.h"

namespace kiln::examples {

// ((num_convs, channels), ...) per block.
using VggArchitecture = std::vector<std::pair<int, int64_t>>;
// VGG-16 (the tutorial's architecture) and VGG-11.
inline const VggArchitecture kVgg16 = {{2, 64}, {2, 128}, {3, 256}, {3, 512}, {3, 512}};
inline const VggArchitecture kVgg11 = {{1, 64}, {1, 128}, {2, 256}, {2, 512}, {2, 512}};

// vgg_block: num_convs x Conv2D(channels, 3, padding 1, relu), then MaxPool2D(2, 2): halves
// H and W (floor). Input [N, C, H, W] NCHW -> [N, channels, H/2, W/2].
std::shared_ptr<graph::nn::HybridSequential> VggBlock(int num_convs, int64_t channels);
// vgg_stack: one vgg_block per entry, in order. [N, C, H, W] -> [N, last channels, H/32, W/32]
// for 5 blocks.
std::shared_ptr<graph::nn::HybridSequential> VggStack(const VggArchitecture& architecture);
// The whole network: vgg_stack, Flatten, Dense(dense_units, relu) twice, Dense(classes).
// Output: logits [N, classes].
std::shared_ptr<graph::nn::HybridSequential> MakeVgg(const VggArchitecture& architecture, int64_t classes = 10,
                                                     int64_t dense_units = 4096);

// Images [first, first + count) of `data` (uint8 28x28) as a VGG input: ToTensor,
// Normalize(0.286, 0.353) (Fashion-MNIST statistics), bilinear transforms::Resize to
// size x size, and the one channel replicated to 3: f32 [count, 3, size, size] NCHW; labels
// s32 [count]. Indices wrap around the data set. Errors: InvalidArgument for count < 1 or
// size < 1.
StatusOr<std::pair<Tensor, Tensor>> VggBatch(const graph::Dataset& data, int64_t first, int64_t count, int64_t size);

struct VggOptions {
  std::string data_dir = "data/fashion-mnist";
  uint64_t seed = 42;
  std::FILE* log = stdout;  // progress lines; null for silence
  // Part 1: VGG-16 at 3 x size x size: a timed forward pass, then `steps` SGD steps on one
  // fixed batch of real training images (the loss must fall as the batch is fitted).
  int64_t size = 224;
  int64_t batch_size = 2;
  int steps = 5;
  double lr = 0.01;
  // Part 2: VGG-11 at 3 x small_size x small_size, He-initialized (Xavier gaussian, 'in',
  // magnitude 2), trained with SGD + momentum on the shuffled training set for small_steps
  // steps, then evaluated on the first test_images test images.
  int64_t small_size = 32;
  int64_t small_batch_size = 16;
  int small_steps = 400;
  double small_lr = 0.005;
  double small_momentum = 0.9;  // Trainer 'sgd' momentum (Gluon's option)
  int64_t test_images = 1000;
};

struct Vgg16Result {
  Shape output_shape;             // [batch_size, 10]
  int64_t num_parameters = 0;     // 134,301,514 for VGG-16 with 10 classes
  double forward_seconds = 0;     // one forward pass after compilation (best of 2)
  double compile_seconds = 0;     // first forward: trace, passes, lowering, primitive creation
  std::vector<double> losses;     // mean loss of the batch at each step, before its update
  std::vector<double> step_seconds;  // per training step (the first includes compilation)
};

struct Vgg11Result {
  std::vector<double> losses;     // mean loss of each step's batch
  double seconds_per_step = 0;    // steady state (steps after the first)
  double test_accuracy = 0;
};

// Part 1 on any architecture (the example uses kVgg16, the tutorial's; Xavier(2.24) as the
// tutorial): a timed forward pass on options.batch_size training images at
// 3 x size x size, then options.steps SGD steps (learning rate options.lr) on that batch.
// steps = 0 runs the forward pass only.
// Errors: data loading, compilation and run errors (naming node, op, shapes).
StatusOr<Vgg16Result> RunVggOnFixedBatch(const VggArchitecture& architecture, const VggOptions& options);
// Part 2 (VGG-11 at a small size).
StatusOr<Vgg11Result> RunVgg11(const VggOptions& options);

}  // namespace kiln::examples
