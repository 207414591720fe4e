// LeNet-5 as in the Gluon Fashion-MNIST tutorial (d2l "LeNet" with ReLU and max pooling).
#pragma once

#include <memory>

#include "graph/nn.h"

namespace kiln::examples {

// Conv2D(6, 5, relu) -> MaxPool2D(2, 2) -> Conv2D(16, 3, relu) -> MaxPool2D(2, 2) -> Flatten
// -> Dense(120, relu) -> Dense(84, relu) -> Dense(10). Input [N, 1, 28, 28] NCHW, output
// logits [N, 10]. Parameter names: 0.weight, 0.bias, 2.weight, ..., 7.bias.
inline std::shared_ptr<graph::nn::Sequential> MakeLeNet() {
  using namespace graph::nn;
  auto net = std::make_shared<Sequential>();
  net->Add(Make<Conv2D>(6, 5, Conv2DOptions{.activation = "relu"}));
  net->Add(Make<MaxPool2D>(2, 2));
  net->Add(Make<Conv2D>(16, 3, Conv2DOptions{.activation = "relu"}));
  net->Add(Make<MaxPool2D>(2, 2));
  net->Add(Make<Flatten>());
  net->Add(Make<Dense>(120, DenseOptions{.activation = "relu"}));
  net->Add(Make<Dense>(84, DenseOptions{.activation = "relu"}));
  net->Add(Make<Dense>(10));
  return net;
}

}  // namespace kiln::examples
