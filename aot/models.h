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
// and the model zoo (graph/zoo.h: resnet18_v1, resnet50_v1, mobilenet_v2_1.0,
// mobilenet_v3_small, densenet121, squeezenet1.1, vgg11_bn, googlenet, efficientnet_b0) with
// 1000 classes, input [N,3,H,W] (224x224 as trained on ImageNet; any H, W >= 32).
// Errors: NotFound naming the known models.
StatusOr<std::shared_ptr<graph::nn::Block>> MakeModel(const std::string& name);

// The names MakeModel knows.
std::vector<std::string> ModelNames();

}  // namespace kiln::aot
