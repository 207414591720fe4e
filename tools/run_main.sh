#!/usr/bin/env bash
# The main job: install dependencies, fetch Fashion-MNIST, build with optimizations and train
# LeNet-5 through the compiled graph. Extra arguments go to the program (see --help).
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/setup.sh
bash tools/fetch_data.sh data
bazel build -c opt //examples:fashion_mnist_lenet
./bazel-bin/examples/fashion_mnist_lenet --data-dir data/fashion-mnist "$@"
