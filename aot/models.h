// Networks `kiln compile --model NAME` can build (kiln graphs are declared in C++, so the
// command-line compiler picks a builder by name and loads trained parameters into it).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "base/status.h"
#include "graph/nn.h"

namespace kiln::aot {

// "lenet":     LeNet-5 of the Fashion-MNIST tutorial (examples/lenet_model.h), input [N,1,28,28].
// "mnist_cnn": the Gluon MNIST CNN tutorial (Conv 20x5 relu, pool, Conv 50x5 relu, pool,
//              Dense 512 relu, Dense 10), input [N,1,28,28].
// "mlp":       Flatten -> Dense(16, relu) -> Dense(10), any input (small; tests and fuzz seeds).
// Errors: NotFound naming the known models.
StatusOr<std::shared_ptr<graph::nn::Block>> MakeModel(const std::string& name);

// The names MakeModel knows.
std::vector<std::string> ModelNames();

}  // namespace kiln::aot
