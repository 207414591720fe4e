// The benchmark models, shared by bench/kiln_bench and tools/kiln_opt.
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "examples/lenet_model.h"
#include "graph/nn.h"
#include "graph/zoo.h"

namespace kiln::bench {

// VGG-11 (configuration "A" of Simonyan & Zisserman, "Very Deep Convolutional Networks for
// Large-Scale Image Recognition", 2015): 3x3 convolutions with padding 1 and ReLU in stacks
// (1,64),(1,128),(2,256),(2,512),(2,512), each followed by 2x2 max pooling, then
// Dense(fc, relu), Dense(fc, relu), Dense(classes). Input [N, 3, H, W] with H, W multiples
// of 32.
inline std::shared_ptr<graph::nn::Sequential> MakeVgg11(int64_t fc = 4096, int64_t classes = 10) {
  using namespace graph::nn;
  auto net = std::make_shared<Sequential>();
  const std::vector<std::pair<int, int64_t>> arch{{1, 64}, {1, 128}, {2, 256}, {2, 512}, {2, 512}};
  for (auto [convs, channels] : arch) {
    for (int i = 0; i < convs; ++i) {
      net->Add(Make<Conv2D>(channels, 3, Conv2DOptions{.padding = {1, 1}, .activation = "relu"}));
    }
    net->Add(Make<MaxPool2D>(2, 2));
  }
  net->Add(Make<Flatten>());
  net->Add(Make<Dense>(fc, DenseOptions{.activation = "relu"}));
  net->Add(Make<Dense>(fc, DenseOptions{.activation = "relu"}));
  net->Add(Make<Dense>(classes));
  return net;
}

// "lenet" ([N,1,28,28] by default), "vgg11" ([N,3,224,224]) or a zoo model (graph/zoo.h,
// 1000 classes, [N,3,224,224]); `image` overrides H = W and `channels` C (0: the default).
// Returns the network and the input shape (NCHW).
inline std::pair<std::shared_ptr<graph::nn::Block>, Shape> MakeModel(const std::string& name, int64_t batch,
                                                                    int64_t image, int64_t fc,
                                                                    int64_t channels = 0) {
  if (name == "lenet") {
    return {examples::MakeLeNet(), Shape{batch, channels ? channels : 1, image ? image : 28, image ? image : 28}};
  }
  Shape shape{batch, channels ? channels : 3, image ? image : 224, image ? image : 224};
  if (name == "vgg11") return {MakeVgg11(fc, 10), shape};
  return {graph::zoo::GetModel(name).value(), shape};  // the flag check admits zoo names only
}

}  // namespace kiln::bench
