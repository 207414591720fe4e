// A small ResNet for 28x28 grayscale images (Fashion-MNIST), from He et al. 2016
// ("Deep Residual Learning for Image Recognition", the CIFAR-style networks of section 4.2):
// a 3x3 stem, one basic block per stage at 16, 32 and 64 channels (stages 2 and 3 halve
// the resolution with a strided projection shortcut), global average pooling, Dropout and
// a Dense classifier. Used by examples/resnet_fashion.cc and tests/graph/resnet_fashion_test.cc.
#pragma once

#include <memory>

#include "graph/nn.h"
#include "graph/ops.h"

namespace kiln::examples {

// conv3x3(stride)-BN-relu-conv3x3-BN plus the shortcut (identity, or a strided 1x1 conv + BN
// when the shape changes), then relu: ResNet's basic block. Convolutions have no bias (the
// BatchNorm's shift plays its part). Input and output NCHW; children "body" and "shortcut".
class ResidualUnit : public graph::nn::Block {
 public:
  ResidualUnit(int64_t channels, int64_t stride, bool project) {
    using namespace graph::nn;
    auto conv = [](int64_t c, int64_t k, int64_t s) {
      return Make<Conv2D>(c, k, Conv2DOptions{.strides = {s, s}, .padding = {k / 2, k / 2}, .use_bias = false});
    };
    auto body = Make<Sequential>();
    body->Add(conv(channels, 3, stride));
    body->Add(Make<BatchNorm>());
    body->Add(Make<Activation>("relu"));
    body->Add(conv(channels, 3, 1));
    body->Add(Make<BatchNorm>());
    body_ = RegisterChild("body", body);
    if (project) {
      auto s = Make<Sequential>();
      s->Add(conv(channels, 1, stride));
      s->Add(Make<BatchNorm>());
      shortcut_ = RegisterChild("shortcut", s);
    }
  }
  StatusOr<graph::Sym> Forward(graph::Sym x) override {
    ASSIGN_OR_RETURN(graph::Sym y, body_->Forward(x));
    graph::Sym s = x;
    if (shortcut_) {
      ASSIGN_OR_RETURN(s, shortcut_->Forward(x));
    }
    ASSIGN_OR_RETURN(y, graph::ops::Add(y, s, "residual"));
    return graph::ops::Relu(y);
  }

 private:
  graph::nn::Block* body_;
  graph::nn::Block* shortcut_ = nullptr;
};

// Input [N, 1, 28, 28] NCHW -> logits [N, 10]: Conv2D(16, 3, pad 1, no bias) -> BatchNorm ->
// relu -> ResidualUnit(16) -> ResidualUnit(32, stride 2, 14x14) -> ResidualUnit(64, stride 2,
// 7x7) -> GlobalAvgPool2D -> Dropout(dropout) -> Dense(10). 0.18 M parameters.
inline std::shared_ptr<graph::nn::Sequential> MakeSmallResNet(double dropout = 0.2) {
  using namespace graph::nn;
  auto net = std::make_shared<Sequential>();
  net->Add(Make<Conv2D>(16, 3, Conv2DOptions{.padding = {1, 1}, .use_bias = false}));
  net->Add(Make<BatchNorm>());
  net->Add(Make<Activation>("relu"));
  net->Add(Make<ResidualUnit>(16, 1, false));
  net->Add(Make<ResidualUnit>(32, 2, true));
  net->Add(Make<ResidualUnit>(64, 2, true));
  net->Add(Make<GlobalAvgPool2D>());
  net->Add(Make<Dropout>(dropout));
  net->Add(Make<Dense>(10));
  return net;
}

}  // namespace kiln::examples
