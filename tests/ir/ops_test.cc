// Every op: shape-inference errors, the reference kernel on a hand-computed case, and the
// gradient rule (+ backward reference kernels) against central finite differences in double.
#include <catch2/catch.hpp>

#include <cmath>

#include "ir/builder.h"
#include "ir/interpreter.h"
#include "tests/ir/grad_check.h"

namespace kiln::ir {
namespace {

using testing::RandomRef;

Attrs ConvAttrs(std::vector<int64_t> stride, std::vector<int64_t> pb, std::vector<int64_t> pe, std::vector<int64_t> dil) {
  return Attrs{{"stride", stride}, {"padding_begin", pb}, {"padding_end", pe}, {"dilation", dil}};
}

TensorType F32(Shape s, std::string layout = "") { return TensorType{DType::kF32, std::move(s), std::move(layout)}; }

// Graph with inputs of the given shapes, one node `op`, output "y"; checks gradients.
void CheckOpGradient(const std::string& op, const std::vector<Shape>& shapes, const Attrs& attrs, uint32_t seed,
                     const std::vector<bool>& differentiable = {}) {
  std::mt19937 rng(seed);
  Graph g("grad_" + op);
  Builder b(g);
  RefEnv env;
  std::vector<ValueId> ins, wrt;
  for (size_t i = 0; i < shapes.size(); ++i) {
    ValueId v = g.AddInput("x" + std::to_string(i), F32(shapes[i], DefaultLayout(static_cast<int64_t>(shapes[i].size()))));
    env[v] = RandomRef(shapes[i], rng);
    ins.push_back(v);
    if (differentiable.empty() || differentiable[i]) wrt.push_back(v);
  }
  auto y = b.Emit1(op, ins, attrs);
  REQUIRE(y.ok());
  g.AddOutput("y", *y);
  INFO(op << " seed " << seed);
  auto res = testing::CheckGradients(g, env, wrt, rng);
  INFO(res.worst);
  CHECK(res.checked > 0);
  // Central differences with h=1e-6 in double: truncation ~1e-12, rounding ~1e-10.
  CHECK(res.max_rel_error < 1e-6);
}

TEST_CASE("conv2d gradients match finite differences", "[ops][conv2d][grad]") {
  auto [src, wei, attrs] = GENERATE(
      std::make_tuple(Shape{2, 3, 7, 6}, Shape{4, 3, 3, 3}, ConvAttrs({1, 1}, {0, 0}, {0, 0}, {1, 1})),
      std::make_tuple(Shape{1, 2, 9, 8}, Shape{3, 2, 3, 2}, ConvAttrs({2, 2}, {1, 0}, {2, 1}, {1, 1})),
      std::make_tuple(Shape{2, 2, 9, 9}, Shape{2, 2, 3, 3}, ConvAttrs({1, 2}, {1, 1}, {1, 1}, {2, 2})));
  CheckOpGradient("conv2d", {src, wei, {wei[0]}}, attrs, 1);
  CheckOpGradient("conv2d", {src, wei}, attrs, 2);
}

TEST_CASE("grouped and depthwise conv2d: gradients and shape errors", "[ops][conv2d][grad][groups]") {
  SECTION("groups 2, stride 2, asymmetric padding") {
    Attrs a = ConvAttrs({2, 1}, {1, 0}, {0, 1}, {1, 1});
    a.Set("groups", int64_t{2});
    CheckOpGradient("conv2d", {{2, 4, 7, 6}, {6, 2, 3, 3}, {6}}, a, 31);
  }
  SECTION("depthwise (groups = IC = OC), dilation 2") {
    Attrs a = ConvAttrs({1, 1}, {2, 2}, {2, 2}, {2, 2});
    a.Set("groups", int64_t{3});
    CheckOpGradient("conv2d", {{1, 3, 6, 5}, {3, 1, 3, 3}}, a, 32);
  }
  SECTION("depthwise with a channel multiplier (OC = 2 IC)") {
    Attrs a = ConvAttrs({1, 1}, {1, 1}, {1, 1}, {1, 1});
    a.Set("groups", int64_t{3});
    CheckOpGradient("conv2d", {{2, 3, 4, 4}, {6, 1, 3, 3}, {6}}, a, 33);
  }
  SECTION("hand-computed: each output channel sees only its group") {
    Graph g("grouped");
    Builder b(g);
    ValueId x = g.AddInput("x", F32({1, 2, 1, 1}, "NCHW"));
    ValueId w = g.AddInput("w", F32({2, 1, 1, 1}, "OIHW"));
    Attrs a = ConvAttrs({1, 1}, {0, 0}, {0, 0}, {1, 1});
    a.Set("groups", int64_t{2});
    auto y = b.Emit1("conv2d", {x, w}, a, "dw");
    REQUIRE(y.ok());
    g.AddOutput("y", *y);
    RefEnv env;
    env[x] = RefTensor({1, 2, 1, 1});
    env[x].data = {3.0, 5.0};
    env[w] = RefTensor({2, 1, 1, 1});
    env[w].data = {2.0, 10.0};
    REQUIRE(RunReference(g, env).ok());
    CHECK(env.at(*y).data == std::vector<double>{6.0, 50.0});
  }
  SECTION("errors name the groups") {
    Graph g("bad");
    Builder b(g);
    ValueId x = g.AddInput("x", F32({1, 4, 5, 5}, "NCHW"));
    ValueId w = g.AddInput("w", F32({6, 3, 3, 3}, "OIHW"));
    Attrs a = ConvAttrs({1, 1}, {0, 0}, {0, 0}, {1, 1});
    a.Set("groups", int64_t{2});
    auto y = b.Emit1("conv2d", {x, w}, a, "bad_conv");
    CHECK_THAT(y.status().message(), Catch::Contains("bad_conv") && Catch::Contains("IC=4") &&
                                         Catch::Contains("IC=3 x groups 2"));
    ValueId w5 = g.AddInput("w5", F32({5, 2, 3, 3}, "OIHW"));
    auto z = b.Emit1("conv2d", {x, w5}, a, "bad_oc");
    CHECK_THAT(z.status().message(), Catch::Contains("OC=5 are not a multiple of groups 2"));
    a.Set("groups", int64_t{0});
    auto zero = b.Emit1("conv2d", {x, w}, a, "zero_groups");
    CHECK_THAT(zero.status().message(), Catch::Contains("groups must be >= 1"));
  }
}

TEST_CASE("pool2d gradients match finite differences", "[ops][pool2d][grad]") {
  std::string kind = GENERATE("max", "avg");
  int64_t include = GENERATE(0, 1);
  Attrs a{{"kind", kind}, {"kernel", Shape{3, 2}}, {"stride", Shape{2, 2}}, {"padding_begin", Shape{1, 1}},
          {"padding_end", Shape{1, 0}}, {"count_include_pad", include}};
  CheckOpGradient("pool2d", {{2, 3, 7, 6}}, a, 3);
}

TEST_CASE("dense gradients match finite differences", "[ops][dense][grad]") {
  CheckOpGradient("dense", {{5, 7}, {3, 7}, {3}}, {}, 4);
  CheckOpGradient("dense", {{1, 4}, {6, 4}}, {}, 5);
}

TEST_CASE("activation gradients match finite differences", "[ops][eltwise][grad]") {
  std::string op = GENERATE("relu", "sigmoid", "tanh");
  CheckOpGradient(op, {{3, 5, 2, 3}}, {}, 6);
}

TEST_CASE("leaky_relu: reference, gradient and its alpha check", "[ops][eltwise][leaky_relu]") {
  SECTION("hand-computed: alpha 0.5 on [-2, 3, 0]") {
    Graph g("leaky");
    Builder b(g);
    ValueId x = g.AddInput("x", F32({3}, "C"));
    auto y = b.Emit1("leaky_relu", {x}, Attrs{{"alpha", 0.5}}, "act");
    REQUIRE(y.ok());
    g.AddOutput("y", *y);
    RefEnv env;
    env[x] = RefTensor({3});
    env[x].data = {-2.0, 3.0, 0.0};
    REQUIRE(RunReference(g, env).ok());
    CHECK(env.at(*y).data == std::vector<double>{-1.0, 3.0, 0.0});
  }
  SECTION("gradient by central differences (and the backward op's reference)") {
    CheckOpGradient("leaky_relu", {{3, 5, 2, 3}}, Attrs{{"alpha", 0.2}}, 16);
    CheckOpGradient("leaky_relu", {{7}}, Attrs{}, 17);  // default alpha 0.01
  }
  SECTION("alpha must be positive: the backward reads dst") {
    Graph g("leaky");
    Builder b(g);
    ValueId x = g.AddInput("x", F32({2, 3}, "NC"));
    auto y = b.Emit1("leaky_relu", {x}, Attrs{{"alpha", -0.1}}, "bad_act");
    REQUIRE(!y.ok());
    CHECK(y.status().code() == StatusCode::kInvalidArgument);
    CHECK_THAT(y.status().message(), Catch::Contains("leaky_relu") && Catch::Contains("alpha must be > 0"));
  }
}

TEST_CASE("activations with a src backward: gradients match finite differences", "[ops][eltwise][grad]") {
  struct Case {
    std::string op;
    Attrs attrs;
  } cases[] = {
      {"elu", {}},
      {"elu", Attrs{{"alpha", 0.7}}},
      {"selu", {}},
      {"gelu", {}},
      {"silu", {}},
      {"silu", Attrs{{"beta", 1.7}}},
      {"hard_sigmoid", Attrs{{"alpha", 1.0}, {"beta", 0.5}}},  // kinks at -0.5 and 0.5, inside [-1, 1]
      {"hard_sigmoid", {}},
      {"hard_swish", {}},
      {"softplus", {}},
      {"softsign", {}},
      {"clip", Attrs{{"a_min", -0.5}, {"a_max", 0.5}}},
  };
  uint32_t seed = 40;
  for (const Case& c : cases) {
    CheckOpGradient(c.op, {{3, 5, 2, 3}}, c.attrs, seed++);
    CheckOpGradient(c.op, {{7}}, c.attrs, seed++);
  }
}

TEST_CASE("activations with a src backward: references at hand-computed points", "[ops][eltwise]") {
  auto run = [](const std::string& op, const Attrs& attrs, std::vector<double> x) {
    Graph g("act");
    Builder b(g);
    ValueId in = g.AddInput("x", F32({static_cast<int64_t>(x.size())}, "C"));
    auto y = b.Emit1(op, {in}, attrs, "act");
    REQUIRE(y.ok());
    g.AddOutput("y", *y);
    RefEnv env;
    env[in] = RefTensor({static_cast<int64_t>(x.size())});
    env[in].data = std::move(x);
    REQUIRE(RunReference(g, env).ok());
    return env.at(*y).data;
  };
  auto v = run("elu", {}, {-1.0, 2.0});
  CHECK(v[0] == Approx(std::exp(-1.0) - 1));
  CHECK(v[1] == 2.0);
  v = run("selu", {}, {1.0, -1.0});
  CHECK(v[0] == Approx(1.0507009873554805));
  CHECK(v[1] == Approx(1.0507009873554805 * 1.6732632423543772 * (std::exp(-1.0) - 1)));
  v = run("gelu", {}, {1.0});
  CHECK(v[0] == Approx(0.8413447460685429));  // x * Phi(x) at 1
  v = run("silu", {}, {2.0});
  CHECK(v[0] == Approx(2.0 / (1 + std::exp(-2.0))));
  v = run("hard_sigmoid", {}, {-10.0, 1.0, 10.0});  // MXNet defaults alpha 0.2, beta 0.5
  CHECK(v == std::vector<double>{0.0, 0.7, 1.0});
  v = run("hard_sigmoid", Attrs{{"alpha", 1.0 / 6}, {"beta", 0.5}}, {3.0});  // PyTorch Hardsigmoid
  CHECK(v[0] == Approx(1.0));
  v = run("hard_swish", {}, {-4.0, 1.0, 4.0});
  CHECK(v[0] == 0.0);
  CHECK(v[1] == Approx(4.0 / 6));
  CHECK(v[2] == 4.0);
  v = run("softplus", {}, {0.0, 100.0});
  CHECK(v[0] == Approx(std::log(2.0)));
  CHECK(v[1] == Approx(100.0));  // no overflow
  v = run("clip", {}, {-1.0, 3.0, 7.0});  // relu6 by default
  CHECK(v == std::vector<double>{0.0, 3.0, 6.0});
}

TEST_CASE("activation attributes are checked", "[ops][eltwise]") {
  Graph g("act");
  Builder b(g);
  ValueId x = g.AddInput("x", F32({2, 3}, "NC"));
  auto clip = b.Emit1("clip", {x}, Attrs{{"a_min", 2.0}, {"a_max", 1.0}}, "bad_clip");
  CHECK_THAT(clip.status().message(), Catch::Contains("bad_clip") && Catch::Contains("a_min must be < a_max"));
  auto hs = b.Emit1("hard_sigmoid", {x}, Attrs{{"alpha", 0.0}}, "bad_hs");
  CHECK_THAT(hs.status().message(), Catch::Contains("alpha must be > 0"));
}

TEST_CASE("broadcast add and mul gradients reduce to the input shapes", "[ops][binary][grad]") {
  std::string op = GENERATE("add", "mul");
  CheckOpGradient(op, {{4, 3, 2}, {4, 3, 2}}, {}, 7);
  CheckOpGradient(op, {{4, 3, 2}, {3, 1}}, {}, 8);
  CheckOpGradient(op, {{1, 3}, {5, 1}}, {}, 9);
  CheckOpGradient(op, {{2, 3}, {}}, {}, 10);
}

TEST_CASE("reductions, broadcast_to and reshape gradients", "[ops][reduce][grad]") {
  CheckOpGradient("reduce_sum", {{3, 4, 5}}, Attrs{{"axes", Shape{0, 2}}, {"keepdims", int64_t{0}}}, 11);
  CheckOpGradient("reduce_mean", {{3, 4, 5}}, Attrs{{"axes", Shape{1}}, {"keepdims", int64_t{1}}}, 12);
  CheckOpGradient("broadcast_to", {{3, 1}}, Attrs{{"shape", Shape{2, 3, 4}}}, 13);
  CheckOpGradient("reshape", {{2, 3, 4}}, Attrs{{"shape", Shape{6, 4}}}, 14);
}

TEST_CASE("softmax and log_softmax gradients", "[ops][softmax][grad]") {
  std::string op = GENERATE("softmax", "log_softmax");
  int64_t axis = GENERATE(-1, 0, 1);
  CheckOpGradient(op, {{3, 5, 2}}, Attrs{{"axis", axis}}, 15);
}

TEST_CASE("softmax_cross_entropy gradient w.r.t. the logits", "[ops][loss][grad]") {
  std::mt19937 rng(16);
  Graph g("sce");
  Builder b(g);
  ValueId x = g.AddInput("logits", F32({6, 5}, "NC"));
  ValueId l = g.AddInput("label", TensorType{DType::kS32, {6}, "N"});
  RefEnv env;
  env[x] = RandomRef({6, 5}, rng, -3, 3);
  env[l] = RefTensor({6});
  for (int i = 0; i < 6; ++i) env[l][i] = (i * 3) % 5;
  g.AddOutput("y", b.Emit1("softmax_cross_entropy", {x, l}).value());
  auto res = testing::CheckGradients(g, env, {x}, rng);
  INFO(res.worst);
  CHECK(res.max_rel_error < 1e-6);
}

// ---- Reference kernels on hand-computed cases ----

RefTensor Run1(const std::string& op, const std::vector<std::pair<TensorType, RefTensor>>& ins, const Attrs& attrs = {}) {
  Graph g("one");
  Builder b(g);
  RefEnv env;
  std::vector<ValueId> ids;
  for (size_t i = 0; i < ins.size(); ++i) {
    ValueId v = g.AddInput("x" + std::to_string(i), ins[i].first);
    env[v] = ins[i].second;
    ids.push_back(v);
  }
  ValueId y = b.Emit1(op, ids, attrs).value();
  REQUIRE(RunReference(g, env).ok());
  return env.at(y);
}

RefTensor Ref(Shape s, std::vector<double> v) {
  RefTensor t(std::move(s));
  t.data = std::move(v);
  return t;
}

TEST_CASE("conv2d reference on a hand-computed case", "[ops][conv2d]") {
  // src 1x1x3x3 = 1..9, weights 1x1x2x2 = [1,0;0,-1], bias 10, stride 1, pad 0:
  // dst[i,j] = src[i,j] - src[i+1,j+1] + 10 = -4 + 10 = 6 everywhere.
  RefTensor y = Run1("conv2d",
                     {{F32({1, 1, 3, 3}), Ref({1, 1, 3, 3}, {1, 2, 3, 4, 5, 6, 7, 8, 9})},
                      {F32({1, 1, 2, 2}), Ref({1, 1, 2, 2}, {1, 0, 0, -1})},
                      {F32({1}), Ref({1}, {10})}},
                     ConvAttrs({1, 1}, {0, 0}, {0, 0}, {1, 1}));
  CHECK(y.shape == Shape{1, 1, 2, 2});
  CHECK(y.data == std::vector<double>{6, 6, 6, 6});
  // Stride 2, padding 1, dilation 2 on the same input: taps at (-1,-1),( -1,1),(1,-1),(1,1)
  // relative to 2*o - 1; output 2x2. Only in-bounds taps count.
  RefTensor z = Run1("conv2d",
                     {{F32({1, 1, 3, 3}), Ref({1, 1, 3, 3}, {1, 2, 3, 4, 5, 6, 7, 8, 9})},
                      {F32({1, 1, 2, 2}), Ref({1, 1, 2, 2}, {1, 1, 1, 1})}},
                     ConvAttrs({2, 2}, {1, 1}, {1, 1}, {2, 2}));
  CHECK(z.shape == Shape{1, 1, 2, 2});
  // o=(0,0): taps (-1,-1),(-1,1),(1,-1),(1,1) -> only (1,1)=5. o=(0,1): (-1,1),(-1,3),(1,1),(1,3) -> 5.
  CHECK(z.data == std::vector<double>{5, 5, 5, 5});
}

TEST_CASE("pool2d reference on a hand-computed case", "[ops][pool2d]") {
  RefTensor src = Ref({1, 1, 2, 4}, {1, 5, 2, 0, 3, 4, 8, 6});
  Attrs a{{"kind", "max"}, {"kernel", Shape{2, 2}}, {"stride", Shape{2, 2}}, {"padding_begin", Shape{0, 0}},
          {"padding_end", Shape{0, 0}}};
  CHECK(Run1("pool2d", {{F32({1, 1, 2, 4}), src}}, a).data == std::vector<double>{5, 8});
  a.Set("kind", "avg");
  CHECK(Run1("pool2d", {{F32({1, 1, 2, 4}), src}}, a).data == std::vector<double>{13.0 / 4, 16.0 / 4});
  // Padding 1 with count_include_pad=0: corner window holds 1 element of a 1x1 input.
  a.Set("padding_begin", Shape{1, 1});
  a.Set("padding_end", Shape{1, 1});
  a.Set("count_include_pad", int64_t{0});
  CHECK(Run1("pool2d", {{F32({1, 1, 1, 1}), Ref({1, 1, 1, 1}, {7})}}, a).data == std::vector<double>{7});
  a.Set("count_include_pad", int64_t{1});
  CHECK(Run1("pool2d", {{F32({1, 1, 1, 1}), Ref({1, 1, 1, 1}, {8})}}, a).data == std::vector<double>{2});
}

TEST_CASE("dense, softmax_cross_entropy, argmax and sgd_update references", "[ops]") {
  RefTensor y = Run1("dense", {{F32({1, 2}), Ref({1, 2}, {1, 2})}, {F32({2, 2}), Ref({2, 2}, {1, 1, 0, -1})},
                               {F32({2}), Ref({2}, {0.5, 0})}});
  CHECK(y.data == std::vector<double>{3.5, -2});
  // Uniform logits over 4 classes: loss = log 4.
  RefTensor l = Run1("softmax_cross_entropy",
                     {{F32({1, 4}), Ref({1, 4}, {2, 2, 2, 2})}, {TensorType{DType::kS32, {1}, "N"}, Ref({1}, {3})}});
  CHECK(l[0] == Approx(std::log(4.0)).epsilon(1e-12));
  RefTensor am = Run1("argmax", {{F32({2, 3}), Ref({2, 3}, {1, 3, 3, -1, -2, -3})}});
  CHECK(am.data == std::vector<double>{1, 0});  // ties go to the first maximum
  // w' = (1 - lr*wd) w - lr * rescale * g = (1 - 0.1*0.5)*2 - 0.1*0.5*4 = 1.9 - 0.2 = 1.7
  Graph g("sgd");
  Builder b(g);
  RefEnv env;
  ValueId w = g.AddParameter("w", F32({1}));
  ValueId gr = g.AddInput("g", F32({1}));
  ValueId lr = g.AddInput("lr", F32({}));
  ValueId rs = g.AddInput("rescale", F32({}));
  env[w] = Ref({1}, {2});
  env[gr] = Ref({1}, {4});
  env[lr] = Ref({}, {0.1});
  env[rs] = Ref({}, {0.5});
  auto outs = b.Emit("sgd_update", {w, gr, lr, rs}, Attrs{{"wd", 0.5}, {"momentum", 0.0}, {"clip_gradient", -1.0}});
  REQUIRE(outs.ok());
  g.AddUpdate(w, (*outs)[0]);
  REQUIRE(RunReference(g, env, /*apply_updates=*/true).ok());
  CHECK(env[w][0] == Approx(1.7).epsilon(1e-12));
}

TEST_CASE("adam_update reference: MXNet 1.9 AdamUpdateKernel", "[ops][adam]") {
  // w=2, g=4, m=0.5, v=0.25, lr=0.1, rescale=0.5, wd=0.5, beta1=0.9, beta2=0.99, eps=1e-3:
  // g' = 0.5*4 + 0.5*2 = 3; m' = 0.45 + 0.3 = 0.75; v' = 0.2475 + 0.09 = 0.3375;
  // w' = 2 - 0.1 * 0.75 / (sqrt(0.3375) + 1e-3).
  for (double clip : {-1.0, 1.0}) {
    INFO("clip_gradient " << clip);
    Graph g("adam");
    Builder b(g);
    RefEnv env;
    ValueId w = g.AddParameter("w", F32({1}));
    ValueId gr = g.AddInput("g", F32({1}));
    ValueId m = g.AddState("w.mean", F32({1}));
    ValueId v = g.AddState("w.var", F32({1}));
    ValueId lr = g.AddInput("lr", F32({}));
    ValueId rs = g.AddInput("rescale", F32({}));
    env[w] = Ref({1}, {2});
    env[gr] = Ref({1}, {4});
    env[m] = Ref({1}, {0.5});
    env[v] = Ref({1}, {0.25});
    env[lr] = Ref({}, {0.1});
    env[rs] = Ref({}, {0.5});
    Attrs a{{"beta1", 0.9}, {"beta2", 0.99}, {"epsilon", 1e-3}, {"wd", 0.5}, {"clip_gradient", clip}};
    auto outs = b.Emit("adam_update", {w, gr, m, v, lr, rs}, a);
    REQUIRE(outs.ok());
    REQUIRE(outs->size() == 3);
    g.AddUpdate(w, (*outs)[0]);
    g.AddUpdate(m, (*outs)[1]);
    g.AddUpdate(v, (*outs)[2]);
    REQUIRE(RunReference(g, env, /*apply_updates=*/true).ok());
    // clip 1: g' = 3 is clipped to 1 (wd inside the clip, as MXNet).
    double gc = clip < 0 ? 3.0 : 1.0;
    double mm = 0.9 * 0.5 + 0.1 * gc, vv = 0.99 * 0.25 + 0.01 * gc * gc;
    CHECK(env[m][0] == Approx(mm).epsilon(1e-12));
    CHECK(env[v][0] == Approx(vv).epsilon(1e-12));
    CHECK(env[w][0] == Approx(2 - 0.1 * mm / (std::sqrt(vv) + 1e-3)).epsilon(1e-12));
  }
}

TEST_CASE("adam_update shape errors name the node, op and shapes", "[ops][adam][infer]") {
  Graph g("bad");
  Builder b(g);
  ValueId w = g.AddParameter("w", F32({3, 2}));
  ValueId gr = g.AddInput("g", F32({3, 2}));
  ValueId m = g.AddState("w.mean", F32({3, 2}));
  ValueId v = g.AddState("w.var", F32({2, 3}));
  ValueId lr = g.AddInput("lr", F32({}));
  ValueId rs = g.AddInput("rescale", F32({}));
  auto r = b.Emit("adam_update", {w, gr, m, v, lr, rs}, {}, "w_adam");
  REQUIRE_FALSE(r.ok());
  CHECK_THAT(r.status().message(), Catch::Contains("adam_update \"w_adam\"") && Catch::Contains("var") &&
                                       Catch::Contains("[2,3]") && Catch::Contains("[3,2]"));
  ValueId v2 = g.AddState("w.var2", F32({3, 2}));
  auto r2 = b.Emit("adam_update", {w, gr, m, v2, lr, rs}, Attrs{{"beta1", 1.0}}, "w_adam2");
  REQUIRE_FALSE(r2.ok());
  CHECK_THAT(r2.status().message(), Catch::Contains("beta1"));
  auto r3 = b.Emit("adam_update", {w, gr, m, v2, gr, rs}, {}, "w_adam3");
  REQUIRE_FALSE(r3.ok());
  CHECK_THAT(r3.status().message(), Catch::Contains("scalars"));
}

TEST_CASE("a label out of range is an error naming the node", "[ops][loss]") {
  Graph g("bad");
  Builder b(g);
  RefEnv env;
  ValueId x = g.AddInput("x", F32({2, 3}, "NC"));
  ValueId l = g.AddInput("l", TensorType{DType::kS32, {2}, "N"});
  env[x] = RefTensor({2, 3});
  env[l] = Ref({2}, {1, 3});
  b.Emit1("softmax_cross_entropy", {x, l}, {}, "my_loss").value();
  Status s = RunReference(g, env);
  CHECK_FALSE(s.ok());
  CHECK_THAT(s.message(), Catch::Contains("softmax_cross_entropy \"my_loss\"") && Catch::Contains("label 3"));
}

// ---- Shape inference errors name the op, the node and the shapes ----

TEST_CASE("shape inference rejects bad shapes with the node, op and shapes", "[ops][infer]") {
  Graph g("bad");
  Builder b(g);
  ValueId x = g.AddInput("x", F32({8, 3, 32, 32}, "NCHW"));
  ValueId w = g.AddInput("w", F32({16, 4, 3, 3}, "OIHW"));
  auto r = b.Emit1("conv2d", {x, w}, ConvAttrs({1, 1}, {0, 0}, {0, 0}, {1, 1}), "conv1");
  REQUIRE_FALSE(r.ok());
  CHECK(r.status().code() == StatusCode::kInvalidArgument);
  CHECK_THAT(r.status().message(), Catch::Contains("conv2d \"conv1\"") && Catch::Contains("IC=3") &&
                                       Catch::Contains("src NCHW [8,3,32,32]") &&
                                       Catch::Contains("weights OIHW [16,4,3,3]"));

  ValueId w2 = g.AddInput("w2", F32({16, 3, 3, 3}, "OIHW"));
  auto s = b.Emit1("conv2d", {x, w2}, ConvAttrs({0, 1}, {0, 0}, {0, 0}, {1, 1}), "conv2");
  REQUIRE_FALSE(s.ok());
  CHECK_THAT(s.status().message(), Catch::Contains("stride=[0,1] must be >= 1"));

  ValueId big = g.AddInput("big", F32({16, 3, 40, 3}, "OIHW"));
  auto t = b.Emit1("conv2d", {x, big}, ConvAttrs({1, 1}, {0, 0}, {0, 0}, {1, 1}), "conv3");
  REQUIRE_FALSE(t.ok());
  CHECK_THAT(t.status().message(), Catch::Contains("exceeds padded input"));

  ValueId d = g.AddInput("d", F32({4, 10}, "NC"));
  ValueId dw = g.AddInput("dw", F32({5, 11}, "OI"));
  auto u = b.Emit1("dense", {d, dw}, {}, "fc");
  REQUIRE_FALSE(u.ok());
  CHECK_THAT(u.status().message(), Catch::Contains("dense \"fc\"") && Catch::Contains("src NC [4,10]") &&
                                       Catch::Contains("weights OI [5,11]"));

  ValueId a = g.AddInput("a", F32({4, 3}));
  ValueId c = g.AddInput("c", F32({5}));
  auto v = b.Emit1("add", {a, c}, {}, "plus");
  REQUIRE_FALSE(v.ok());
  CHECK_THAT(v.status().message(), Catch::Contains("cannot be broadcast"));

  auto p = b.Emit1("pool2d", {x}, Attrs{{"kind", "min"}, {"kernel", Shape{2, 2}}, {"stride", Shape{2, 2}},
                                         {"padding_begin", Shape{0, 0}}, {"padding_end", Shape{0, 0}}}, "pool");
  REQUIRE_FALSE(p.ok());
  CHECK_THAT(p.status().message(), Catch::Contains("kind must be"));

  auto unknown = b.Emit1("conv3d", {x});
  CHECK(unknown.status().code() == StatusCode::kNotFound);
}

TEST_CASE("autodiff refuses ops without a gradient rule, naming the node", "[passes][autodiff]") {
  Graph g("no_grad");
  Builder b(g);
  ValueId x = g.AddInput("x", F32({2, 3}, "NC"));
  ValueId y = b.Emit1("relu_backward", {x, x}, {}, "rb").value();
  ValueId l = b.Emit1("reduce_sum", {y}, Attrs{{"axes", Shape{0, 1}}, {"keepdims", int64_t{0}}}).value();
  auto grads = passes::AppendBackward(g, l, {x});
  REQUIRE_FALSE(grads.ok());
  CHECK_THAT(grads.status().message(), Catch::Contains("relu_backward \"rb\"") && Catch::Contains("no gradient rule"));
}

}  // namespace
}  // namespace kiln::ir

// ---- one_hot (MXNet nd.one_hot) ----

namespace kiln::ir {
namespace {

TEST_CASE("one_hot reference follows nd.one_hot, out-of-range rows all off", "[ops][one_hot]") {
  Graph g("oh");
  Builder b(g);
  RefEnv env;
  ValueId idx = g.AddInput("idx", TensorType{DType::kS32, {5}, "N"});
  env[idx] = RefTensor({5});
  env[idx].data = {2, 0, 3, -1, 4};  // 3 and 4 are >= depth 3, -1 is negative
  ValueId y = b.Emit1("one_hot", {idx}, Attrs{{"depth", int64_t{3}}, {"on_value", 5.0}, {"off_value", -0.5}}, "oh").value();
  CHECK(g.value(y).type == TensorType{DType::kF32, {5, 3}, "NC"});
  REQUIRE(RunReference(g, env).ok());
  CHECK(env.at(y).data == std::vector<double>{-0.5, -0.5, 5, 5, -0.5, -0.5, -0.5, -0.5, -0.5, -0.5, -0.5, -0.5,
                                             -0.5, -0.5, -0.5});
}

TEST_CASE("one_hot rejects bad indices and depth, naming the node", "[ops][one_hot][infer]") {
  Graph g("oh_bad");
  Builder b(g);
  ValueId f = g.AddInput("f", TensorType{DType::kF32, {4}, "N"});
  auto r = b.Emit1("one_hot", {f}, Attrs{{"depth", int64_t{10}}}, "oh1");
  REQUIRE_FALSE(r.ok());
  CHECK_THAT(r.status().message(), Catch::Contains("one_hot \"oh1\""));
  ValueId i2 = g.AddInput("i2", TensorType{DType::kS32, {4, 2}, "NC"});
  CHECK_FALSE(b.Emit1("one_hot", {i2}, Attrs{{"depth", int64_t{10}}}, "oh2").ok());
  ValueId i = g.AddInput("i", TensorType{DType::kS32, {4}, "N"});
  auto d = b.Emit1("one_hot", {i}, Attrs{{"depth", int64_t{0}}}, "oh3");
  REQUIRE_FALSE(d.ok());
  CHECK_THAT(d.status().message(), Catch::Contains("depth=0 must be >= 1"));
}

TEST_CASE("a loss through one_hot differentiates w.r.t. the logits only", "[ops][one_hot][grad]") {
  // loss = -sum(one_hot(label) * log_softmax(x)) equals softmax_cross_entropy(x, label); the
  // integer label is not differentiated, so one_hot needs no gradient rule.
  std::mt19937 rng(11);
  Graph g("oh_loss");
  Builder b(g);
  RefEnv env;
  ValueId x = g.AddInput("x", F32({4, 5}, "NC"));
  ValueId l = g.AddInput("l", TensorType{DType::kS32, {4}, "N"});
  env[x] = RandomRef({4, 5}, rng, -3, 3);
  env[l] = RefTensor({4});
  env[l].data = {1, 4, 0, 2};
  ValueId oh = b.Emit1("one_hot", {l}, Attrs{{"depth", int64_t{5}}, {"on_value", 1.0}, {"off_value", 0.0}}).value();
  ValueId lp = b.Emit1("log_softmax", {x}, Attrs{{"axis", int64_t{-1}}}).value();
  ValueId m = b.Emit1("mul", {oh, lp}).value();
  ValueId s = b.Emit1("reduce_sum", {m}, Attrs{{"axes", Shape{1}}, {"keepdims", int64_t{0}}}).value();
  ValueId ce = b.Emit1("softmax_cross_entropy", {x, l}).value();
  g.AddOutput("y", s);
  g.AddOutput("ce", ce);
  auto res = testing::CheckGradients(g, env, {x}, rng);
  INFO(res.worst);
  CHECK(res.checked > 0);
  CHECK(res.max_rel_error < 1e-6);
  REQUIRE(RunReference(g, env).ok());
  for (int n = 0; n < 4; ++n) CHECK(-env.at(s)[n] == Approx(env.at(ce)[n]).epsilon(1e-12));
}

}  // namespace
}  // namespace kiln::ir

namespace kiln::ir {
namespace {

// CheckOpGradient with inputs drawn from [lo[i], hi[i]] (positive for log, sqrt and
// denominators; apart for maximum/minimum so no tie sits within h).
void CheckRangedGradient(const std::string& op, const std::vector<Shape>& shapes, std::vector<double> lo,
                         std::vector<double> hi, uint32_t seed) {
  std::mt19937 rng(seed);
  Graph g("grad_" + op);
  Builder b(g);
  RefEnv env;
  std::vector<ValueId> ins;
  for (size_t i = 0; i < shapes.size(); ++i) {
    ValueId v = g.AddInput("x" + std::to_string(i), F32(shapes[i], DefaultLayout(static_cast<int64_t>(shapes[i].size()))));
    env[v] = RandomRef(shapes[i], rng, lo[i], hi[i]);
    ins.push_back(v);
  }
  auto y = b.Emit1(op, ins, {});
  REQUIRE(y.ok());
  g.AddOutput("y", *y);
  INFO(op << " seed " << seed);
  auto res = testing::CheckGradients(g, env, ins, rng);
  INFO(res.worst);
  CHECK(res.checked > 0);
  CHECK(res.max_rel_error < 1e-6);
}

TEST_CASE("sub, div, maximum, minimum: broadcast gradients match finite differences", "[ops][binary][grad]") {
  for (const auto& shapes : {std::vector<Shape>{{2, 3, 4}, {3, 1}}, std::vector<Shape>{{1}, {2, 3}},
                             std::vector<Shape>{{4, 5}, {4, 5}}, std::vector<Shape>{{2, 3, 1, 1}, {2, 3, 4, 4}}}) {
    INFO(ShapeToString(shapes[0]) << " x " << ShapeToString(shapes[1]));
    CheckRangedGradient("sub", shapes, {-1, -1}, {1, 1}, 1);
    CheckRangedGradient("div", shapes, {-1, 0.5}, {1, 2}, 2);
    // maximum/minimum: src0 in [-1, -0.1] or src1 in [0.1, 1] would never tie; mix both.
    CheckRangedGradient("maximum", shapes, {-1, -1}, {1, 1}, 3);
    CheckRangedGradient("minimum", shapes, {-1, -1}, {1, 1}, 4);
  }
}

TEST_CASE("exp, log, sqrt, abs, neg: gradients and values", "[ops][eltwise][grad]") {
  CheckRangedGradient("exp", {{3, 7}}, {-2}, {2}, 5);
  CheckRangedGradient("log", {{3, 7}}, {0.2}, {3}, 6);
  CheckRangedGradient("sqrt", {{3, 7}}, {0.2}, {3}, 7);
  CheckRangedGradient("abs", {{3, 7}}, {-1}, {1}, 8);
  CheckRangedGradient("neg", {{3, 7}}, {-1}, {1}, 9);
  auto ref = [](const std::string& op, std::vector<double> a, std::vector<double> b = {}) {
    std::vector<std::pair<TensorType, RefTensor>> ins{{F32({static_cast<int64_t>(a.size())}), Ref({static_cast<int64_t>(a.size())}, a)}};
    if (!b.empty()) ins.push_back({F32({static_cast<int64_t>(b.size())}), Ref({static_cast<int64_t>(b.size())}, b)});
    return Run1(op, ins).data;
  };
  CHECK(ref("sub", {5, 1}, {2, 3}) == std::vector<double>{3, -2});
  CHECK(ref("div", {6, 1}, {3, 4}) == std::vector<double>{2, 0.25});
  CHECK(ref("maximum", {1, 5}, {2, 3}) == std::vector<double>{2, 5});
  CHECK(ref("minimum", {1, 5}, {2, 3}) == std::vector<double>{1, 3});
  CHECK(ref("greater_equal", {1, 3, 2}, {2, 3, 1}) == std::vector<double>{0, 1, 1});
  CHECK(ref("abs", {-2, 0, 3}) == std::vector<double>{2, 0, 3});
  CHECK(ref("neg", {-2, 3}) == std::vector<double>{2, -3});
  CHECK(ref("sqrt", {4, 9}) == std::vector<double>{2, 3});
  CHECK(std::isnan(ref("log", {-1})[0]));
  // A tie of maximum sends the whole gradient to src0.
  Graph g("tie");
  Builder b(g);
  ValueId a = g.AddInput("a", F32({2})), c = g.AddInput("c", F32({2}));
  g.AddOutput("y", b.Emit1("maximum", {a, c}).value());
  RefEnv env;
  env[a] = Ref({2}, {1, 2});
  env[c] = Ref({2}, {1, 3});
  ValueId loss = b.Emit1("reduce_sum", {*g.FindOutput("y")}, Attrs{{"axes", std::vector<int64_t>{0}}}).value();
  auto grads = passes::AppendBackward(g, loss, {a, c}).value();
  REQUIRE(RunReference(g, env).ok());
  CHECK(env.at(grads.at(a)).data == std::vector<double>{1, 0});
  CHECK(env.at(grads.at(c)).data == std::vector<double>{0, 1});
}

}  // namespace
}  // namespace kiln::ir

namespace kiln::ir {
namespace {

TEST_CASE("concat, split and transpose: references and gradients", "[ops][concat][grad]") {
  // concat along axis 1 of [1,2] and [1,1] = [1,3].
  CHECK(Run1("concat", {{F32({1, 2}), Ref({1, 2}, {1, 2})}, {F32({1, 1}), Ref({1, 1}, {3})}}, Attrs{{"axis", int64_t{1}}})
            .data == std::vector<double>{1, 2, 3});
  CHECK(Run1("concat", {{F32({1, 2}), Ref({1, 2}, {1, 2})}, {F32({1, 2}), Ref({1, 2}, {3, 4})}},
             Attrs{{"axis", int64_t{0}}})
            .data == std::vector<double>{1, 2, 3, 4});
  // [2,3] transposed is [3,2].
  CHECK(Run1("transpose", {{F32({2, 3}), Ref({2, 3}, {1, 2, 3, 4, 5, 6})}}, Attrs{{"axes", std::vector<int64_t>{1, 0}}})
            .data == std::vector<double>{1, 4, 2, 5, 3, 6});
  CheckOpGradient("concat", {{2, 3, 4, 4}, {2, 5, 4, 4}, {2, 1, 4, 4}}, Attrs{{"axis", int64_t{1}}}, 40);
  CheckOpGradient("concat", {{3, 2}, {3, 7}}, Attrs{{"axis", int64_t{-1}}}, 41);
  CheckOpGradient("transpose", {{2, 3, 4, 5}}, Attrs{{"axes", std::vector<int64_t>{0, 2, 3, 1}}}, 42);
  // split: the loss reads the second piece only; the others get zero gradients.
  std::mt19937 rng(43);
  Graph g("split");
  Builder b(g);
  ValueId x = g.AddInput("x", F32({2, 9, 3}, ""));
  auto parts = b.Emit("split", {x}, Attrs{{"axis", int64_t{1}}, {"sizes", std::vector<int64_t>{2, 3, 4}}}).value();
  REQUIRE(parts.size() == 3);
  CHECK(g.value(parts[2]).type.shape == Shape{2, 4, 3});
  g.AddOutput("y", parts[1]);
  RefEnv env;
  env[x] = RandomRef({2, 9, 3}, rng);
  auto res = testing::CheckGradients(g, env, {x}, rng);
  INFO(res.worst);
  CHECK(res.max_rel_error < 1e-6);
  // Shape errors name the node and the shapes.
  auto bad = b.Emit("concat", {x, parts[0]}, Attrs{{"axis", int64_t{2}}}, "cat1");
  REQUIRE_FALSE(bad.ok());
  CHECK_THAT(bad.status().message(), Catch::Contains("cat1") && Catch::Contains("[2,9,3]") && Catch::Contains("[2,2,3]"));
  CHECK_FALSE(b.Emit("split", {x}, Attrs{{"axis", int64_t{1}}, {"sizes", std::vector<int64_t>{2, 3}}}).ok());
  CHECK_FALSE(b.Emit("transpose", {x}, Attrs{{"axes", std::vector<int64_t>{0, 0, 1}}}).ok());
}

}  // namespace
}  // namespace kiln::ir
