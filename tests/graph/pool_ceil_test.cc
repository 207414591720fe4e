// Pooling with ceil_mode (graph/ops.h PoolArgs::ceil_mode, nn::MaxPool2D/AvgPool2D): output
// sizes and values against a direct computation with PyTorch's rule (windows clipped to the
// input, a last window starting in the end padding dropped) and MXNet's ('full': kept), at
// -O0 and -O2; a training step through ceil pooling equals the reference interpreter.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <limits>

#include "graph/nn.h"
#include "graph/ops.h"
#include "graph/trainer.h"
#include "tests/passes/equivalence.h"

namespace kiln::graph {
namespace {

// A block running ops::Pooling with the given arguments.
class PoolBlock : public nn::Block {
 public:
  explicit PoolBlock(ops::PoolArgs a) : a_(std::move(a)) {}
  StatusOr<Sym> Forward(Sym x) override { return ops::Pooling(x, a_, "pool"); }

 private:
  ops::PoolArgs a_;
};

// PyTorch's output size with ceil_mode=True (and the drop rule).
int64_t TorchCeilOut(int64_t in, int64_t k, int64_t s, int64_t p, bool drop) {
  int64_t out = (in + 2 * p - k + s - 1) / s + 1;
  if (drop && (out - 1) * s >= in + p) --out;
  return out;
}

TEST_CASE("ceil_mode pooling matches PyTorch's and MXNet's rules", "[graph][pool][ceil]") {
  struct Case {
    int64_t h, w, k, s, p;
    std::string type;
    ops::CeilMode mode;
  } cases[] = {
      {13, 13, 3, 2, 0, "max", ops::CeilMode::kCeilPytorch},  // squeezenet: 13 -> 6 (floor: 6; 14 -> 7 vs 6)
      {14, 14, 3, 2, 0, "max", ops::CeilMode::kCeilPytorch},
      {14, 9, 3, 2, 1, "max", ops::CeilMode::kCeilPytorch},
      {5, 7, 2, 2, 1, "max", ops::CeilMode::kCeilPytorch},    // the drop rule applies on H
      {14, 11, 3, 2, 0, "avg", ops::CeilMode::kCeilPytorch},  // count_include_pad = false
      {14, 11, 3, 2, 0, "max", ops::CeilMode::kCeilMxnet},    // no window starts in the padding: same sizes
  };
  for (const Case& c : cases) {
    for (int opt : {0, 2}) {
      INFO(c.type << " " << c.h << "x" << c.w << " k" << c.k << " s" << c.s << " p" << c.p << " -O" << opt);
      ops::PoolArgs a{c.type, {c.k, c.k}, {c.s, c.s}, {c.p, c.p}, /*count_include_pad=*/false, c.mode};
      auto net = std::make_shared<nn::Sequential>();
      net->Add(std::make_shared<PoolBlock>(a));
      REQUIRE(net->Initialize(Xavier()).ok());
      Tensor x(DType::kF32, {2, 3, c.h, c.w}), y;
      for (int64_t i = 0; i < x.num_elements(); ++i) x.f32()[i] = std::sin(1.3f * static_cast<float>(i));
      Predictor pred(*net, CompileOptions{.opt_level = opt});
      Status st = pred.Forward(x, &y);
      REQUIRE(st.ok());
      bool drop = c.mode == ops::CeilMode::kCeilPytorch;
      int64_t oh = TorchCeilOut(c.h, c.k, c.s, c.p, drop), ow = TorchCeilOut(c.w, c.k, c.s, c.p, drop);
      REQUIRE(y.shape() == Shape{2, 3, oh, ow});
      for (int64_t nc = 0; nc < 6; ++nc) {
        for (int64_t i = 0; i < oh; ++i) {
          for (int64_t j = 0; j < ow; ++j) {
            int64_t h0 = std::max<int64_t>(i * c.s - c.p, 0), h1 = std::min(i * c.s - c.p + c.k, c.h);
            int64_t w0 = std::max<int64_t>(j * c.s - c.p, 0), w1 = std::min(j * c.s - c.p + c.k, c.w);
            double acc = c.type == "max" ? -std::numeric_limits<double>::infinity() : 0.0;
            for (int64_t hh = h0; hh < h1; ++hh) {
              for (int64_t ww = w0; ww < w1; ++ww) {
                double v = x.f32()[(nc * c.h + hh) * c.w + ww];
                acc = c.type == "max" ? std::max(acc, v) : acc + v;
              }
            }
            if (c.type == "avg") acc /= static_cast<double>((h1 - h0) * (w1 - w0));
            CHECK(y.f32()[(nc * oh + i) * ow + j] == Approx(acc).margin(1e-6));
          }
        }
      }
    }
  }
}

TEST_CASE("ceil_mode layers, and what they refuse", "[graph][pool][ceil]") {
  auto net = std::make_shared<nn::Sequential>();
  net->Add(nn::Make<nn::MaxPool2D>(3, 2, 0, /*ceil_mode=*/true));
  REQUIRE(net->Initialize(Xavier()).ok());
  Predictor p(*net);
  Tensor y;
  REQUIRE(p.Forward(Tensor(DType::kF32, {1, 2, 14, 14}), &y).ok());
  CHECK(y.shape() == Shape{1, 2, 7, 7});  // floor would give 6
  auto avg = std::make_shared<nn::Sequential>();
  avg->Add(nn::Make<nn::AvgPool2D>(3, 2, 0, /*count_include_pad=*/true, /*ceil_mode=*/true));
  REQUIRE(avg->Initialize(Xavier()).ok());
  Predictor q(*avg);
  Status s = q.Forward(Tensor(DType::kF32, {1, 2, 14, 14}), &y);
  CHECK(s.code() == StatusCode::kUnimplemented);
  CHECK_THAT(s.message(), Catch::Contains("count_include_pad"));
}

TEST_CASE("a training step through ceil_mode pooling equals the reference interpreter", "[graph][pool][ceil][train]") {
  auto net = std::make_shared<nn::Sequential>();
  net->Add(nn::Make<nn::Conv2D>(8, 3, nn::Conv2DOptions{.activation = "relu"}));
  net->Add(nn::Make<nn::MaxPool2D>(3, 2, 0, /*ceil_mode=*/true));
  net->Add(nn::Make<nn::AvgPool2D>(2, 2, 0, /*count_include_pad=*/false, /*ceil_mode=*/true));
  net->Add(nn::Make<nn::Dense>(10));
  Seed(8);
  REQUIRE(net->Initialize(Xavier()).ok());
  Trainer trainer(*net, "sgd", {{"learning_rate", 0.1}});
  TrainStep step(*net, SoftmaxCrossEntropyLoss(), trainer, CompileOptions{.opt_level = 0});
  Tensor data(DType::kF32, {2, 3, 12, 12}), label(DType::kS32, {2}), loss, out;
  REQUIRE(step.Run(data, label, 2, &loss, &out).ok());
  ir::Graph g = testing::ParseOrFail(step.graph_text());
  testing::ExpectEquivalent(g, g, 5, {codegen::LowerOptions{false, false, false}, codegen::LowerOptions{true, true, true}},
                            1e-4);
}

}  // namespace
}  // namespace kiln::graph
