// MNIST CNN with layers (Gluon tutorial), compiled by kiln.
//   bash tools/setup.sh && bash tools/fetch_data.sh data
//   bazel run -c opt //examples:mnist_cnn -- --data-dir $PWD/data/mnist
#include <CLI/CLI.hpp>

#include "examples/mnist_cnn.h"

int main(int argc, char** argv) {
  kiln::examples::MnistCnnOptions o;
  CLI::App app{"MNIST CNN with Gluon-like layers, compiled by kiln"};
  app.add_option("--data-dir", o.data_dir, "folder with the four MNIST IDX files");
  app.add_option("--epochs", o.epochs, "number of epochs");
  app.add_option("--batch-size", o.batch_size, "images per batch");
  app.add_option("--lr", o.learning_rate, "SGD learning rate");
  app.add_option("--seed", o.seed, "seed for initialization and shuffling");
  CLI11_PARSE(app, argc, argv);
  auto r = kiln::examples::RunMnistCnn(o);
  if (!r.ok()) {
    std::fprintf(stderr, "error: %s\n", r.status().ToString().c_str());
    return 1;
  }
  return 0;
}
