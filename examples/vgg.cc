// VGG with repeating blocks (Gluon tutorial), compiled by kiln: VGG-16 at 3x224x224 (a timed
// forward pass and a few SGD steps on real images) and VGG-11 at 3x32x32 (bounded training).
//   bazel run -c opt //examples:vgg -- --data-dir $PWD/data/fashion-mnist
#include <CLI/CLI.hpp>

#include "examples/vgg.h"

int main(int argc, char** argv) {
  kiln::examples::VggOptions o;
  CLI::App app{"VGG-16 / VGG-11 built from vgg_block and vgg_stack, on Fashion-MNIST resized to 3 channels"};
  app.add_option("--data-dir", o.data_dir, "folder with the four Fashion-MNIST IDX files");
  app.add_option("--size", o.size, "VGG-16 input height and width");
  app.add_option("--batch-size", o.batch_size, "VGG-16 batch");
  app.add_option("--steps", o.steps, "VGG-16 training steps on one fixed batch (0: forward only)");
  app.add_option("--lr", o.lr, "VGG-16 SGD learning rate");
  app.add_option("--small-size", o.small_size, "VGG-11 input height and width");
  app.add_option("--small-batch-size", o.small_batch_size, "VGG-11 batch");
  app.add_option("--small-steps", o.small_steps, "VGG-11 training steps (0: skip VGG-11)");
  app.add_option("--small-lr", o.small_lr, "VGG-11 SGD learning rate");
  app.add_option("--small-momentum", o.small_momentum, "VGG-11 SGD momentum");
  app.add_option("--test-images", o.test_images, "VGG-11 test images to evaluate");
  app.add_option("--seed", o.seed, "seed for initialization and shuffling");
  CLI11_PARSE(app, argc, argv);
  auto big = kiln::examples::RunVggOnFixedBatch(kiln::examples::kVgg16, o);
  if (!big.ok()) {
    std::fprintf(stderr, "error: %s\n", big.status().ToString().c_str());
    return 1;
  }
  if (o.small_steps > 0) {
    auto small = kiln::examples::RunVgg11(o);
    if (!small.ok()) {
      std::fprintf(stderr, "error: %s\n", small.status().ToString().c_str());
      return 1;
    }
  }
  return 0;
}
