// Lowering tests for the CPU steps (STYLE.md section 7): every kind runs on random inputs
// and is compared with its IR reference kernel (double precision).
// Tolerance: |step - reference| <= 1e-4 * max(1, |reference|). The steps compute in f32
// with a different accumulation order (oneDNN blocks and parallelizes reductions), so exact
// equality is only asked of integer results (argmax) and data movement.
#include <cstring>
#include <ostream>
#include <random>
#include <string>
#include <thread>
#include <tuple>
#include <utility>
#include <vector>

#include <catch2/catch.hpp>
#include <oneapi/dnnl/dnnl.hpp>

#include "backends/cpu/kernels_cpu.h"
#include "tests/codegen/step_harness.h"

namespace kiln::codegen_test {
namespace {

struct ConvCfg {
  int64_t n, ic, ih, iw, oc, kh, kw;
  std::vector<int64_t> stride, pad_begin, pad_end, dilation;
  bool bias;
};

std::ostream& operator<<(std::ostream& os, const ConvCfg& c) {
  return os << "N=" << c.n << " IC=" << c.ic << " IH=" << c.ih << " IW=" << c.iw << " OC=" << c.oc << " KH=" << c.kh
            << " KW=" << c.kw << " bias=" << c.bias;
}

ConvCfg ConvConfig() {
  return GENERATE(Catch::Generators::values<ConvCfg>({
      {1, 3, 7, 9, 4, 3, 3, {1, 1}, {1, 1}, {1, 1}, {1, 1}, true},       // batch 1, odd sizes, "same"
      {2, 3, 9, 11, 5, 3, 3, {2, 2}, {1, 0}, {0, 1}, {1, 1}, true},      // stride 2, asymmetric padding
      {2, 4, 11, 10, 3, 3, 2, {1, 2}, {2, 1}, {1, 0}, {2, 2}, false},    // dilation 2
      {3, 1, 8, 8, 2, 5, 5, {2, 1}, {2, 2}, {2, 2}, {1, 1}, false},      // 5x5 kernel
      {2, 6, 13, 7, 7, 1, 1, {2, 2}, {0, 0}, {0, 0}, {1, 1}, true},      // 1x1, stride 2
      {2, 5, 12, 9, 3, 3, 3, {2, 2}, {0, 2}, {1, 0}, {2, 1}, true},      // all at once
  }));
}

ir::Attrs ConvAttrs(const ConvCfg& c) {
  return ir::Attrs{{"stride", c.stride}, {"padding_begin", c.pad_begin}, {"padding_end", c.pad_end},
                   {"dilation", c.dilation}};
}

// The forward dst shape for `c` (the IR infers it for conv2d; the backward ops need it as input).
Shape ConvDst(const ConvCfg& c) {
  auto out = [](int64_t in, int64_t k, int64_t s, int64_t pb, int64_t pe, int64_t d) {
    return (in + pb + pe - d * (k - 1) - 1) / s + 1;
  };
  return {c.n, c.oc, out(c.ih, c.kh, c.stride[0], c.pad_begin[0], c.pad_end[0], c.dilation[0]),
          out(c.iw, c.kw, c.stride[1], c.pad_begin[1], c.pad_end[1], c.dilation[1])};
}

TEST_CASE("conv2d matches the reference", "[codegen][cpu][conv]") {
  ConvCfg c = ConvConfig();
  INFO(c);
  std::vector<ir::TensorType> in{F32({c.n, c.ic, c.ih, c.iw}), F32({c.oc, c.ic, c.kh, c.kw})};
  if (c.bias) in.push_back(F32({c.oc}));
  SECTION("operands in the arena") { CheckAgainstReference("conv2d", ConvAttrs(c), in); }
  SECTION("operands in input/output buffers") {
    Options o;
    o.placement = Placement::kIo;
    CheckAgainstReference("conv2d", ConvAttrs(c), in, o);
  }
}

TEST_CASE("conv2d_backward_data matches the reference", "[codegen][cpu][conv]") {
  ConvCfg c = ConvConfig();
  INFO(c);
  ir::Attrs a = ConvAttrs(c);
  a.Set("src_shape", Shape{c.n, c.ic, c.ih, c.iw});
  CheckAgainstReference("conv2d_backward_data", a, {F32(ConvDst(c)), F32({c.oc, c.ic, c.kh, c.kw})});
}

TEST_CASE("conv2d_backward_weights matches the reference", "[codegen][cpu][conv]") {
  ConvCfg c = ConvConfig();
  INFO(c);
  ir::Attrs a = ConvAttrs(c);
  a.Set("kernel", Shape{c.kh, c.kw});
  a.Set("with_bias", int64_t{c.bias ? 1 : 0});
  CheckAgainstReference("conv2d_backward_weights", a, {F32({c.n, c.ic, c.ih, c.iw}), F32(ConvDst(c))});
}

TEST_CASE("grouped and depthwise conv2d and their backward ops match the reference", "[codegen][cpu][conv][groups]") {
  struct Cfg {
    ConvCfg c;
    int64_t groups;
  };
  for (const Cfg& g : std::vector<Cfg>{
           {{2, 4, 9, 8, 6, 3, 3, {1, 1}, {1, 1}, {1, 1}, {1, 1}, true}, 2},      // groups 2
           {{2, 8, 9, 11, 8, 3, 3, {2, 2}, {1, 0}, {0, 1}, {1, 1}, true}, 8},     // depthwise, stride 2
           {{1, 16, 7, 7, 16, 3, 3, {1, 1}, {2, 2}, {2, 2}, {2, 2}, false}, 16},  // depthwise, dilation 2
           {{2, 3, 6, 6, 6, 5, 5, {1, 1}, {2, 2}, {2, 2}, {1, 1}, true}, 3},      // channel multiplier 2
       }) {
    const ConvCfg& c = g.c;
    INFO(c << " groups=" << g.groups);
    ir::Attrs a = ConvAttrs(c);
    a.Set("groups", g.groups);
    Shape wei{c.oc, c.ic / g.groups, c.kh, c.kw};
    std::vector<ir::TensorType> in{F32({c.n, c.ic, c.ih, c.iw}), F32(wei)};
    if (c.bias) in.push_back(F32({c.oc}));
    CheckAgainstReference("conv2d", a, in);
    ir::Attrs ad = a;
    ad.Set("src_shape", Shape{c.n, c.ic, c.ih, c.iw});
    CheckAgainstReference("conv2d_backward_data", ad, {F32(ConvDst(c)), F32(wei)});
    ir::Attrs aw = a;
    aw.Set("kernel", Shape{c.kh, c.kw});
    aw.Set("with_bias", int64_t{c.bias ? 1 : 0});
    CheckAgainstReference("conv2d_backward_weights", aw, {F32({c.n, c.ic, c.ih, c.iw}), F32(ConvDst(c))});
  }
}

struct PoolCfg {
  std::string kind;
  int64_t count_include_pad;
  Shape src;
  std::vector<int64_t> kernel, stride, pad_begin, pad_end;
};

std::ostream& operator<<(std::ostream& os, const PoolCfg& c) {
  return os << c.kind << " include_pad=" << c.count_include_pad << " src=" << ShapeToString(c.src)
            << " kernel=" << ShapeToString(c.kernel) << " stride=" << ShapeToString(c.stride)
            << " pad=" << ShapeToString(c.pad_begin) << "/" << ShapeToString(c.pad_end);
}

PoolCfg PoolConfig() {
  return GENERATE(Catch::Generators::values<PoolCfg>({
      {"max", 1, {2, 3, 8, 8}, {2, 2}, {2, 2}, {0, 0}, {0, 0}},
      {"max", 1, {1, 4, 9, 7}, {3, 3}, {2, 2}, {1, 1}, {1, 1}},      // odd sizes, overlapping windows, padding
      {"max", 1, {2, 2, 10, 9}, {3, 2}, {1, 2}, {2, 0}, {0, 1}},     // asymmetric padding
      {"avg", 1, {2, 3, 9, 7}, {3, 3}, {2, 2}, {1, 1}, {1, 1}},      // padding counted
      {"avg", 0, {2, 3, 9, 7}, {3, 3}, {2, 2}, {1, 1}, {1, 1}},      // padding excluded
      {"avg", 0, {1, 5, 11, 6}, {3, 2}, {1, 2}, {2, 1}, {0, 0}},
  }));
}

ir::Attrs PoolAttrs(const PoolCfg& c) {
  return ir::Attrs{{"kind", c.kind},          {"count_include_pad", c.count_include_pad}, {"kernel", c.kernel},
                   {"stride", c.stride},      {"padding_begin", c.pad_begin},            {"padding_end", c.pad_end}};
}

TEST_CASE("pool2d matches the reference", "[codegen][cpu][pool]") {
  PoolCfg c = PoolConfig();
  INFO(c);
  CheckAgainstReference("pool2d", PoolAttrs(c), {F32(c.src)});
}

TEST_CASE("pool2d_backward matches the reference", "[codegen][cpu][pool]") {
  PoolCfg c = PoolConfig();
  // With a fused ReLU backward (passes/fusion.h): masked by src > 0 (half of the random src)
  // in the native max loop and after oneDNN's average-pooling backward.
  bool relu = GENERATE(false, true);
  INFO(c << (relu ? " activation=relu" : ""));
  Shape dst = c.src;
  for (size_t i = 0; i < 2; ++i) dst[i + 2] = (c.src[i + 2] + c.pad_begin[i] + c.pad_end[i] - c.kernel[i]) / c.stride[i] + 1;
  ir::Attrs attrs = PoolAttrs(c);
  if (relu) attrs.Set("activation", std::string("relu"));
  SECTION("with the arena scratch") { CheckAgainstReference("pool2d_backward", attrs, {F32(dst), F32(c.src)}); }
  SECTION("without scratch (per-thread fallback)") {
    Options o;
    o.provide_scratch = false;
    CheckAgainstReference("pool2d_backward", attrs, {F32(dst), F32(c.src)}, o);
  }
}

// Max pooling's backward on channels-last (NHWC, "acdb") operands, as -O2 training graphs
// lay them out: the tiled vector path (stride = kernel, no padding; leftover rows and
// columns; channel counts with a tail) and the general path (overlapping, padded windows, or
// fewer than 4 channels), against the reference kernel on the same data in NCHW.
TEST_CASE("max pool2d_backward in NHWC matches the reference", "[codegen][cpu][pool]") {
  struct Cfg {
    int64_t n, c, ih, iw, k, s, p;
  };
  Cfg cfg = GENERATE(Catch::Generators::values<Cfg>({
      {2, 6, 24, 24, 2, 2, 0},  // LeNet pool 1: tiled, 4 + overlapping tail of 2 channels
      {2, 16, 7, 9, 2, 2, 0},   // tiled, leftover row and column get zero gradient
      {3, 5, 6, 6, 3, 3, 0},    // tiled 3x3
      {2, 3, 8, 8, 2, 2, 0},    // fewer than 4 channels: general path
      {2, 8, 9, 7, 3, 2, 1},    // overlapping, padded windows: general path
  }));
  bool relu = GENERATE(false, true);  // a fused ReLU backward: the gradient passes where src > 0
  INFO("N=" << cfg.n << " C=" << cfg.c << " IH=" << cfg.ih << " IW=" << cfg.iw << " K=" << cfg.k << " S=" << cfg.s
            << " P=" << cfg.p << (relu ? " activation=relu" : ""));
  const int64_t oh = (cfg.ih + 2 * cfg.p - cfg.k) / cfg.s + 1, ow = (cfg.iw + 2 * cfg.p - cfg.k) / cfg.s + 1;
  ir::Node node;
  node.op = "pool2d_backward";
  node.name = "pool_grad";
  node.attrs = ir::Attrs{{"kind", std::string("max")}, {"kernel", std::vector<int64_t>{cfg.k, cfg.k}},
                         {"stride", std::vector<int64_t>{cfg.s, cfg.s}},
                         {"padding_begin", std::vector<int64_t>{cfg.p, cfg.p}},
                         {"padding_end", std::vector<int64_t>{cfg.p, cfg.p}}};
  if (relu) node.attrs.Set("activation", std::string("relu"));
  Shape src_shape{cfg.n, cfg.c, cfg.ih, cfg.iw}, dst_shape{cfg.n, cfg.c, oh, ow};
  std::mt19937 rng(31);
  std::uniform_real_distribution<double> u(-1, 1);
  ir::RefTensor src(src_shape), dy(dst_shape);
  for (double& v : src.data) v = static_cast<float>(u(rng));
  for (double& v : dy.data) v = static_cast<float>(u(rng));
  std::vector<ir::RefTensor> outs{ir::RefTensor(src_shape)};
  REQUIRE(ir::FindOp("pool2d_backward")->reference(node, {&dy, &src}, outs).ok());
  // NCHW <-> NHWC index maps.
  auto nhwc = [](const Shape& s, int64_t n, int64_t c, int64_t h, int64_t w) {
    return ((n * s[2] + h) * s[3] + w) * s[1] + c;
  };
  auto nchw = [](const Shape& s, int64_t n, int64_t c, int64_t h, int64_t w) {
    return ((n * s[1] + c) * s[2] + h) * s[3] + w;
  };
  const int64_t src_elems = NumElements(src_shape), dst_elems = NumElements(dst_shape);
  // One arena: dy | src | dx, each 64-byte aligned; dx pre-filled with garbage.
  auto aligned = [](int64_t bytes) { return (bytes + 63) / 64 * 64; };
  const int64_t dy_off = 0, src_off = aligned(dst_elems * 4), dx_off = src_off + aligned(src_elems * 4);
  std::vector<float> arena(static_cast<size_t>((dx_off + aligned(src_elems * 4)) / 4 + 16), 7.f);
  float* base = reinterpret_cast<float*>((reinterpret_cast<uintptr_t>(arena.data()) + 63) / 64 * 64);
  for (int64_t n = 0; n < cfg.n; ++n)
    for (int64_t c = 0; c < cfg.c; ++c) {
      for (int64_t h = 0; h < cfg.ih; ++h)
        for (int64_t w = 0; w < cfg.iw; ++w)
          base[src_off / 4 + nhwc(src_shape, n, c, h, w)] = static_cast<float>(src[nchw(src_shape, n, c, h, w)]);
      for (int64_t h = 0; h < oh; ++h)
        for (int64_t w = 0; w < ow; ++w)
          base[dy_off / 4 + nhwc(dst_shape, n, c, h, w)] = static_cast<float>(dy[nchw(dst_shape, n, c, h, w)]);
    }
  auto ref = [](int64_t offset, const Shape& dims) {
    TensorRef r{BufferKind::kArena, 0, offset, DType::kF32, dims};
    r.layout = "acdb";
    r.layout_bytes = NumElements(dims) * 4;
    return r;
  };
  StepDesc desc;
  desc.kind = "pool2d_backward";
  desc.node_name = "pool_grad";
  desc.strings["kind"] = "max";
  desc.ints = {{"kernel", {cfg.k, cfg.k}}, {"stride", {cfg.s, cfg.s}}, {"padding_begin", {cfg.p, cfg.p}},
               {"padding_end", {cfg.p, cfg.p}}};
  if (relu) desc.strings["activation"] = "relu";
  desc.inputs = {ref(dy_off, dst_shape), ref(src_off, src_shape)};
  desc.outputs = {ref(dx_off, src_shape)};
  auto step = backends::cpu::CpuSteps().Create(desc);
  INFO((step.ok() ? std::string() : step.status().ToString()));
  REQUIRE(step.ok());
  runtime::ExecContext ctx;
  ctx.arena = reinterpret_cast<uint8_t*>(base);
  REQUIRE((*step)->Run(ctx).ok());
  double worst = 0;
  for (int64_t n = 0; n < cfg.n; ++n)
    for (int64_t c = 0; c < cfg.c; ++c)
      for (int64_t h = 0; h < cfg.ih; ++h)
        for (int64_t w = 0; w < cfg.iw; ++w) {
          double got = base[dx_off / 4 + nhwc(src_shape, n, c, h, w)];
          double expect = outs[0][nchw(src_shape, n, c, h, w)];
          worst = std::max(worst, std::abs(got - expect));
        }
  CHECK(worst <= 1e-6);
}

TEST_CASE("a layout that does not fit the operand's rank is InvalidArgument, not a crash", "[codegen][cpu][layout]") {
  // Found by the artifact fuzzer: a 3-D format tag on a 4-D activation.
  StepDesc desc;
  desc.kind = "relu";
  desc.node_name = "act";
  TensorRef x{BufferKind::kArena, 0, 0, DType::kF32, {2, 16, 4, 4}};
  x.layout = "aBc16b";
  x.layout_bytes = 2 * 16 * 4 * 4 * 4;
  desc.inputs = {x};
  desc.outputs = {x};
  auto step = backends::cpu::CpuSteps().Create(desc);
  REQUIRE_FALSE(step.ok());
  CHECK(step.status().code() == StatusCode::kInvalidArgument);
  CHECK_THAT(step.status().message(), Catch::Contains("relu \"act\"") && Catch::Contains("aBc16b") &&
                                          Catch::Contains("[2,16,4,4]"));
  // The same tag on a 3-D operand is accepted.
  TensorRef y{BufferKind::kArena, 0, 0, DType::kF32, {2, 16, 4}};
  y.layout = "aBc16b";
  y.layout_bytes = 2 * 16 * 4 * 4;
  desc.inputs = {y};
  desc.outputs = {y};
  CHECK(backends::cpu::CpuSteps().Create(desc).ok());
}

TEST_CASE("max pool2d_backward: native in NCHW, 64-aligned scratch in blocked layouts", "[codegen][cpu][pool]") {
  StepDesc desc;
  desc.kind = "pool2d_backward";
  desc.node_name = "pool1_grad";
  desc.strings["kind"] = "max";
  desc.ints = {{"kernel", {3, 3}}, {"stride", {2, 2}}, {"padding_begin", {1, 1}}, {"padding_end", {1, 1}}};
  desc.inputs = {TensorRef{BufferKind::kArena, 0, 0, DType::kF32, {2, 3, 5, 4}},
                 TensorRef{BufferKind::kArena, 0, 0, DType::kF32, {2, 3, 9, 7}}};
  desc.outputs = {TensorRef{BufferKind::kArena, 0, 0, DType::kF32, {2, 3, 9, 7}}};
  // Dense NCHW: the native loop finds each window's maximum again; no scratch.
  StatusOr<int64_t> dense = backends::cpu::CpuSteps().ScratchBytes(desc);
  REQUIRE(dense.ok());
  CHECK(*dense == 0);
  // nChw16c: oneDNN reruns the forward pass for its workspace in the step's scratch.
  for (TensorRef* r : {&desc.inputs[0], &desc.inputs[1], &desc.outputs[0]}) {
    r->layout = "aBcd16b";
    r->layout_bytes = r->dims[0] * 16 * r->dims[2] * r->dims[3] * 4;
  }
  StatusOr<int64_t> bytes = backends::cpu::CpuSteps().ScratchBytes(desc);
  INFO((bytes.ok() ? std::string() : bytes.status().ToString()));
  REQUIRE(bytes.ok());
  // At least the dst copy (2*16*5*4 floats) plus a workspace.
  CHECK(*bytes > 2 * 16 * 5 * 4 * 4);
  CHECK(*bytes % 64 == 0);
  desc.strings["kind"] = "avg";
  REQUIRE(backends::cpu::CpuSteps().ScratchBytes(desc).ok());
}

TEST_CASE("dense and its backward ops match the reference", "[codegen][cpu][dense]") {
  auto [n, k, m] = GENERATE(std::make_tuple(1, 7, 3), std::make_tuple(5, 13, 11), std::make_tuple(8, 64, 10));
  bool bias = GENERATE(true, false);
  INFO("N=" << n << " K=" << k << " M=" << m << " bias=" << bias);
  std::vector<ir::TensorType> in{F32({n, k}), F32({m, k})};
  if (bias) in.push_back(F32({m}));
  CheckAgainstReference("dense", {}, in);
  CheckAgainstReference("dense_backward_data", {}, {F32({n, m}), F32({m, k})});
  CheckAgainstReference("dense_backward_weights", ir::Attrs{{"with_bias", int64_t{bias ? 1 : 0}}},
                        {F32({n, k}), F32({n, m})});
}

TEST_CASE("activations and their backward ops match the reference", "[codegen][cpu][eltwise]") {
  std::string kind = GENERATE("relu", "sigmoid", "tanh");
  Shape shape = GENERATE(Shape{2, 3, 5, 7}, Shape{17}, Shape{});
  INFO(kind << " " << ShapeToString(shape));
  CheckAgainstReference(kind, {}, {F32(shape)});
  CheckAgainstReference(kind + "_backward", {}, {F32(shape), F32(shape)});
}

TEST_CASE("leaky_relu and its backward match the reference, in place too", "[codegen][cpu][eltwise]") {
  double alpha = GENERATE(0.01, 0.3);
  Shape shape = GENERATE(Shape{2, 3, 5, 7}, Shape{17});
  INFO("alpha " << alpha << " " << ShapeToString(shape));
  ir::Attrs attrs{{"alpha", alpha}};
  CheckAgainstReference("leaky_relu", attrs, {F32(shape)});
  CheckAgainstReference("leaky_relu_backward", attrs, {F32(shape), F32(shape)});
  Options o;
  o.placement = Placement::kInPlace;
  CheckAgainstReference("leaky_relu", attrs, {F32(shape)}, o);
  CheckAgainstReference("leaky_relu_backward", attrs, {F32(shape), F32(shape)}, o);
}

TEST_CASE("activations with a src backward match the reference, in place too", "[codegen][cpu][eltwise]") {
  struct Case {
    std::string kind;
    ir::Attrs attrs;
  } cases[] = {
      {"elu", {}},
      {"elu", ir::Attrs{{"alpha", 0.4}}},
      {"selu", {}},
      {"gelu", {}},
      {"silu", {}},
      {"silu", ir::Attrs{{"beta", 2.0}}},
      {"hard_sigmoid", {}},
      {"hard_sigmoid", ir::Attrs{{"alpha", 1.0 / 6}, {"beta", 0.5}}},
      {"hard_swish", {}},
      {"softplus", {}},
      {"softsign", {}},
      {"clip", {}},
      {"clip", ir::Attrs{{"a_min", -1.0}, {"a_max", 2.5}}},
  };
  for (const Case& c : cases) {
    for (const Shape& shape : {Shape{2, 3, 5, 7}, Shape{17}}) {
      INFO(c.kind << " " << ShapeToString(shape));
      CheckAgainstReference(c.kind, c.attrs, {F32(shape)});
      CheckAgainstReference(c.kind + "_backward", c.attrs, {F32(shape), F32(shape)});
      Options o;
      o.placement = Placement::kInPlace;
      CheckAgainstReference(c.kind, c.attrs, {F32(shape)}, o);
      CheckAgainstReference(c.kind + "_backward", c.attrs, {F32(shape), F32(shape)}, o);
    }
  }
}

TEST_CASE("activations run in place", "[codegen][cpu][eltwise]") {
  std::string kind = GENERATE("relu", "sigmoid", "tanh");
  Options o;
  o.placement = Placement::kInPlace;
  CheckAgainstReference(kind, {}, {F32({3, 4, 5, 6})}, o);
  CheckAgainstReference(kind + "_backward", {}, {F32({3, 4, 5, 6}), F32({3, 4, 5, 6})}, o);
}

TEST_CASE("add and mul broadcast like NumPy", "[codegen][cpu][binary]") {
  std::string kind = GENERATE("add", "mul");
  auto [a, b] = GENERATE(std::make_pair(Shape{2, 3, 4}, Shape{2, 3, 4}),   // same shape
                         std::make_pair(Shape{2, 3, 5}, Shape{3, 1}),      // src1 broadcast, lower rank
                         std::make_pair(Shape{2, 3, 5, 5}, Shape{1, 3, 1, 1}),
                         std::make_pair(Shape{5}, Shape{4, 3, 5}),         // only src0 broadcast: swapped
                         std::make_pair(Shape{1, 7, 1}, Shape{3, 7, 2}),
                         std::make_pair(Shape{3, 1, 5}, Shape{1, 4, 1}),   // both broadcast: native loop
                         std::make_pair(Shape{4, 1}, Shape{3}),            // both broadcast, rank mismatch
                         std::make_pair(Shape{}, Shape{2, 3}),             // scalar src0
                         std::make_pair(Shape{2, 3}, Shape{}),             // scalar src1
                         std::make_pair(Shape{}, Shape{}));
  INFO(kind << " " << ShapeToString(a) << " " << ShapeToString(b));
  CheckAgainstReference(kind, {}, {F32(a), F32(b)});
}

TEST_CASE("reduce_sum and reduce_mean match the reference", "[codegen][cpu][reduce]") {
  std::string kind = GENERATE("reduce_sum", "reduce_mean");
  int64_t keepdims = GENERATE(0, 1);
  auto [src, axes] = GENERATE(std::make_pair(Shape{3, 5, 7}, Shape{1}),
                              std::make_pair(Shape{3, 5, 7}, Shape{0, 2}),
                              std::make_pair(Shape{3, 5, 7}, Shape{-1}),
                              std::make_pair(Shape{4, 6}, Shape{0, 1}),
                              std::make_pair(Shape{2, 3, 4, 5}, Shape{2, 3}),
                              std::make_pair(Shape{3, 1, 4}, Shape{1}),   // only a size-1 axis: a copy
                              std::make_pair(Shape{3, 5}, Shape{}),       // no axes: a copy
                              std::make_pair(Shape{3, 0}, Shape{1}),      // zero elements: 0 or NaN
                              std::make_pair(Shape{0, 4}, Shape{1}));     // zero elements, empty dst
  INFO(kind << " src " << ShapeToString(src) << " axes " << ShapeToString(axes) << " keepdims " << keepdims);
  CheckAgainstReference(kind, ir::Attrs{{"axes", axes}, {"keepdims", keepdims}}, {F32(src)});
}

TEST_CASE("broadcast_to and reshape match the reference", "[codegen][cpu][native]") {
  auto [src, shape] = GENERATE(std::make_pair(Shape{3, 1}, Shape{2, 3, 4}), std::make_pair(Shape{}, Shape{5, 2}),
                               std::make_pair(Shape{1, 4, 1}, Shape{3, 4, 5}), std::make_pair(Shape{2, 3}, Shape{2, 3}));
  INFO(ShapeToString(src) << " -> " << ShapeToString(shape));
  CheckAgainstReference("broadcast_to", ir::Attrs{{"shape", shape}}, {F32(src)});
  CheckAgainstReference("reshape", ir::Attrs{{"shape", Shape{NumElements(src)}}}, {F32(src)});
  Options in_place;
  in_place.placement = Placement::kInPlace;  // dst given the bytes of src: nothing to copy
  CheckAgainstReference("reshape", ir::Attrs{{"shape", Shape{NumElements(src)}}}, {F32(src)}, in_place);
}

TEST_CASE("softmax and log_softmax match the reference", "[codegen][cpu][softmax]") {
  std::string kind = GENERATE("softmax", "log_softmax");
  auto [shape, axis] = GENERATE(std::make_pair(Shape{4, 10}, int64_t{-1}), std::make_pair(Shape{3, 7, 5}, int64_t{1}),
                                std::make_pair(Shape{6, 3, 2}, int64_t{0}), std::make_pair(Shape{13}, int64_t{0}));
  INFO(kind << " " << ShapeToString(shape) << " axis " << axis);
  CheckAgainstReference(kind, ir::Attrs{{"axis", axis}}, {F32(shape)});
  CheckAgainstReference(kind + "_backward", ir::Attrs{{"axis", axis}}, {F32(shape), F32(shape)});
}

TEST_CASE("softmax_cross_entropy, its backward and argmax match the reference", "[codegen][cpu][loss]") {
  auto [n, c] = GENERATE(std::make_pair(1, 2), std::make_pair(7, 10), std::make_pair(16, 1000));
  INFO("N=" << n << " C=" << c);
  CheckAgainstReference("softmax_cross_entropy", {}, {F32({n, c}), S32({n})}, WithLabels(1, c));
  CheckAgainstReference("softmax_cross_entropy_backward", {}, {F32({n}), F32({n, c}), S32({n})}, WithLabels(2, c));
  CheckAgainstReference("argmax", {}, {F32({n, c})});
}

TEST_CASE("fill matches the reference", "[codegen][cpu][native]") {
  Shape shape = GENERATE(Shape{}, Shape{3, 5}, Shape{0});
  CheckAgainstReference("fill", ir::Attrs{{"shape", shape}, {"value", 0.25}}, {});
}

TEST_CASE("one_hot matches the reference, out-of-range indices included", "[codegen][cpu][native]") {
  auto [n, depth] = GENERATE(std::make_pair(int64_t{1}, int64_t{1}), std::make_pair(int64_t{9}, int64_t{4}),
                             std::make_pair(int64_t{64}, int64_t{10}), std::make_pair(int64_t{0}, int64_t{3}));
  double on = GENERATE(1.0, 2.5);
  INFO("N=" << n << " depth=" << depth << " on_value=" << on);
  Options o;
  o.fill = [depth = depth](size_t, std::vector<double>& v, std::mt19937& rng) {
    // Indices in [-2, depth + 2): some negative, some >= depth (rows of off_value only).
    std::uniform_int_distribution<int> pick(-2, static_cast<int>(depth) + 1);
    for (double& x : v) x = pick(rng);
    if (!v.empty()) v[0] = -1;
    if (v.size() > 1) v[1] = static_cast<double>(depth);
  };
  ir::Attrs a{{"depth", depth}, {"on_value", on}, {"off_value", -0.25}};
  CheckAgainstReference("one_hot", a, {S32({n})}, o);
  o.placement = Placement::kIo;
  CheckAgainstReference("one_hot", a, {S32({n})}, o);
}

TEST_CASE("sgd_update matches the reference", "[codegen][cpu][sgd]") {
  double momentum = GENERATE(0.0, 0.9);
  double clip = GENERATE(-1.0, 0.3);
  bool in_place = GENERATE(false, true);
  INFO("momentum " << momentum << " clip_gradient " << clip << " in place " << in_place);
  std::vector<ir::TensorType> in{F32({7, 9}), F32({7, 9}), F32({}), F32({})};
  if (momentum > 0) in.push_back(F32({7, 9}));
  Options o;
  o.fill = [](size_t i, std::vector<double>& v, std::mt19937& rng) {
    std::uniform_real_distribution<float> uniform(-1.f, 1.f);
    for (double& x : v) x = uniform(rng);
    if (i == 2) v[0] = 0.1f;   // lr
    if (i == 3) v[0] = 0.5f;   // rescale_grad, e.g. 1 / batch_size
  };
  if (in_place) {
    o.placement = Placement::kInPlace;
    o.num_in_place = momentum > 0 ? 2 : 1;
  }
  ir::Attrs a{{"wd", 1e-2}, {"momentum", momentum}, {"clip_gradient", clip}};
  CheckAgainstReference("sgd_update", a, in, o);
}

TEST_CASE("adam_update matches the reference", "[codegen][cpu][adam]") {
  double clip = GENERATE(-1.0, 0.3);
  bool in_place = GENERATE(false, true);
  int64_t n = GENERATE(1, 37);  // 37: not a multiple of any vector width
  INFO("clip_gradient " << clip << " in place " << in_place << " n " << n);
  std::vector<ir::TensorType> in{F32({n, 3}), F32({n, 3}), F32({n, 3}), F32({n, 3}), F32({}), F32({})};
  Options o;
  o.fill = [](size_t i, std::vector<double>& v, std::mt19937& rng) {
    std::uniform_real_distribution<float> uniform(-1.f, 1.f);
    for (double& x : v) x = uniform(rng);
    if (i == 3) {
      for (double& x : v) x = std::abs(x);  // var >= 0
    }
    if (i == 4) v[0] = 0.01f;  // lr_t
    if (i == 5) v[0] = 0.5f;   // rescale_grad
  };
  if (in_place) {
    o.placement = Placement::kInPlace;
    o.num_in_place = 3;
  }
  ir::Attrs a{{"beta1", 0.9}, {"beta2", 0.999}, {"epsilon", 1e-8}, {"wd", 1e-2}, {"clip_gradient", clip}};
  CheckAgainstReference("adam_update", a, in, o);
}

TEST_CASE("oneDNN kinds with zero-volume operands write the empty sums", "[codegen][cpu][zero]") {
  SECTION("dense with K=0 gives the bias") {
    CheckAgainstReference("dense", {}, {F32({3, 0}), F32({4, 0}), F32({4})});
  }
  SECTION("backward weights with N=0 give zeros") {
    CheckAgainstReference("dense_backward_weights", ir::Attrs{{"with_bias", int64_t{1}}}, {F32({0, 5}), F32({0, 3})});
    ConvCfg c{0, 2, 5, 5, 3, 3, 3, {1, 1}, {0, 0}, {0, 0}, {1, 1}, true};
    ir::Attrs a = ConvAttrs(c);
    a.Set("kernel", Shape{3, 3});
    a.Set("with_bias", int64_t{1});
    CheckAgainstReference("conv2d_backward_weights", a, {F32({0, 2, 5, 5}), F32(ConvDst(c))});
  }
  SECTION("conv2d with IC=0 gives the bias") {
    ConvCfg c{2, 0, 5, 5, 3, 3, 3, {1, 1}, {1, 1}, {1, 1}, {1, 1}, true};
    CheckAgainstReference("conv2d", ConvAttrs(c), {F32({2, 0, 5, 5}), F32({3, 0, 3, 3}), F32({3})});
  }
  SECTION("empty activations and softmax") {
    CheckAgainstReference("relu", {}, {F32({0, 3})});
    CheckAgainstReference("softmax", {}, {F32({0, 3})});
  }
}

// A hand-built desc for error tests.
StepDesc LossDesc(const std::string& kind) {
  StepDesc desc;
  desc.kind = kind;
  desc.node_name = "loss1";
  if (kind == "softmax_cross_entropy_backward") {
    desc.inputs.push_back(TensorRef{BufferKind::kArena, 0, 0, DType::kF32, {4}});
  }
  desc.inputs.push_back(TensorRef{BufferKind::kArena, 0, 64, DType::kF32, {4, 5}});
  desc.inputs.push_back(TensorRef{BufferKind::kArena, 0, 192, DType::kS32, {4}});
  desc.outputs.push_back(kind == "softmax_cross_entropy" ? TensorRef{BufferKind::kArena, 0, 256, DType::kF32, {4}}
                                                         : TensorRef{BufferKind::kArena, 0, 256, DType::kF32, {4, 5}});
  return desc;
}

TEST_CASE("a label out of range is an InvalidArgument naming the node", "[codegen][cpu][loss]") {
  std::string kind = GENERATE("softmax_cross_entropy", "softmax_cross_entropy_backward");
  int32_t bad = GENERATE(5, -1, 1000000);
  INFO(kind << " label " << bad);
  StepDesc desc = LossDesc(kind);
  size_t label = desc.inputs.size() - 1;
  std::vector<std::vector<double>> inputs;
  for (const TensorRef& r : desc.inputs) inputs.emplace_back(static_cast<size_t>(NumElements(r.dims)), 0.0);
  inputs[label] = {0, 4, static_cast<double>(bad), 1};
  StepRun run = CreateAndRun(desc, inputs, {});
  INFO(run.status.ToString());
  CHECK(run.status.code() == StatusCode::kInvalidArgument);
  CHECK_THAT(run.status.message(), Catch::Contains("\"loss1\"") && Catch::Contains(kind) &&
                                       Catch::Contains("label " + std::to_string(bad)) &&
                                       Catch::Contains("sample 2") && Catch::Contains("[0, 5)"));
}

TEST_CASE("an unknown kind is Unimplemented", "[codegen][cpu]") {
  StepDesc desc;
  desc.kind = "lrn";
  desc.node_name = "bn1";
  desc.inputs = {TensorRef{BufferKind::kArena, 0, 0, DType::kF32, {2, 3}}};
  desc.outputs = {TensorRef{BufferKind::kArena, 0, 64, DType::kF32, {2, 3}}};
  auto step = backends::cpu::CpuSteps().Create(desc);
  REQUIRE_FALSE(step.ok());
  CHECK(step.status().code() == StatusCode::kUnimplemented);
  CHECK_THAT(step.status().message(), Catch::Contains("lrn \"bn1\""));
  CHECK(backends::cpu::CpuSteps().ScratchBytes(desc).status().code() == StatusCode::kUnimplemented);
}

TEST_CASE("bad operands are InvalidArgument with the shapes", "[codegen][cpu]") {
  StepDesc desc;
  desc.kind = "conv2d";
  desc.node_name = "conv1";
  desc.ints = {{"stride", {1, 1}}, {"padding_begin", {0, 0}}, {"padding_end", {0, 0}}, {"dilation", {1, 1}}};
  desc.inputs = {TensorRef{BufferKind::kArena, 0, 0, DType::kF32, {2, 3, 9, 9}}};
  desc.outputs = {TensorRef{BufferKind::kArena, 0, 4096, DType::kF32, {2, 4, 7, 7}}};
  SECTION("too few inputs") {
    auto step = backends::cpu::CpuSteps().Create(desc);
    REQUIRE_FALSE(step.ok());
    CHECK(step.status().code() == StatusCode::kInvalidArgument);
    CHECK_THAT(step.status().message(), Catch::Contains("conv2d \"conv1\"") && Catch::Contains("2 to 4 inputs") &&
                                            Catch::Contains("src arena+0 f32[2,3,9,9]"));
  }
  SECTION("dst shape does not follow the convolution") {
    desc.inputs.push_back(TensorRef{BufferKind::kArena, 0, 1024, DType::kF32, {4, 3, 3, 3}});
    desc.outputs[0].dims = {2, 4, 8, 7};
    auto step = backends::cpu::CpuSteps().Create(desc);
    REQUIRE_FALSE(step.ok());
    CHECK(step.status().code() == StatusCode::kInvalidArgument);
    CHECK_THAT(step.status().message(), Catch::Contains("[2,4,7,7]") && Catch::Contains("dst arena+4096 f32[2,4,8,7]"));
  }
  SECTION("wrong dtype") {
    desc.kind = "relu";
    desc.inputs[0].dtype = DType::kS32;
    desc.outputs[0].dims = desc.inputs[0].dims;
    auto step = backends::cpu::CpuSteps().Create(desc);
    REQUIRE_FALSE(step.ok());
    CHECK(step.status().code() == StatusCode::kInvalidArgument);
    CHECK_THAT(step.status().message(), Catch::Contains("src must be f32"));
  }
}

TEST_CASE("a step runs concurrently on distinct arenas", "[codegen][cpu][threads]") {
  // Primitives use the user scratchpad, so one step may run on threads other than its creator's.
  StepDesc desc;
  desc.kind = "conv2d";
  desc.node_name = "conv1";
  desc.ints = {{"stride", {1, 1}}, {"padding_begin", {1, 1}}, {"padding_end", {1, 1}}, {"dilation", {1, 1}}};
  TensorRef src{BufferKind::kArena, 0, 0, DType::kF32, {4, 8, 16, 16}};
  TensorRef wei{BufferKind::kArena, 0, Align64(src.size_bytes()), DType::kF32, {16, 8, 3, 3}};
  TensorRef dst{BufferKind::kArena, 0, wei.offset + Align64(wei.size_bytes()), DType::kF32, {4, 16, 16, 16}};
  desc.inputs = {src, wei};
  desc.outputs = {dst};
  StatusOr<int64_t> scratch_bytes = backends::cpu::CpuSteps().ScratchBytes(desc);
  REQUIRE(scratch_bytes.ok());
  int64_t arena_bytes = dst.offset + Align64(dst.size_bytes());
  if (*scratch_bytes > 0) {
    desc.scratch.push_back(TensorRef{BufferKind::kArena, 0, arena_bytes, DType::kF32, {*scratch_bytes / 4}});
    arena_bytes += *scratch_bytes;
  }
  auto step = backends::cpu::CpuSteps().Create(desc);
  REQUIRE(step.ok());
  constexpr int kThreads = 4;
  std::vector<Buffer> arenas;
  for (int t = 0; t < kThreads; ++t) {
    arenas.emplace_back(arena_bytes);
    std::mt19937 rng(kSeed + static_cast<uint32_t>(t));
    std::uniform_real_distribution<float> uniform(-1.f, 1.f);
    for (const TensorRef& ref : {src, wei}) {
      auto* f = reinterpret_cast<float*>(arenas.back().data.get() + ref.offset);
      for (int64_t i = 0; i < NumElements(ref.dims); ++i) f[i] = uniform(rng);
    }
  }
  // Expected: each arena run alone on this thread.
  std::vector<std::vector<double>> expected;
  for (int t = 0; t < kThreads; ++t) {
    ExecContext ctx;
    ctx.arena = arenas[static_cast<size_t>(t)].data.get();
    REQUIRE((*step)->Run(ctx).ok());
    expected.push_back(Read(ctx.Ptr(dst), DType::kF32, NumElements(dst.dims)));
    std::memset(ctx.Ptr(dst), 0xff, static_cast<size_t>(dst.size_bytes()));
  }
  std::vector<Status> statuses(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      ExecContext ctx;
      ctx.arena = arenas[static_cast<size_t>(t)].data.get();
      for (int rep = 0; rep < 5 && statuses[static_cast<size_t>(t)].ok(); ++rep) {
        statuses[static_cast<size_t>(t)] = (*step)->Run(ctx);
      }
    });
  }
  for (auto& th : threads) th.join();
  for (int t = 0; t < kThreads; ++t) {
    INFO("thread " << t);
    CHECK(statuses[static_cast<size_t>(t)].ok());
    ExecContext ctx;
    ctx.arena = arenas[static_cast<size_t>(t)].data.get();
    CHECK(Read(ctx.Ptr(dst), DType::kF32, NumElements(dst.dims)) == expected[static_cast<size_t>(t)]);
  }
}

}  // namespace
}  // namespace kiln::codegen_test

namespace kiln::codegen_test {
namespace {

// Variances (inputs `var_inputs`) drawn from [0.2, 2] so that sqrt(variance + eps) is well
// away from 0; the rest uniform [-1, 1].
Options PositiveVariance(std::vector<size_t> var_inputs, Placement placement = Placement::kArena) {
  Options o;
  o.placement = placement;
  o.fill = [var_inputs](size_t i, std::vector<double>& v, std::mt19937& rng) {
    bool positive = std::find(var_inputs.begin(), var_inputs.end(), i) != var_inputs.end();
    std::uniform_real_distribution<double> d(positive ? 0.2 : -1.0, positive ? 2.0 : 1.0);
    for (double& x : v) x = d(rng);
  };
  return o;
}

TEST_CASE("batch_norm, batch_norm_training and batch_norm_backward match the reference",
          "[codegen][cpu][batch_norm]") {
  Shape shape = GENERATE(Shape{2, 3, 5, 7}, Shape{1, 16, 3, 3}, Shape{5, 8}, Shape{3, 17, 1, 1});
  Placement placement = GENERATE(Placement::kArena, Placement::kIo, Placement::kInPlace);
  int64_t c = shape[1];
  INFO(ShapeToString(shape) << " placement " << static_cast<int>(placement));
  ir::TensorType data{DType::kF32, shape, ""}, vec{DType::kF32, {c}, ""};
  CheckAgainstReference("batch_norm", ir::Attrs{{"epsilon", 1e-5}}, {data, vec, vec, vec, vec},
                        PositiveVariance({4}, placement));
  CheckAgainstReference("batch_norm", ir::Attrs{{"epsilon", 1e-3}, {"activation", std::string("relu")}},
                        {data, vec, vec, vec, vec}, PositiveVariance({4}, placement));
  CheckAgainstReference("batch_norm_training", ir::Attrs{{"epsilon", 1e-5}}, {data, vec, vec},
                        PositiveVariance({}, placement));
  for (int64_t global : {0, 1}) {
    INFO("use_global_stats " << global);
    CheckAgainstReference("batch_norm_backward", ir::Attrs{{"epsilon", 1e-5}, {"use_global_stats", global}},
                          {data, data, vec, vec, vec, vec}, PositiveVariance({5}, placement));
  }
}

TEST_CASE("moving_average and dropout match the reference", "[codegen][cpu][batch_norm][dropout]") {
  Shape shape = GENERATE(Shape{7}, Shape{64});
  ir::TensorType vec{DType::kF32, shape, ""};
  CheckAgainstReference("moving_average", ir::Attrs{{"momentum", 0.9}}, {vec, vec});
  Options in_place;
  in_place.placement = Placement::kInPlace;
  CheckAgainstReference("moving_average", ir::Attrs{{"momentum", 0.75}}, {vec, vec}, in_place);
  // dropout on a tensor large enough to run on every thread, with a few seeds.
  Shape big = GENERATE(Shape{3, 5, 7}, Shape{4, 64, 32, 16});
  ir::TensorType data{DType::kF32, big, ""}, seed{DType::kS32, {}, ""};
  Options o;
  o.fill = [](size_t i, std::vector<double>& v, std::mt19937& rng) {
    std::uniform_real_distribution<double> d(-1, 1);
    for (double& x : v) x = i == 1 ? static_cast<double>(rng() % 100000) - 50000 : d(rng);
  };
  CheckAgainstReference("dropout", ir::Attrs{{"rate", 0.5}, {"salt", int64_t{2}}}, {data, seed}, o);
  CheckAgainstReference("dropout", ir::Attrs{{"rate", 0.1}}, {data, seed}, o);
  CheckAgainstReference("dropout", ir::Attrs{{"rate", 0.3}, {"axes", std::vector<int64_t>{1, 2}}}, {data, seed}, o);
  CheckAgainstReference("dropout", ir::Attrs{{"rate", 0.3}, {"axes", std::vector<int64_t>{0}}}, {data, seed}, o);
}

}  // namespace
}  // namespace kiln::codegen_test

namespace kiln::codegen_test {
namespace {

TEST_CASE("sub, div, maximum, minimum, greater_equal match the reference with broadcasting",
          "[codegen][cpu][binary]") {
  std::string kind = GENERATE("sub", "div", "maximum", "minimum", "greater_equal", "add", "mul");
  auto shapes = GENERATE(std::make_pair(Shape{2, 3, 4}, Shape{2, 3, 4}), std::make_pair(Shape{2, 3, 4}, Shape{3, 1}),
                         std::make_pair(Shape{3, 1}, Shape{2, 3, 4}),  // src0 broadcast: swapped or native
                         std::make_pair(Shape{2, 1, 4}, Shape{1, 3, 1}),  // both broadcast: native
                         std::make_pair(Shape{4, 8, 5, 5}, Shape{4, 8, 1, 1}), std::make_pair(Shape{}, Shape{6}));
  INFO(kind << " " << ShapeToString(shapes.first) << " x " << ShapeToString(shapes.second));
  Options o;
  o.fill = [kind](size_t i, std::vector<double>& v, std::mt19937& rng) {
    // Denominators away from 0.
    std::uniform_real_distribution<double> d(kind == "div" && i == 1 ? 0.5 : -1.0, kind == "div" && i == 1 ? 2.0 : 1.0);
    for (double& x : v) x = d(rng);
  };
  CheckAgainstReference(kind, {}, {F32(shapes.first), F32(shapes.second)}, o);
}

// oneDNN's nChw<block>c ("aBcd<block>b") over an NCHW shape: the position of NCHW element i
// and the element count with the last channel block padded.
struct NchwBlocked {
  Shape dims;
  int64_t block;
  int64_t Blocks() const { return (dims[1] + block - 1) / block; }
  int64_t PaddedElements() const { return dims[0] * Blocks() * block * dims[2] * dims[3]; }
  int64_t operator()(int64_t i) const {
    int64_t hw = dims[2] * dims[3], c = dims[1];
    int64_t w = i % hw, ch = (i / hw) % c, b = i / (hw * c);
    return ((b * Blocks() + ch / block) * hw + w) * block + ch % block;
  }
};

// add, sub, mul, maximum, minimum with both sources and dst in oneDNN's nChw8c ("aBcd8b",
// LayoutRule::kFollowSourceSameDims: the residual adds of training graphs), channel counts
// that pad the last block included: dst equals the reference and its padding stays zero.
TEST_CASE("binary ops in a blocked layout match the reference", "[codegen][cpu][binary][layout]") {
  std::string kind = GENERATE("add", "sub", "mul", "maximum", "minimum");
  Shape dims = GENERATE(Shape{2, 12, 3, 5}, Shape{4, 16, 7, 7}, Shape{3, 40, 9, 9});
  INFO(kind << " " << ShapeToString(dims));
  const NchwBlocked blocked{dims, 8};
  const int64_t elems = NumElements(dims), padded = blocked.PaddedElements();
  std::mt19937 rng(11);
  std::uniform_real_distribution<double> u(-1, 1);
  ir::RefTensor x(dims), y(dims);
  for (double& v : x.data) v = static_cast<float>(u(rng));
  for (double& v : y.data) v = static_cast<float>(u(rng));
  ir::Node node;
  node.op = kind;
  std::vector<ir::RefTensor> want{ir::RefTensor(dims)};
  REQUIRE(ir::FindOp(kind)->reference(node, {&x, &y}, want).ok());
  const int64_t big = (padded * 4 + 63) / 64 * 64;
  std::vector<float> arena(static_cast<size_t>(3 * big / 4 + 16), 0.f);
  float* base = reinterpret_cast<float*>((reinterpret_cast<uintptr_t>(arena.data()) + 63) / 64 * 64);
  std::fill(base + 2 * big / 4, base + 3 * big / 4, 7.f);  // dst's padding must be written as zeros
  for (int64_t i = 0; i < elems; ++i) {
    base[blocked(i)] = static_cast<float>(x[i]);
    base[big / 4 + blocked(i)] = static_cast<float>(y[i]);
  }
  auto ref = [&](int64_t off, const std::string& layout) {
    TensorRef r{BufferKind::kArena, 0, off, DType::kF32, dims};
    r.layout = layout;
    r.layout_bytes = padded * 4;
    return r;
  };
  runtime::ExecContext ctx;
  ctx.arena = reinterpret_cast<uint8_t*>(base);
  StepDesc d;
  d.kind = kind;
  d.node_name = "residual";
  d.inputs = {ref(0, "aBcd8b"), ref(big, "aBcd8b")};
  d.outputs = {ref(2 * big, "aBcd8b")};
  // The layout choice for this step: all three in src0's layout.
  auto chosen = backends::cpu::CpuSteps().ChooseLayouts(d);
  REQUIRE(chosen.ok());
  CHECK(chosen->inputs == std::vector<std::string>{"aBcd8b", "aBcd8b"});
  CHECK(chosen->outputs == std::vector<std::string>{"aBcd8b"});
  auto step = backends::cpu::CpuSteps().Create(d);
  INFO((step.ok() ? std::string() : step.status().ToString()));
  REQUIRE(step.ok());
  REQUIRE((*step)->Run(ctx).ok());
  const float* got = base + 2 * big / 4;
  double worst = 0;
  for (int64_t i = 0; i < elems; ++i) worst = std::max(worst, std::abs(got[blocked(i)] - want[0][i]));
  CHECK(worst < 1e-6);
  std::vector<bool> real(static_cast<size_t>(padded), false);
  for (int64_t i = 0; i < elems; ++i) real[static_cast<size_t>(blocked(i))] = true;
  int64_t nonzero_padding = 0;
  for (int64_t i = 0; i < padded; ++i) nonzero_padding += !real[static_cast<size_t>(i)] && got[i] != 0.f;
  CHECK(nonzero_padding == 0);
  // Broadcasting or mixed layouts are rejected, not run over the wrong bytes.
  StepDesc mixed = d;
  mixed.inputs[1].layout = "";
  mixed.inputs[1].layout_bytes = 0;
  auto bad = backends::cpu::CpuSteps().Create(mixed);
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.status().ToString().find("residual") != std::string::npos);
  CHECK(bad.status().ToString().find("no broadcasting") != std::string::npos);
}

// A max pool over a dense NCHW source (after a concat: GoogLeNet, SqueezeNet) reads it
// channels-last when oneDNN has only its simple_nchw / reference kernel for NCHW, and keeps
// it dense where oneDNN has a fast one (other CPUs); dst follows src.
TEST_CASE("pool2d over a dense source picks channels-last when NCHW has no fast kernel", "[codegen][cpu][pool][layout]") {
  const Shape src{32, 512, 4, 4};
  StepDesc d;
  d.kind = "pool2d";
  d.node_name = "inception_pool";
  d.strings["kind"] = "max";
  d.ints["kernel"] = {3, 3};
  d.ints["stride"] = {1, 1};
  d.ints["padding_begin"] = {1, 1};
  d.ints["padding_end"] = {1, 1};
  d.inputs = {TensorRef{BufferKind::kArena, 0, 0, DType::kF32, src}};
  d.outputs = {TensorRef{BufferKind::kArena, 0, 0, DType::kF32, src}};
  auto chosen = backends::cpu::CpuSteps().ChooseLayouts(d);
  REQUIRE(chosen.ok());
  dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  dnnl::memory::desc nchw({32, 512, 4, 4}, dnnl::memory::data_type::f32, dnnl::memory::format_tag::abcd);
  dnnl::pooling_forward::primitive_desc pd(
      dnnl::pooling_forward::desc(dnnl::prop_kind::forward_training, dnnl::algorithm::pooling_max, nchw, nchw, {1, 1},
                                  {3, 3}, {1, 1}, {1, 1}),
      engine);
  std::string impl = pd.impl_info_str();
  INFO("oneDNN's NCHW kernel: " << impl);
  bool slow = impl.rfind("simple", 0) == 0 || impl.rfind("ref", 0) == 0;
  CHECK(chosen->inputs[0] == (slow ? "acdb" : ""));
  CHECK(chosen->outputs[0] == chosen->inputs[0]);
  // Its backward, with or without the forward's workspace, reads src in the same layout (a
  // workspace describes positions in the forward's src layout: googlenet's gradients were
  // garbage when the backward read the dense src).
  for (bool workspace : {false, true}) {
    INFO("workspace " << workspace);
    StepDesc b = d;
    b.kind = "pool2d_backward";
    b.inputs = {TensorRef{BufferKind::kArena, 0, 0, DType::kF32, src}, TensorRef{BufferKind::kArena, 0, 0, DType::kF32, src}};
    if (workspace) {
      TensorRef ws{BufferKind::kArena, 0, 0, DType::kF32, src};
      ws.layout = "workspace";
      ws.layout_bytes = 64;
      b.inputs.push_back(ws);
    }
    auto back = backends::cpu::CpuSteps().ChooseLayouts(b);
    REQUIRE(back.ok());
    CHECK(back->inputs[1] == chosen->inputs[0]);
    CHECK(back->outputs[0] == chosen->inputs[0]);
  }
}

TEST_CASE("exp, log, sqrt, abs, neg and their backward ops match the reference", "[codegen][cpu][eltwise]") {
  std::string kind = GENERATE("exp", "log", "sqrt", "abs", "neg");
  Shape shape = GENERATE(Shape{2, 3, 5, 7}, Shape{17});
  INFO(kind << " " << ShapeToString(shape));
  Options o;
  bool positive = kind == "log" || kind == "sqrt";
  o.fill = [positive](size_t i, std::vector<double>& v, std::mt19937& rng) {
    // src (input 0 forward, input 1 backward) positive for log and sqrt.
    (void)i;
    std::uniform_real_distribution<double> d(positive ? 0.2 : -2.0, 2.0);
    for (double& x : v) x = d(rng);
  };
  CheckAgainstReference(kind, {}, {F32(shape)}, o);
  CheckAgainstReference(kind + "_backward", {}, {F32(shape), F32(shape)}, o);
}

}  // namespace
}  // namespace kiln::codegen_test

namespace kiln::codegen_test {
namespace {

TEST_CASE("concat, split and transpose match the reference", "[codegen][cpu][concat]") {
  int64_t axis = GENERATE(0, 1, 2, -1);
  INFO("axis " << axis);
  CheckAgainstReference("concat", ir::Attrs{{"axis", axis}},
                        {F32({2, 3, 4}), F32({2, 3, 4}), F32({2, 3, 4})});
  std::vector<int64_t> sizes = axis == 0 ? std::vector<int64_t>{1, 1} : std::vector<int64_t>{1, 3};
  Shape src = axis == 0 ? Shape{2, 3, 4} : axis == 1 ? Shape{2, 4, 4} : Shape{2, 3, 4};
  CheckAgainstReference("split", ir::Attrs{{"axis", axis}, {"sizes", sizes}}, {F32(src)});
  // Large enough for the threaded copy.
  CheckAgainstReference("concat", ir::Attrs{{"axis", int64_t{1}}}, {F32({8, 64, 28, 28}), F32({8, 32, 28, 28})});
  auto perm = GENERATE(std::vector<int64_t>{0, 2, 3, 1}, std::vector<int64_t>{3, 2, 1, 0}, std::vector<int64_t>{0, 1, 2, 3});
  CheckAgainstReference("transpose", ir::Attrs{{"axes", perm}}, {F32({2, 3, 5, 7})});
  CheckAgainstReference("transpose", ir::Attrs{{"axes", perm}}, {F32({4, 32, 33, 65})});
}

}  // namespace
}  // namespace kiln::codegen_test

namespace kiln::codegen_test {
namespace {

// batch_norm_training and batch_norm_backward with src, dst, diff_dst and diff_src in
// oneDNN's nChw8c (layout "aBcd8b"), against the reference on the same values.
TEST_CASE("batch_norm_training and its backward in a blocked layout match the reference",
          "[codegen][cpu][batch_norm][layout]") {
  // Small shapes run on one thread (kSerialBytes), the large ones on the whole team.
  const int64_t block = GENERATE(8, 16);
  auto dims = GENERATE(Shape{4, 24, 5, 5}, Shape{4, 1280, 2, 2}, Shape{4, 96, 8, 8}, Shape{2, 16, 5, 3}, Shape{4, 96, 32, 32}, Shape{4, 32, 64, 64}, Shape{4, 1280, 8, 8});
  INFO(ShapeToString(dims) << " block " << block);
  const int64_t c = dims[1], elems = NumElements(dims);
  const NchwBlocked blocked{dims, block};
  const int64_t padded = blocked.PaddedElements();
  std::mt19937 rng(5);
  std::uniform_real_distribution<double> u(-1, 1), pos(0.5, 1.5);
  ir::RefTensor src(dims), dy(dims), scale({c}), shift({c});
  for (double& v : src.data) v = static_cast<float>(u(rng) * 2 + 0.5);
  for (double& v : dy.data) v = static_cast<float>(u(rng));
  for (double& v : scale.data) v = static_cast<float>(pos(rng));
  for (double& v : shift.data) v = static_cast<float>(u(rng));
  ir::Node fwd;
  fwd.op = "batch_norm_training";
  fwd.attrs.Set("epsilon", 1e-5);
  std::vector<ir::RefTensor> ref_fwd{ir::RefTensor(dims), ir::RefTensor({c}), ir::RefTensor({c})};
  REQUIRE(ir::FindOp("batch_norm_training")->reference(fwd, {&src, &scale, &shift}, ref_fwd).ok());
  ir::Node bwd;
  bwd.op = "batch_norm_backward";
  bwd.attrs.Set("epsilon", 1e-5);
  std::vector<ir::RefTensor> ref_bwd{ir::RefTensor(dims), ir::RefTensor({c}), ir::RefTensor({c})};
  REQUIRE(ir::FindOp("batch_norm_backward")
              ->reference(bwd, {&dy, &src, &scale, &shift, &ref_fwd[1], &ref_fwd[2]}, ref_bwd)
              .ok());
  // Arena: src | dst | dy | dx (blocked) then scale | shift | mean | var | dscale | dshift.
  const int64_t big = (padded * 4 + 63) / 64 * 64, small = (c * 4 + 63) / 64 * 64;
  const int64_t scratch_off = 4 * big + 6 * small, scratch_room = 1 << 20;
  std::vector<float> arena(static_cast<size_t>((scratch_off + scratch_room) / 4 + 16), 0.f);
  float* base = reinterpret_cast<float*>((reinterpret_cast<uintptr_t>(arena.data()) + 63) / 64 * 64);
  auto at = [&](int64_t off) { return base + off / 4; };
  for (int64_t i = 0; i < elems; ++i) {
    at(0)[blocked(i)] = static_cast<float>(src[i]);
    at(2 * big)[blocked(i)] = static_cast<float>(dy[i]);
  }
  for (int64_t k = 0; k < c; ++k) {
    at(4 * big)[k] = static_cast<float>(scale[k]);
    at(4 * big + small)[k] = static_cast<float>(shift[k]);
  }
  auto data_ref = [&](int64_t off) {
    TensorRef r{BufferKind::kArena, 0, off, DType::kF32, dims};
    r.layout = "aBcd" + std::to_string(block) + "b";
    r.layout_bytes = padded * 4;
    return r;
  };
  auto vec_ref = [&](int k) { return TensorRef{BufferKind::kArena, 0, 4 * big + k * small, DType::kF32, {c}}; };
  runtime::ExecContext ctx;
  ctx.arena = reinterpret_cast<uint8_t*>(base);
  StepDesc f;
  f.kind = "batch_norm_training";
  f.node_name = "bn";
  f.floats["epsilon"] = 1e-5;
  f.inputs = {data_ref(0), vec_ref(0), vec_ref(1)};
  f.outputs = {data_ref(big), vec_ref(2), vec_ref(3)};
  StepDesc b;
  b.kind = "batch_norm_backward";
  b.node_name = "bn_backward";
  b.floats["epsilon"] = 1e-5;
  b.inputs = {data_ref(2 * big), data_ref(0), vec_ref(0), vec_ref(1), vec_ref(2), vec_ref(3)};
  b.outputs = {data_ref(3 * big), vec_ref(4), vec_ref(5)};
  for (StepDesc* d : {&f, &b}) {
    auto scratch = backends::cpu::CpuSteps().ScratchBytes(*d);
    REQUIRE(scratch.ok());
    REQUIRE(*scratch <= scratch_room);
    if (*scratch > 0) d->scratch = {TensorRef{BufferKind::kArena, 0, scratch_off, DType::kF32, {(*scratch + 3) / 4}}};
    auto step = backends::cpu::CpuSteps().Create(*d);
    INFO((step.ok() ? std::string() : step.status().ToString()));
    REQUIRE(step.ok());
    REQUIRE((*step)->Run(ctx).ok());
  }
  auto worst = [](const float* got, const ir::RefTensor& want, const std::function<int64_t(int64_t)>& index) {
    double w = 0, scale_ = 0;
    for (int64_t i = 0; i < want.size(); ++i) {
      w = std::max(w, std::abs(got[index(i)] - want[i]));
      scale_ = std::max(scale_, std::abs(want[i]));
    }
    return w / std::max(1.0, scale_);
  };
  auto id = [](int64_t i) { return i; };
  CHECK(worst(at(big), ref_fwd[0], blocked) < 1e-4);
  CHECK(worst(at(4 * big + 2 * small), ref_fwd[1], id) < 1e-5);
  CHECK(worst(at(4 * big + 3 * small), ref_fwd[2], id) < 1e-5);
  CHECK(worst(at(3 * big), ref_bwd[0], blocked) < 1e-4);
  CHECK(worst(at(4 * big + 4 * small), ref_bwd[1], id) < 1e-4);
  CHECK(worst(at(4 * big + 5 * small), ref_bwd[2], id) < 1e-4);
}

}  // namespace
}  // namespace kiln::codegen_test
