// Gluon tutorial "a user-defined block": a Net class with its own layers and forward
// (conv 6 and 16 with kernel 5, max pooling, Dense 120, 84, 10), parameters initialized
// lazily on the first forward pass, one training step on a dummy 10x1x32x32 batch.
#pragma once

#include <memory>
#include <string>

#include "graph/nn.h"

namespace kiln::examples {

class CustomNet : public graph::nn::Block {
 public:
  CustomNet() {
    using namespace graph::nn;
    conv1_ = RegisterChild("conv1", Make<Conv2D>(6, 5, Conv2DOptions{.activation = "relu"}));
    pool1_ = RegisterChild("pool1", Make<MaxPool2D>(2));
    conv2_ = RegisterChild("conv2", Make<Conv2D>(16, 5, Conv2DOptions{.activation = "relu"}));
    pool2_ = RegisterChild("pool2", Make<MaxPool2D>(2));
    fc1_ = RegisterChild("fc1", Make<Dense>(120, DenseOptions{.activation = "relu"}));
    fc2_ = RegisterChild("fc2", Make<Dense>(84, DenseOptions{.activation = "relu"}));
    fc3_ = RegisterChild("fc3", Make<Dense>(10));
  }

  // x [N, 1, 32, 32] -> logits [N, 10].
  StatusOr<graph::Sym> Forward(graph::Sym x) override {
    ASSIGN_OR_RETURN(x, (*conv1_)(x));
    ASSIGN_OR_RETURN(x, (*pool1_)(x));
    ASSIGN_OR_RETURN(x, (*conv2_)(x));
    ASSIGN_OR_RETURN(x, (*pool2_)(x));
    ASSIGN_OR_RETURN(x, graph::ops::Flatten(x));
    ASSIGN_OR_RETURN(x, (*fc1_)(x));
    ASSIGN_OR_RETURN(x, (*fc2_)(x));
    return (*fc3_)(x);
  }

  graph::nn::Conv2D* conv1() { return conv1_; }

 private:
  graph::nn::Conv2D *conv1_, *conv2_;
  graph::nn::MaxPool2D *pool1_, *pool2_;
  graph::nn::Dense *fc1_, *fc2_, *fc3_;
};

}  // namespace kiln::examples
