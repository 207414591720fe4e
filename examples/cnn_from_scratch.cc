// CNN from scratch with low-level ops (Gluon tutorial), compiled by kiln as one graph.
//   bash tools/setup.sh && bash tools/fetch_data.sh data
//   bazel run -c opt //examples:cnn_from_scratch -- --data-dir $PWD/data/mnist [--debug]
#include <CLI/CLI.hpp>
#include <iostream>

#include "examples/cnn_from_scratch.h"

int main(int argc, char** argv) {
  kiln::examples::CnnFromScratchOptions o;
  bool debug = false;
  CLI::App app{"CNN from scratch: explicit weights, one-hot cross-entropy and a hand-written SGD, one compiled graph"};
  app.add_option("--data-dir", o.data_dir, "folder with the four MNIST IDX files");
  app.add_option("--epochs", o.epochs, "number of epochs");
  app.add_option("--batch-size", o.batch_size, "images per batch");
  app.add_option("--lr", o.learning_rate, "SGD learning rate (on the batch-summed gradient)");
  app.add_option("--weight-scale", o.weight_scale, "standard deviation of the initial weights");
  app.add_option("--seed", o.seed, "seed for initialization and shuffling");
  app.add_flag("--debug", debug, "print the shape of every intermediate value of the traced step");
  CLI11_PARSE(app, argc, argv);
  if (debug) o.shape_log = &std::cout;
  auto r = kiln::examples::RunCnnFromScratch(o);
  if (!r.ok()) {
    std::fprintf(stderr, "error: %s\n", r.status().ToString().c_str());
    return 1;
  }
  return 0;
}
