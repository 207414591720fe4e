// batch_norm, batch_norm_training, batch_norm_backward, moving_average and dropout
// (ir/ops/batch_norm.cc, ir/ops/dropout.cc): gradients against central finite differences
// in double (the batch-statistics backward through mean and variance included), references
// on hand-computed cases, the dropout mask's statistics and reproducibility, and shape
// errors naming the node.
#include <catch2/catch.hpp>

#include <cmath>

#include "ir/builder.h"
#include "ir/interpreter.h"
#include "tests/ir/grad_check.h"

namespace kiln::ir {
namespace {

using testing::RandomRef;

TensorType F32(Shape s, std::string layout = "") { return TensorType{DType::kF32, std::move(s), std::move(layout)}; }

struct NormGraph {
  Graph g{"norm"};
  RefEnv env;
  ValueId src = -1, scale = -1, shift = -1, mean = -1, var = -1;
};

// src [shape], scale/shift random, mean random, variance in [0.5, 1.5]; output "y" = dst of
// `op` (batch_norm with five inputs, batch_norm_training with three).
NormGraph MakeNorm(const std::string& op, const Shape& shape, uint32_t seed, Attrs attrs = {}) {
  std::mt19937 rng(seed);
  NormGraph n;
  Builder b(n.g);
  int64_t c = shape[1];
  n.src = n.g.AddInput("src", F32(shape, DefaultLayout(static_cast<int64_t>(shape.size()))));
  n.scale = n.g.AddInput("scale", F32({c}, "C"));
  n.shift = n.g.AddInput("shift", F32({c}, "C"));
  n.env[n.src] = RandomRef(shape, rng, -2, 2);
  n.env[n.scale] = RandomRef({c}, rng, 0.5, 2);
  n.env[n.shift] = RandomRef({c}, rng);
  std::vector<ValueId> ins{n.src, n.scale, n.shift};
  if (op == "batch_norm") {
    n.mean = n.g.AddInput("mean", F32({c}, "C"));
    n.var = n.g.AddInput("variance", F32({c}, "C"));
    n.env[n.mean] = RandomRef({c}, rng);
    n.env[n.var] = RandomRef({c}, rng, 0.5, 1.5);
    ins.push_back(n.mean);
    ins.push_back(n.var);
  }
  auto outs = b.Emit(op, ins, attrs);
  REQUIRE(outs.ok());
  n.g.AddOutput("y", (*outs)[0]);
  return n;
}

TEST_CASE("batch_norm_training gradients (through the batch statistics) match finite differences",
          "[ops][batch_norm][grad]") {
  for (const Shape& shape : {Shape{4, 3, 3, 5}, Shape{6, 4}, Shape{1, 2, 7, 1}}) {
    NormGraph n = MakeNorm("batch_norm_training", shape, 11, Attrs{{"epsilon", 1e-3}});
    std::mt19937 rng(12);
    auto res = testing::CheckGradients(n.g, n.env, {n.src, n.scale, n.shift}, rng);
    INFO(ShapeToString(shape) << ": " << res.worst);
    CHECK(res.checked > 0);
    CHECK(res.max_rel_error < 1e-6);
  }
}

TEST_CASE("batch_norm (running statistics) gradients match finite differences", "[ops][batch_norm][grad]") {
  NormGraph n = MakeNorm("batch_norm", {3, 4, 2, 3}, 21);
  std::mt19937 rng(22);
  auto res = testing::CheckGradients(n.g, n.env, {n.src, n.scale, n.shift}, rng);
  INFO(res.worst);
  CHECK(res.checked > 0);
  CHECK(res.max_rel_error < 1e-6);
}

TEST_CASE("batch_norm_training and batch_norm references on hand-computed cases", "[ops][batch_norm]") {
  // One channel, values 1, 2, 3, 4: mean 2.5, biased variance 1.25.
  Graph g("bn");
  Builder b(g);
  ValueId x = g.AddInput("x", F32({2, 1, 1, 2}, "NCHW"));
  ValueId s = g.AddInput("s", F32({1}, "C"));
  ValueId t = g.AddInput("t", F32({1}, "C"));
  auto outs = b.Emit("batch_norm_training", {x, s, t}, Attrs{{"epsilon", 0.25}}).value();
  ValueId rm = g.AddInput("rm", F32({1}, "C"));
  ValueId avg = b.Emit1("moving_average", {rm, outs[1]}, Attrs{{"momentum", 0.9}}).value();
  RefEnv env;
  env[x] = RefTensor({2, 1, 1, 2});
  env[x].data = {1, 2, 3, 4};
  env[s] = RefTensor({1});
  env[s].data = {2};
  env[t] = RefTensor({1});
  env[t].data = {1};
  env[rm] = RefTensor({1});
  env[rm].data = {10};
  REQUIRE(RunReference(g, env).ok());
  CHECK(env.at(outs[1])[0] == Approx(2.5));
  CHECK(env.at(outs[2])[0] == Approx(1.25));
  // (x - 2.5) / sqrt(1.25 + 0.25) * 2 + 1.
  for (int i = 0; i < 4; ++i) CHECK(env.at(outs[0])[i] == Approx((i + 1 - 2.5) / std::sqrt(1.5) * 2 + 1));
  CHECK(env.at(avg)[0] == Approx(0.9 * 10 + 0.1 * 2.5));

  // Inference with fused ReLU: max(0, (x - mean) / sqrt(var + eps) * scale + shift).
  NormGraph n = MakeNorm("batch_norm", {2, 3, 2, 2}, 5, Attrs{{"activation", std::string("relu")}});
  REQUIRE(RunReference(n.g, n.env).ok());
  const RefTensor& y = n.env.at(*n.g.FindOutput("y"));
  for (int64_t i = 0; i < y.size(); ++i) {
    int64_t c = (i / 4) % 3;
    double want = (n.env[n.src][i] - n.env[n.mean][c]) / std::sqrt(n.env[n.var][c] + 1e-5) * n.env[n.scale][c] +
                  n.env[n.shift][c];
    CHECK(y[i] == Approx(std::max(0.0, want)));
  }
}

TEST_CASE("batch_norm shape and attribute errors name the node and shapes", "[ops][batch_norm][infer]") {
  Graph g("bad");
  Builder b(g);
  ValueId x = g.AddInput("x", F32({2, 3, 4, 4}, "NCHW"));
  ValueId c4 = g.AddInput("c4", F32({4}, "C"));
  ValueId c3 = g.AddInput("c3", F32({3}, "C"));
  auto r = b.Emit("batch_norm_training", {x, c4, c3}, {}, "bn1");
  REQUIRE_FALSE(r.ok());
  CHECK_THAT(r.status().message(), Catch::Contains("bn1") && Catch::Contains("batch_norm_training") &&
                                       Catch::Contains("[3]") && Catch::Contains("[2,3,4,4]"));
  auto e = b.Emit("batch_norm", {x, c3, c3, c3, c3}, Attrs{{"epsilon", 0.0}}, "bn2");
  REQUIRE_FALSE(e.ok());
  CHECK_THAT(e.status().message(), Catch::Contains("bn2") && Catch::Contains("epsilon"));
  ValueId flat = g.AddInput("flat", F32({5}, "N"));
  CHECK_FALSE(b.Emit("batch_norm_training", {flat, c3, c3}).ok());
}

RefTensor RunDropout(const RefTensor& x, int32_t seed, double rate, int64_t salt, std::vector<int64_t> axes = {}) {
  Graph g("dropout");
  Builder b(g);
  ValueId in = g.AddInput("x", F32(x.shape, DefaultLayout(static_cast<int64_t>(x.shape.size()))));
  ValueId s = g.AddInput("seed", TensorType{DType::kS32, {}, ""});
  Attrs attrs{{"rate", rate}, {"salt", salt}};
  if (!axes.empty()) attrs.Set("axes", axes);
  ValueId y = b.Emit1("dropout", {in, s}, attrs).value();
  RefEnv env;
  env[in] = x;
  env[s] = RefTensor(Shape{});
  env[s][0] = seed;
  REQUIRE(RunReference(g, env).ok());
  return env.at(y);
}

TEST_CASE("dropout: the kept fraction, the mean, and a mask reproducible from the seed", "[ops][dropout]") {
  RefTensor ones(Shape{200, 500});
  for (double& v : ones.data) v = 1;
  const double rate = 0.3;
  RefTensor a = RunDropout(ones, 7, rate, 0);
  int64_t kept = 0;
  double sum = 0;
  for (double v : a.data) {
    if (v != 0) {
      ++kept;
      CHECK(v == Approx(1 / (1 - rate)));
    }
    sum += v;
  }
  // 100000 Bernoulli(0.7) draws: the standard deviation of the kept fraction is 0.0014.
  double n = static_cast<double>(a.size());
  CHECK(std::abs(static_cast<double>(kept) / n - (1 - rate)) < 0.006);
  CHECK(std::abs(sum / n - 1.0) < 0.01);  // inverted dropout preserves the mean
  // The same seed and salt give the same mask; another seed or salt another one.
  CHECK(RunDropout(ones, 7, rate, 0).data == a.data);
  CHECK(RunDropout(ones, 8, rate, 0).data != a.data);
  CHECK(RunDropout(ones, 7, rate, 1).data != a.data);
  // rate 0 is the identity.
  CHECK(RunDropout(ones, 7, 0.0, 0).data == ones.data);
}

TEST_CASE("dropout with axes shares the mask along them (Gluon Dropout(rate, axes))", "[ops][dropout]") {
  // NCHW [4, 50, 6, 7], axes (2, 3): each (n, c) feature map is kept or dropped whole.
  RefTensor ones(Shape{4, 50, 6, 7});
  for (double& v : ones.data) v = 1;
  const double rate = 0.4;
  RefTensor a = RunDropout(ones, 11, rate, 2, {2, 3});
  int64_t kept_maps = 0;
  for (int64_t m = 0; m < 200; ++m) {
    double first = a[m * 42];
    for (int64_t k = 1; k < 42; ++k) CHECK(a[m * 42 + k] == first);
    CHECK((first == 0 || first == Approx(1 / (1 - rate))));
    kept_maps += first != 0;
  }
  // 200 Bernoulli(0.6) maps: mean 120, standard deviation 6.9.
  CHECK(kept_maps > 90);
  CHECK(kept_maps < 150);
  // The decision of map (n, c) is the plain mask's at index n*C + c: the same draws as
  // dropout of the [4, 50, 1, 1] mask itself.
  RefTensor mask_ones(Shape{4, 50, 1, 1});
  for (double& v : mask_ones.data) v = 1;
  RefTensor mask = RunDropout(mask_ones, 11, rate, 2);
  for (int64_t m = 0; m < 200; ++m) CHECK(a[m * 42] == mask[m]);
  // Axis 0 shared: every sample has the same mask.
  RefTensor b = RunDropout(ones, 11, rate, 2, {0});
  for (int64_t i = 0; i < 50 * 42; ++i) {
    for (int64_t n = 1; n < 4; ++n) CHECK(b[n * 50 * 42 + i] == b[i]);
  }
  // Bad axes name the node and the shape.
  Graph g("bad_axes");
  Builder bb(g);
  ValueId x = g.AddInput("x", F32({2, 3}, ""));
  ValueId s = g.AddInput("seed", TensorType{DType::kS32, {}, ""});
  int k = 0;
  for (const std::vector<int64_t>& bad : {std::vector<int64_t>{2}, {-1}, {1, 1}}) {
    std::string name = "drop_bad" + std::to_string(k++);
    auto r = bb.Emit1("dropout", {x, s}, Attrs{{"rate", 0.5}, {"axes", bad}}, name);
    REQUIRE_FALSE(r.ok());
    CHECK_THAT(r.status().message(), Catch::Contains(name) && Catch::Contains("[2,3]"));
  }
}

TEST_CASE("dropout's gradient is the same mask on diff_dst", "[ops][dropout][grad]") {
  std::mt19937 rng(3);
  Graph g("dropout_grad");
  Builder b(g);
  ValueId x = g.AddInput("x", F32({4, 6, 5}, ""));
  ValueId s = g.AddInput("seed", TensorType{DType::kS32, {}, ""});
  g.AddOutput("y", b.Emit1("dropout", {x, s}, Attrs{{"rate", 0.4}, {"salt", int64_t{3}}}).value());
  RefEnv env;
  env[x] = RandomRef({4, 6, 5}, rng);
  env[s] = RefTensor(Shape{});
  env[s][0] = 12345;
  auto res = testing::CheckGradients(g, env, {x}, rng);
  INFO(res.worst);
  CHECK(res.checked > 0);
  CHECK(res.max_rel_error < 1e-6);
  // The same with a mask shared along axis 1.
  Graph ga("dropout_axes_grad");
  Builder ba(ga);
  ValueId xa = ga.AddInput("x", F32({4, 6, 5}, ""));
  ValueId sa = ga.AddInput("seed", TensorType{DType::kS32, {}, ""});
  ga.AddOutput("y", ba.Emit1("dropout", {xa, sa}, Attrs{{"rate", 0.4}, {"axes", std::vector<int64_t>{1}}}).value());
  RefEnv enva;
  enva[xa] = RandomRef({4, 6, 5}, rng);
  enva[sa] = RefTensor(Shape{});
  enva[sa][0] = 99;
  auto resa = testing::CheckGradients(ga, enva, {xa}, rng);
  CHECK(resa.checked > 0);
  CHECK(resa.max_rel_error < 1e-6);
  CHECK_FALSE(b.Emit1("dropout", {x, s}, Attrs{{"rate", 1.0}}, "drop1").ok());
  CHECK_FALSE(b.Emit1("dropout", {x, x}).ok());  // the seed must be s32 []
}

}  // namespace
}  // namespace kiln::ir
