#include "graph/zoo.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <functional>
#include <map>

namespace kiln::graph::zoo {
namespace {

using nn::Block;
using nn::Make;
using nn::Sequential;

// BatchNorm with torchvision's (momentum, eps) in kiln's convention.
struct Norm {
  double torch_momentum = 0.1;
  double eps = 1e-5;
  std::shared_ptr<nn::BatchNorm> Make() const {
    return nn::Make<nn::BatchNorm>(nn::BatchNormOptions{.momentum = 1 - torch_momentum, .epsilon = eps});
  }
};

// A Sequential whose children have names (torchvision's nn.Sequential with an OrderedDict).
class NamedSequential : public Block {
 public:
  template <typename B>
  B* Add(const std::string& name, std::shared_ptr<B> block) {
    return RegisterChild(name, std::move(block));
  }
  StatusOr<Sym> Forward(Sym x) override {
    for (const auto& [name, child] : children()) {
      ASSIGN_OR_RETURN(x, child->Forward(x));
    }
    return x;
  }
};

std::shared_ptr<Block> Act(const std::string& act) {
  if (act == "hard_sigmoid") return Make<nn::HardSigmoid>(1.0 / 6.0, 0.5);  // torch.nn.Hardsigmoid
  return Make<nn::Activation>(act);
}

std::shared_ptr<nn::Conv2D> Conv(int64_t out, int64_t k, int64_t stride = 1, int64_t groups = 1, bool bias = false,
                                 int64_t pad = -1) {
  int64_t p = pad >= 0 ? pad : (k - 1) / 2;
  return Make<nn::Conv2D>(out, k,
                          nn::Conv2DOptions{.strides = {stride, stride}, .padding = {p, p}, .groups = groups,
                                            .use_bias = bias});
}

// torchvision's Conv2dNormActivation: "0" conv (no bias), "1" BatchNorm, "2" activation.
std::shared_ptr<Sequential> ConvNormAct(int64_t out, int64_t k, int64_t stride, int64_t groups, const std::string& act,
                                        const Norm& norm) {
  auto s = Make<Sequential>();
  s->Add(Conv(out, k, stride, groups));
  s->Add(norm.Make());
  if (!act.empty()) s->Add(Act(act));
  return s;
}

// MaxPool2d with PyTorch's ceil_mode rule.
class TorchMaxPool : public Block {
 public:
  TorchMaxPool(int64_t k, int64_t s, int64_t p, bool ceil) : k_(k), s_(s), p_(p), ceil_(ceil) {}
  StatusOr<Sym> Forward(Sym x) override {
    return ops::Pooling(x, ops::PoolArgs{"max", {k_, k_}, {s_, s_}, {p_, p_}, true,
                                         ceil_ ? ops::CeilMode::kCeilPytorch : ops::CeilMode::kFloor},
                        "maxpool");
  }

 private:
  int64_t k_, s_, p_;
  bool ceil_;
};

double Rate(const ZooOptions& o, double model_rate) { return o.dropout >= 0 ? o.dropout : model_rate; }

// torchvision's _make_divisible(v, 8).
int64_t MakeDivisible(double v, int64_t divisor = 8) {
  int64_t n = std::max<int64_t>(divisor, static_cast<int64_t>(v + divisor / 2.0) / divisor * divisor);
  if (static_cast<double>(n) < 0.9 * v) n += divisor;
  return n;
}

// ---- ResNet (torchvision resnet.py) ----

// torchvision's BasicBlock and Bottleneck: conv<i> + bn<i> pairs with a ReLU between them,
// the shortcut ("downsample": a strided 1x1 conv + BN when the shape changes), the residual
// add and a ReLU.
class ResidualBlock : public Block {
 public:
  struct ConvSpec {
    int64_t out, kernel, stride;
  };
  ResidualBlock(int64_t in, const std::vector<ConvSpec>& convs) {
    int64_t stride = 1;
    for (size_t i = 0; i < convs.size(); ++i) {
      const ConvSpec& c = convs[i];
      std::string k = std::to_string(i + 1);
      pairs_.emplace_back(RegisterChild("conv" + k, Conv(c.out, c.kernel, c.stride)), RegisterChild("bn" + k, Norm{}.Make()));
      stride *= c.stride;
    }
    int64_t out = convs.back().out;
    if (stride != 1 || in != out) {
      auto d = Make<Sequential>();
      d->Add(Conv(out, 1, stride));
      d->Add(Norm{}.Make());
      downsample_ = RegisterChild("downsample", d);
    }
  }
  StatusOr<Sym> Forward(Sym x) override {
    Sym y = x;
    for (size_t i = 0; i < pairs_.size(); ++i) {
      ASSIGN_OR_RETURN(y, pairs_[i].first->Forward(y));
      ASSIGN_OR_RETURN(y, pairs_[i].second->Forward(y));
      if (i + 1 < pairs_.size()) {
        ASSIGN_OR_RETURN(y, ops::Relu(y));
      }
    }
    Sym shortcut = x;
    if (downsample_) {
      ASSIGN_OR_RETURN(shortcut, downsample_->Forward(x));
    }
    ASSIGN_OR_RETURN(y, ops::Add(y, shortcut, "residual"));
    return ops::Relu(y);
  }

 private:
  std::vector<std::pair<Block*, Block*>> pairs_;  // (conv, bn)
  Block* downsample_ = nullptr;
};

class BasicBlock : public ResidualBlock {
 public:
  static constexpr int64_t kExpansion = 1;
  BasicBlock(int64_t in, int64_t planes, int64_t stride) : ResidualBlock(in, {{planes, 3, stride}, {planes, 3, 1}}) {}
};

// The stride on the 3x3 convolution (torchvision's "v1.5").
class Bottleneck : public ResidualBlock {
 public:
  static constexpr int64_t kExpansion = 4;
  Bottleneck(int64_t in, int64_t planes, int64_t stride)
      : ResidualBlock(in, {{planes, 1, 1}, {planes, 3, stride}, {planes * kExpansion, 1, 1}}) {}
};

template <typename B>
class ResNet : public Block {
 public:
  ResNet(std::array<int, 4> layers, int64_t classes) {
    conv1_ = RegisterChild("conv1", Conv(64, 7, 2));
    bn1_ = RegisterChild("bn1", Norm{}.Make());
    int64_t in = 64;
    for (int i = 0; i < 4; ++i) {
      int64_t planes = 64 << i;
      auto layer = Make<Sequential>();
      for (int b = 0; b < layers[static_cast<size_t>(i)]; ++b) {
        layer->Add(Make<B>(in, planes, b == 0 && i > 0 ? 2 : 1));
        in = planes * B::kExpansion;
      }
      layers_.push_back(RegisterChild("layer" + std::to_string(i + 1), layer));
    }
    fc_ = RegisterChild("fc", Make<nn::Dense>(classes));
  }
  StatusOr<Sym> Forward(Sym x) override {
    ASSIGN_OR_RETURN(Sym y, conv1_->Forward(x));
    ASSIGN_OR_RETURN(y, bn1_->Forward(y));
    ASSIGN_OR_RETURN(y, ops::Relu(y));
    ASSIGN_OR_RETURN(y, pool_.Forward(y));
    for (Block* l : layers_) {
      ASSIGN_OR_RETURN(y, l->Forward(y));
    }
    ASSIGN_OR_RETURN(y, avgpool_.Forward(y));
    return fc_->Forward(y);
  }

 private:
  Block *conv1_, *bn1_, *fc_;
  std::vector<Block*> layers_;
  TorchMaxPool pool_{3, 2, 1, false};
  nn::GlobalAvgPool2D avgpool_;
};

// ---- Squeeze and excitation (torchvision.ops.SqueezeExcitation) ----

class SqueezeExcitation : public Block {
 public:
  SqueezeExcitation(int64_t channels, int64_t squeeze, std::string act, std::string scale_act)
      : act_(Act(act)), scale_(Act(scale_act)) {
    fc1_ = RegisterChild("fc1", Conv(squeeze, 1, 1, 1, /*bias=*/true));
    fc2_ = RegisterChild("fc2", Conv(channels, 1, 1, 1, /*bias=*/true));
  }
  StatusOr<Sym> Forward(Sym x) override {
    ASSIGN_OR_RETURN(Sym s, pool_.Forward(x));
    ASSIGN_OR_RETURN(s, fc1_->Forward(s));
    ASSIGN_OR_RETURN(s, act_->Forward(s));
    ASSIGN_OR_RETURN(s, fc2_->Forward(s));
    ASSIGN_OR_RETURN(s, scale_->Forward(s));
    return ops::Mul(x, s, "se_scale");  // [N,C,H,W] * [N,C,1,1]
  }

 private:
  nn::GlobalAvgPool2D pool_;
  Block *fc1_, *fc2_;
  std::shared_ptr<Block> act_, scale_;
};

// A block `body` (child `body_name`) with an identity shortcut when `residual`.
class MaybeResidual : public Block {
 public:
  MaybeResidual(const std::string& body_name, std::shared_ptr<Block> body, bool residual) : residual_(residual) {
    body_ = RegisterChild(body_name, std::move(body));
  }
  StatusOr<Sym> Forward(Sym x) override {
    ASSIGN_OR_RETURN(Sym y, body_->Forward(x));
    if (!residual_) return y;
    return ops::Add(y, x, "residual");
  }

 private:
  Block* body_;
  bool residual_;
};

// Features, global average pooling, classifier (mobilenets, efficientnet, densenet).
class FeaturesPoolClassifier : public Block {
 public:
  FeaturesPoolClassifier(std::shared_ptr<Block> features, std::shared_ptr<Block> classifier, bool relu_first = false)
      : relu_first_(relu_first) {
    features_ = RegisterChild("features", std::move(features));
    classifier_ = RegisterChild("classifier", std::move(classifier));
  }
  StatusOr<Sym> Forward(Sym x) override {
    ASSIGN_OR_RETURN(Sym y, features_->Forward(x));
    if (relu_first_) {
      ASSIGN_OR_RETURN(y, ops::Relu(y));
    }
    ASSIGN_OR_RETURN(y, pool_.Forward(y));
    ASSIGN_OR_RETURN(y, ops::Flatten(y));
    return classifier_->Forward(y);
  }

 private:
  Block *features_, *classifier_;
  nn::GlobalAvgPool2D pool_;
  bool relu_first_;
};

std::shared_ptr<Sequential> DropoutLinear(double rate, int64_t classes) {
  auto c = Make<Sequential>();
  c->Add(Make<nn::Dropout>(rate));
  c->Add(Make<nn::Dense>(classes));
  return c;
}

// ---- MobileNetV2 (torchvision mobilenetv2.py) ----

std::shared_ptr<Block> MobileNetV2(const ZooOptions& o) {
  const int settings[7][4] = {{1, 16, 1, 1}, {6, 24, 2, 2}, {6, 32, 3, 2}, {6, 64, 4, 2},
                              {6, 96, 3, 1}, {6, 160, 3, 2}, {6, 320, 1, 1}};
  Norm norm;
  auto features = Make<Sequential>();
  int64_t in = 32;
  features->Add(ConvNormAct(in, 3, 2, 1, "relu6", norm));
  for (const auto& s : settings) {
    for (int i = 0; i < s[2]; ++i) {
      int64_t stride = i == 0 ? s[3] : 1, out = s[1];
      auto hidden = static_cast<int64_t>(std::lround(static_cast<double>(in) * s[0]));
      auto conv = Make<Sequential>();
      if (s[0] != 1) conv->Add(ConvNormAct(hidden, 1, 1, 1, "relu6", norm));
      conv->Add(ConvNormAct(hidden, 3, stride, hidden, "relu6", norm));
      conv->Add(Conv(out, 1));
      conv->Add(norm.Make());
      features->Add(Make<MaybeResidual>("conv", conv, stride == 1 && in == out));
      in = out;
    }
  }
  features->Add(ConvNormAct(1280, 1, 1, 1, "relu6", norm));
  return Make<FeaturesPoolClassifier>(features, DropoutLinear(Rate(o, 0.2), o.classes));
}

// ---- MobileNetV3 small (torchvision mobilenetv3.py) ----

std::shared_ptr<Block> MobileNetV3Small(const ZooOptions& o) {
  struct Conf {
    int64_t in, k, exp, out;
    bool se;
    const char* act;
    int64_t stride;
  };
  const Conf confs[] = {{16, 3, 16, 16, true, "relu", 2},         {16, 3, 72, 24, false, "relu", 2},
                        {24, 3, 88, 24, false, "relu", 1},        {24, 5, 96, 40, true, "hard_swish", 2},
                        {40, 5, 240, 40, true, "hard_swish", 1},  {40, 5, 240, 40, true, "hard_swish", 1},
                        {40, 5, 120, 48, true, "hard_swish", 1},  {48, 5, 144, 48, true, "hard_swish", 1},
                        {48, 5, 288, 96, true, "hard_swish", 2},  {96, 5, 576, 96, true, "hard_swish", 1},
                        {96, 5, 576, 96, true, "hard_swish", 1}};
  Norm norm{0.01, 0.001};
  auto features = Make<Sequential>();
  features->Add(ConvNormAct(16, 3, 2, 1, "hard_swish", norm));
  for (const Conf& c : confs) {
    auto block = Make<Sequential>();
    if (c.exp != c.in) block->Add(ConvNormAct(c.exp, 1, 1, 1, c.act, norm));
    block->Add(ConvNormAct(c.exp, c.k, c.stride, c.exp, c.act, norm));
    if (c.se) block->Add(Make<SqueezeExcitation>(c.exp, MakeDivisible(static_cast<double>(c.exp / 4)), "relu", "hard_sigmoid"));
    block->Add(ConvNormAct(c.out, 1, 1, 1, "", norm));
    features->Add(Make<MaybeResidual>("block", block, c.stride == 1 && c.in == c.out));
  }
  features->Add(ConvNormAct(576, 1, 1, 1, "hard_swish", norm));
  auto classifier = Make<Sequential>();
  classifier->Add(Make<nn::Dense>(1024));
  classifier->Add(Make<nn::HardSwish>());
  classifier->Add(Make<nn::Dropout>(Rate(o, 0.2)));
  classifier->Add(Make<nn::Dense>(o.classes));
  return Make<FeaturesPoolClassifier>(features, classifier);
}

// ---- EfficientNet-B0 (torchvision efficientnet.py) ----

std::shared_ptr<Block> EfficientNetB0(const ZooOptions& o) {
  const int settings[7][6] = {{1, 3, 1, 32, 16, 1},   {6, 3, 2, 16, 24, 2},   {6, 5, 2, 24, 40, 2},
                              {6, 3, 2, 40, 80, 3},   {6, 5, 1, 80, 112, 3},  {6, 5, 2, 112, 192, 4},
                              {6, 3, 1, 192, 320, 1}};
  Norm norm;
  auto features = Make<Sequential>();
  features->Add(ConvNormAct(32, 3, 2, 1, "silu", norm));
  for (const auto& s : settings) {
    auto stage = Make<Sequential>();
    int64_t in = s[3];
    for (int i = 0; i < s[5]; ++i) {
      int64_t stride = i == 0 ? s[2] : 1, out = s[4], exp = MakeDivisible(static_cast<double>(in * s[0]));
      auto block = Make<Sequential>();
      if (exp != in) block->Add(ConvNormAct(exp, 1, 1, 1, "silu", norm));
      block->Add(ConvNormAct(exp, s[1], stride, exp, "silu", norm));
      block->Add(Make<SqueezeExcitation>(exp, std::max<int64_t>(1, in / 4), "silu", "sigmoid"));
      block->Add(ConvNormAct(out, 1, 1, 1, "", norm));
      stage->Add(Make<MaybeResidual>("block", block, stride == 1 && in == out));
      in = out;
    }
    features->Add(stage);
  }
  features->Add(ConvNormAct(1280, 1, 1, 1, "silu", norm));
  return Make<FeaturesPoolClassifier>(features, DropoutLinear(Rate(o, 0.2), o.classes));
}

// ---- DenseNet-121 (torchvision densenet.py) ----

class DenseBlock : public Block {
 public:
  DenseBlock(int layers, int64_t growth, int64_t bn_size) {
    for (int i = 0; i < layers; ++i) {
      auto l = Make<NamedSequential>();
      l->Add("norm1", Norm{}.Make());
      l->Add("relu1", Make<nn::Activation>("relu"));
      l->Add("conv1", Conv(bn_size * growth, 1));
      l->Add("norm2", Norm{}.Make());
      l->Add("relu2", Make<nn::Activation>("relu"));
      l->Add("conv2", Conv(growth, 3));
      layers_.push_back(RegisterChild("denselayer" + std::to_string(i + 1), l));
    }
  }
  // torchvision concatenates [input, new_1, ..., new_k] before every layer; joining one new
  // tensor at a time gives the same tensors.
  StatusOr<Sym> Forward(Sym x) override {
    for (Block* l : layers_) {
      ASSIGN_OR_RETURN(Sym y, l->Forward(x));
      ASSIGN_OR_RETURN(x, ops::Concat({x, y}, 1, "dense_concat"));
    }
    return x;
  }

 private:
  std::vector<Block*> layers_;
};

std::shared_ptr<Block> DenseNet121(const ZooOptions& o) {
  const int blocks[4] = {6, 12, 24, 16};
  const int64_t growth = 32, bn_size = 4;
  auto f = Make<NamedSequential>();
  f->Add("conv0", Conv(64, 7, 2));
  f->Add("norm0", Norm{}.Make());
  f->Add("relu0", Make<nn::Activation>("relu"));
  f->Add("pool0", Make<TorchMaxPool>(3, 2, 1, false));
  int64_t c = 64;
  for (int i = 0; i < 4; ++i) {
    f->Add("denseblock" + std::to_string(i + 1), Make<DenseBlock>(blocks[i], growth, bn_size));
    c += blocks[i] * growth;
    if (i != 3) {
      auto t = Make<NamedSequential>();
      t->Add("norm", Norm{}.Make());
      t->Add("relu", Make<nn::Activation>("relu"));
      t->Add("conv", Conv(c / 2, 1));
      t->Add("pool", Make<nn::AvgPool2D>(2, 2));
      f->Add("transition" + std::to_string(i + 1), t);
      c /= 2;
    }
  }
  f->Add("norm5", Norm{}.Make());
  auto classifier = Make<nn::Dense>(o.classes);
  // classifier is a Linear (not a Sequential) in torchvision: "classifier.weight".
  return Make<FeaturesPoolClassifier>(f, classifier, /*relu_first=*/true);
}

// ---- SqueezeNet 1.1 (torchvision squeezenet.py) ----

class Fire : public Block {
 public:
  Fire(int64_t squeeze, int64_t e1, int64_t e3) {
    squeeze_ = RegisterChild("squeeze", Conv(squeeze, 1, 1, 1, true));
    e1_ = RegisterChild("expand1x1", Conv(e1, 1, 1, 1, true));
    e3_ = RegisterChild("expand3x3", Conv(e3, 3, 1, 1, true));
  }
  StatusOr<Sym> Forward(Sym x) override {
    ASSIGN_OR_RETURN(Sym s, squeeze_->Forward(x));
    ASSIGN_OR_RETURN(s, ops::Relu(s));
    ASSIGN_OR_RETURN(Sym a, e1_->Forward(s));
    ASSIGN_OR_RETURN(a, ops::Relu(a));
    ASSIGN_OR_RETURN(Sym b, e3_->Forward(s));
    ASSIGN_OR_RETURN(b, ops::Relu(b));
    return ops::Concat({a, b}, 1, "fire_concat");
  }

 private:
  Block *squeeze_, *e1_, *e3_;
};

class FeaturesClassifier : public Block {
 public:
  FeaturesClassifier(std::shared_ptr<Block> features, std::shared_ptr<Block> middle, std::shared_ptr<Block> classifier)
      : middle_(std::move(middle)) {
    features_ = RegisterChild("features", std::move(features));
    classifier_ = RegisterChild("classifier", std::move(classifier));
  }
  StatusOr<Sym> Forward(Sym x) override {
    ASSIGN_OR_RETURN(Sym y, features_->Forward(x));
    if (middle_) {
      ASSIGN_OR_RETURN(y, middle_->Forward(y));
    }
    ASSIGN_OR_RETURN(y, classifier_->Forward(y));
    return ops::Flatten(y);
  }

 private:
  Block *features_, *classifier_;
  std::shared_ptr<Block> middle_;
};

std::shared_ptr<Block> SqueezeNet11(const ZooOptions& o) {
  auto f = Make<Sequential>();
  f->Add(Conv(64, 3, 2, 1, true, 0));
  f->Add(Make<nn::Activation>("relu"));
  f->Add(Make<TorchMaxPool>(3, 2, 0, true));
  f->Add(Make<Fire>(16, 64, 64));
  f->Add(Make<Fire>(16, 64, 64));
  f->Add(Make<TorchMaxPool>(3, 2, 0, true));
  f->Add(Make<Fire>(32, 128, 128));
  f->Add(Make<Fire>(32, 128, 128));
  f->Add(Make<TorchMaxPool>(3, 2, 0, true));
  f->Add(Make<Fire>(48, 192, 192));
  f->Add(Make<Fire>(48, 192, 192));
  f->Add(Make<Fire>(64, 256, 256));
  f->Add(Make<Fire>(64, 256, 256));
  auto c = Make<Sequential>();
  c->Add(Make<nn::Dropout>(Rate(o, 0.5)));
  c->Add(Conv(o.classes, 1, 1, 1, true));
  c->Add(Make<nn::Activation>("relu"));
  c->Add(Make<nn::GlobalAvgPool2D>());
  return Make<FeaturesClassifier>(f, nullptr, c);
}

// ---- VGG-11 with BatchNorm (torchvision vgg.py, configuration "A") ----

std::shared_ptr<Block> Vgg11Bn(const ZooOptions& o) {
  const int cfg[] = {64, 0, 128, 0, 256, 256, 0, 512, 512, 0, 512, 512, 0};  // 0: max pooling
  auto f = Make<Sequential>();
  for (int v : cfg) {
    if (v == 0) {
      f->Add(Make<nn::MaxPool2D>(2, 2));
    } else {
      f->Add(Conv(v, 3, 1, 1, /*bias=*/true));
      f->Add(Norm{}.Make());
      f->Add(Make<nn::Activation>("relu"));
    }
  }
  auto c = Make<Sequential>();
  double rate = Rate(o, 0.5);
  c->Add(Make<nn::Dense>(4096));
  c->Add(Make<nn::Activation>("relu"));
  c->Add(Make<nn::Dropout>(rate));
  c->Add(Make<nn::Dense>(4096));
  c->Add(Make<nn::Activation>("relu"));
  c->Add(Make<nn::Dropout>(rate));
  c->Add(Make<nn::Dense>(o.classes));
  return Make<FeaturesClassifier>(f, Make<AdaptiveAvgPool2D>(7), c);
}

// ---- GoogLeNet (torchvision googlenet.py, without the auxiliary classifiers) ----

std::shared_ptr<Block> BasicConv(int64_t out, int64_t k, int64_t stride = 1) {
  auto s = Make<NamedSequential>();
  s->Add("conv", Conv(out, k, stride));
  s->Add("bn", Norm{0.1, 0.001}.Make());
  s->Add("relu", Make<nn::Activation>("relu"));
  return s;
}

std::shared_ptr<Block> Inception(int64_t c1, int64_t c3r, int64_t c3, int64_t c5r, int64_t c5, int64_t pool) {
  // nn::HybridConcurrent names its children 0..3; torchvision's are branch1..branch4.
  class Branches : public Block {
   public:
    Branches(std::vector<std::pair<std::string, std::shared_ptr<Block>>> bs) {
      for (auto& [n, blk] : bs) list_.push_back(RegisterChild(n, blk));
    }
    StatusOr<Sym> Forward(Sym x) override {
      std::vector<Sym> outs;
      for (Block* blk : list_) {
        ASSIGN_OR_RETURN(Sym y, blk->Forward(x));
        outs.push_back(y);
      }
      return ops::Concat(outs, 1, "inception_concat");
    }

   private:
    std::vector<Block*> list_;
  };
  auto b2 = Make<Sequential>();
  b2->Add(BasicConv(c3r, 1));
  b2->Add(BasicConv(c3, 3));
  auto b3 = Make<Sequential>();
  b3->Add(BasicConv(c5r, 1));
  b3->Add(BasicConv(c5, 3));
  auto b4 = Make<Sequential>();
  b4->Add(Make<TorchMaxPool>(3, 1, 1, true));
  b4->Add(BasicConv(pool, 1));
  return Make<Branches>(std::vector<std::pair<std::string, std::shared_ptr<Block>>>{
      {"branch1", BasicConv(c1, 1)}, {"branch2", b2}, {"branch3", b3}, {"branch4", b4}});
}

std::shared_ptr<Block> GoogLeNet(const ZooOptions& o) {
  auto n = Make<NamedSequential>();
  n->Add("conv1", BasicConv(64, 7, 2));
  n->Add("maxpool1", Make<TorchMaxPool>(3, 2, 0, true));
  n->Add("conv2", BasicConv(64, 1));
  n->Add("conv3", BasicConv(192, 3));
  n->Add("maxpool2", Make<TorchMaxPool>(3, 2, 0, true));
  n->Add("inception3a", Inception(64, 96, 128, 16, 32, 32));
  n->Add("inception3b", Inception(128, 128, 192, 32, 96, 64));
  n->Add("maxpool3", Make<TorchMaxPool>(3, 2, 0, true));
  n->Add("inception4a", Inception(192, 96, 208, 16, 48, 64));
  n->Add("inception4b", Inception(160, 112, 224, 24, 64, 64));
  n->Add("inception4c", Inception(128, 128, 256, 24, 64, 64));
  n->Add("inception4d", Inception(112, 144, 288, 32, 64, 64));
  n->Add("inception4e", Inception(256, 160, 320, 32, 128, 128));
  n->Add("maxpool4", Make<TorchMaxPool>(2, 2, 0, true));
  n->Add("inception5a", Inception(256, 160, 320, 32, 128, 128));
  n->Add("inception5b", Inception(384, 192, 384, 48, 128, 128));
  n->Add("avgpool", Make<nn::GlobalAvgPool2D>());
  n->Add("dropout", Make<nn::Dropout>(Rate(o, 0.2)));
  n->Add("fc", Make<nn::Dense>(o.classes));
  return n;
}

using Factory = std::function<std::shared_ptr<Block>(const ZooOptions&)>;
const std::vector<std::pair<std::string, Factory>>& Factories() {
  static const auto* f = new std::vector<std::pair<std::string, Factory>>{
      {"resnet18_v1", [](const ZooOptions& o) { return std::make_shared<ResNet<BasicBlock>>(std::array<int, 4>{2, 2, 2, 2}, o.classes); }},
      {"resnet50_v1", [](const ZooOptions& o) { return std::make_shared<ResNet<Bottleneck>>(std::array<int, 4>{3, 4, 6, 3}, o.classes); }},
      {"mobilenet_v2_1.0", MobileNetV2},
      {"mobilenet_v3_small", MobileNetV3Small},
      {"densenet121", DenseNet121},
      {"squeezenet1.1", SqueezeNet11},
      {"vgg11_bn", Vgg11Bn},
      {"googlenet", GoogLeNet},
      {"efficientnet_b0", EfficientNetB0},
  };
  return *f;
}

}  // namespace

const std::vector<std::string>& ModelNames() {
  static const auto* names = [] {
    auto* n = new std::vector<std::string>();
    for (const auto& [name, f] : Factories()) n->push_back(name);
    return n;
  }();
  return *names;
}

StatusOr<std::shared_ptr<nn::Block>> GetModel(const std::string& name, const ZooOptions& options) {
  if (options.classes < 1) return InvalidArgument("zoo: classes must be >= 1, got " + std::to_string(options.classes));
  if (options.dropout >= 1) return InvalidArgument("zoo: dropout must be < 1, got " + std::to_string(options.dropout));
  for (const auto& [n, f] : Factories()) {
    if (n == name) return f(options);
  }
  std::string known;
  for (const auto& n : ModelNames()) known += (known.empty() ? "" : ", ") + n;
  return NotFound("zoo: no model '" + name + "'; known models: " + known);
}

Status InitializeLikeTorchvision(nn::Block& net, const std::string& name) {
  (void)name;
  Xavier kaiming(2.0, "gaussian", "out");  // std = sqrt(2 / fan_out), kaiming_normal_(mode="fan_out")
  Normal linear(0.01);
  for (auto& [pname, p] : net.CollectParams()) {
    RETURN_IF_ERROR(p->Initialize(p->shape().size() == 4 ? static_cast<const Initializer&>(kaiming) : linear));
  }
  return OkStatus();
}

StatusOr<Sym> AdaptiveAvgPool2D::Forward(Sym x) {
  if (x.shape().size() != 4) {
    return InvalidArgument("AdaptiveAvgPool2D: input must be NCHW (rank 4), got " + ShapeToString(x.shape()));
  }
  int64_t h = x.shape()[2], w = x.shape()[3];
  if (h == output_ && w == output_) return x;
  if (h == 1 && w == 1) {
    Shape s = x.shape();
    s[2] = s[3] = output_;
    return x.tracer->Emit("broadcast_to", {x}, ir::Attrs{{"shape", s}}, "adaptive_avgpool");
  }
  if (h % output_ == 0 && w % output_ == 0) {
    return ops::Pooling(x, ops::PoolArgs{"avg", {h / output_, w / output_}, {h / output_, w / output_}, {0, 0}, true},
                        "adaptive_avgpool");
  }
  return Unimplemented("AdaptiveAvgPool2D(" + std::to_string(output_) + "): input " + ShapeToString(x.shape()) +
                       " is neither 1x1 nor divisible by the output size (overlapping adaptive windows are not "
                       "supported)");
}

}  // namespace kiln::graph::zoo
