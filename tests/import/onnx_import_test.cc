// The ONNX importer on hand-built models (onnx::ModelProto through libonnx's protobuf
// classes): a small CNN against the reference interpreter's result computed by kiln from
// the same weights, external data, a symbolic batch, and every malformed or adversarial
// file the issue lists: each gets one clear error, no crash.
#include <catch2/catch.hpp>

#include <onnx/onnx_pb.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>

#include "graph/trainer.h"
#include "import/onnx_import.h"

namespace kiln::onnx_import {
namespace {

void AddDims(onnx::ValueInfoProto* v, int elem, const std::vector<int64_t>& dims, const std::string& batch_param = "") {
  v->mutable_type()->mutable_tensor_type()->set_elem_type(elem);
  auto* shape = v->mutable_type()->mutable_tensor_type()->mutable_shape();
  for (size_t i = 0; i < dims.size(); ++i) {
    auto* d = shape->add_dim();
    if (i == 0 && !batch_param.empty()) {
      d->set_dim_param(batch_param);
    } else {
      d->set_dim_value(dims[i]);
    }
  }
}

onnx::TensorProto FloatTensor(const std::string& name, const std::vector<int64_t>& dims, std::mt19937& rng) {
  onnx::TensorProto t;
  t.set_name(name);
  t.set_data_type(onnx::TensorProto::FLOAT);
  int64_t n = 1;
  for (int64_t d : dims) {
    t.add_dims(d);
    n *= d;
  }
  std::uniform_real_distribution<float> u(-0.5f, 0.5f);
  std::string raw(static_cast<size_t>(n) * 4, '\0');
  for (int64_t i = 0; i < n; ++i) {
    float v = u(rng);
    std::memcpy(raw.data() + i * 4, &v, 4);
  }
  t.set_raw_data(raw);
  return t;
}

onnx::TensorProto Int64Tensor(const std::string& name, const std::vector<int64_t>& values) {
  onnx::TensorProto t;
  t.set_name(name);
  t.set_data_type(onnx::TensorProto::INT64);
  t.add_dims(static_cast<int64_t>(values.size()));
  for (int64_t v : values) t.add_int64_data(v);
  return t;
}

onnx::NodeProto* AddNode(onnx::GraphProto* g, const std::string& op, const std::vector<std::string>& in,
                         const std::vector<std::string>& out, const std::string& name) {
  auto* n = g->add_node();
  n->set_op_type(op);
  n->set_name(name);
  for (const auto& i : in) n->add_input(i);
  for (const auto& o : out) n->add_output(o);
  return n;
}

void IntsAttr(onnx::NodeProto* n, const std::string& name, const std::vector<int64_t>& v) {
  auto* a = n->add_attribute();
  a->set_name(name);
  a->set_type(onnx::AttributeProto::INTS);
  for (int64_t x : v) a->add_ints(x);
}

// x [N,2,6,6] -> Conv 3x3 (3 filters, pad 1) -> Relu -> MaxPool 2 -> Shape/Gather/Concat/Reshape
// chain to [N, 27] -> Gemm (transB) -> [N, 4]: the shape chain exporters write for flatten.
onnx::ModelProto SmallCnn(int opset = 13, const std::string& batch_param = "") {
  std::mt19937 rng(3);
  onnx::ModelProto m;
  m.set_ir_version(7);
  m.set_producer_name("kiln-test");
  auto* op = m.add_opset_import();
  op->set_domain("");
  op->set_version(opset);
  auto* g = m.mutable_graph();
  g->set_name("small_cnn");
  AddDims(g->add_input(), onnx::TensorProto::FLOAT, {2, 2, 6, 6}, batch_param);
  g->mutable_input(0)->set_name("x");
  *g->add_initializer() = FloatTensor("conv.w", {3, 2, 3, 3}, rng);
  *g->add_initializer() = FloatTensor("conv.b", {3}, rng);
  *g->add_initializer() = FloatTensor("fc.w", {4, 27}, rng);
  *g->add_initializer() = FloatTensor("fc.b", {4}, rng);
  *g->add_initializer() = Int64Tensor("zero", {0});
  *g->add_initializer() = Int64Tensor("minus_one", {-1});
  auto* conv = AddNode(g, "Conv", {"x", "conv.w", "conv.b"}, {"c"}, "conv");
  IntsAttr(conv, "pads", {1, 1, 1, 1});
  IntsAttr(conv, "kernel_shape", {3, 3});
  AddNode(g, "Relu", {"c"}, {"r"}, "relu");
  auto* pool = AddNode(g, "MaxPool", {"r"}, {"p"}, "pool");
  IntsAttr(pool, "kernel_shape", {2, 2});
  IntsAttr(pool, "strides", {2, 2});
  AddNode(g, "Shape", {"p"}, {"shape"}, "shape");
  AddNode(g, "Gather", {"shape", "zero"}, {"n"}, "gather");
  AddNode(g, "Concat", {"n", "minus_one"}, {"target"}, "concat")->add_attribute()->CopyFrom([] {
    onnx::AttributeProto a;
    a.set_name("axis");
    a.set_type(onnx::AttributeProto::INT);
    a.set_i(0);
    return a;
  }());
  AddNode(g, "Reshape", {"p", "target"}, {"flat"}, "flatten");
  auto* gemm = AddNode(g, "Gemm", {"flat", "fc.w", "fc.b"}, {"y"}, "fc");
  auto* tb = gemm->add_attribute();
  tb->set_name("transB");
  tb->set_type(onnx::AttributeProto::INT);
  tb->set_i(1);
  AddDims(g->add_output(), onnx::TensorProto::FLOAT, {2, 4}, batch_param);
  g->mutable_output(0)->set_name("y");
  return m;
}

std::string Bytes(const onnx::ModelProto& m) {
  std::string s;
  REQUIRE(m.SerializeToString(&s));
  return s;
}

// The same CNN computed directly from the initializers (double), as the expected output.
std::vector<double> ReferenceSmallCnn(const onnx::ModelProto& m, const Tensor& x) {
  auto floats = [&](const std::string& name) {
    for (const auto& t : m.graph().initializer()) {
      if (t.name() == name) {
        std::vector<float> v(t.raw_data().size() / 4);
        std::memcpy(v.data(), t.raw_data().data(), t.raw_data().size());
        return v;
      }
    }
    return std::vector<float>{};
  };
  auto w = floats("conv.w"), b = floats("conv.b"), fw = floats("fc.w"), fb = floats("fc.b");
  const int64_t n = x.shape()[0];
  std::vector<double> out;
  for (int64_t s = 0; s < n; ++s) {
    double conv[3][6][6];
    for (int o = 0; o < 3; ++o) {
      for (int i = 0; i < 6; ++i) {
        for (int j = 0; j < 6; ++j) {
          double acc = b[static_cast<size_t>(o)];
          for (int c = 0; c < 2; ++c) {
            for (int ki = 0; ki < 3; ++ki) {
              for (int kj = 0; kj < 3; ++kj) {
                int ii = i + ki - 1, jj = j + kj - 1;
                if (ii < 0 || jj < 0 || ii >= 6 || jj >= 6) continue;
                acc += w[static_cast<size_t>(((o * 2 + c) * 3 + ki) * 3 + kj)] *
                       x.f32()[((s * 2 + c) * 6 + ii) * 6 + jj];
              }
            }
          }
          conv[o][i][j] = std::max(acc, 0.0);
        }
      }
    }
    std::vector<double> flat;
    for (int o = 0; o < 3; ++o) {
      for (int i = 0; i < 3; ++i) {
        for (int j = 0; j < 3; ++j) {
          flat.push_back(std::max({conv[o][2 * i][2 * j], conv[o][2 * i + 1][2 * j], conv[o][2 * i][2 * j + 1],
                                   conv[o][2 * i + 1][2 * j + 1]}));
        }
      }
    }
    for (int k = 0; k < 4; ++k) {
      double acc = fb[static_cast<size_t>(k)];
      for (int q = 0; q < 27; ++q) acc += fw[static_cast<size_t>(k * 27 + q)] * flat[static_cast<size_t>(q)];
      out.push_back(acc);
    }
  }
  return out;
}

Tensor RandomInput(int64_t n) {
  std::mt19937 rng(11);
  std::uniform_real_distribution<float> u(-1, 1);
  Tensor x(DType::kF32, {n, 2, 6, 6});
  for (int64_t i = 0; i < x.num_elements(); ++i) x.f32()[i] = u(rng);
  return x;
}

void ExpectMatchesReference(OnnxNetwork& net, const onnx::ModelProto& m, int64_t batch) {
  Tensor x = RandomInput(batch), y;
  graph::Predictor predictor(net);
  Status s = predictor.Forward(x, &y);
  INFO(s.ToString());
  REQUIRE(s.ok());
  REQUIRE(y.shape() == Shape{batch, 4});
  std::vector<double> want = ReferenceSmallCnn(m, x);
  for (int64_t i = 0; i < y.num_elements(); ++i) CHECK(y.f32()[i] == Approx(want[static_cast<size_t>(i)]).margin(1e-5));
}

// Imports `m` and returns the error message (the import must fail).
std::string ImportError(const onnx::ModelProto& m, const ImportOptions& options = {}) {
  auto net = ImportOnnxBytes(Bytes(m), options);
  REQUIRE_FALSE(net.ok());
  return net.status().ToString();
}

TEST_CASE("ONNX import: a small CNN with a shape chain equals the direct computation", "[import][onnx]") {
  onnx::ModelProto m = SmallCnn();
  auto net = ImportOnnxBytes(Bytes(m));
  INFO(net.status().ToString());
  REQUIRE(net.ok());
  CHECK((*net)->input_dims() == Shape{2, 2, 6, 6});
  CHECK((*net)->nodes().size() == 8);
  CHECK((*net)->CollectParams().size() == 4);  // conv.w, conv.b, fc.w, fc.b; the int64 shapes stay host values
  ExpectMatchesReference(**net, m, 2);
}

TEST_CASE("ONNX import: a symbolic batch compiles for any batch; a fixed one names the mismatch", "[import][onnx]") {
  onnx::ModelProto m = SmallCnn(13, "N");
  auto net = ImportOnnxBytes(Bytes(m));
  REQUIRE(net.ok());
  CHECK((*net)->input_dims() == Shape{-1, 2, 6, 6});
  ExpectMatchesReference(**net, m, 5);
  auto fixed = ImportOnnxBytes(Bytes(SmallCnn()));
  REQUIRE(fixed.ok());
  auto shape = (*fixed)->InputShapeForBatch(3);
  REQUIRE_FALSE(shape.ok());
  CHECK_THAT(shape.status().message(), Catch::Contains("fixed batch of 2"));
}

TEST_CASE("ONNX import: an opset 9 model goes through the version converter", "[import][onnx]") {
  onnx::ModelProto m = SmallCnn(9);
  auto net = ImportOnnxBytes(Bytes(m));
  INFO(net.status().ToString());
  REQUIRE(net.ok());
  CHECK((*net)->model_opset() == 9);
  ExpectMatchesReference(**net, m, 2);
}

TEST_CASE("ONNX import: external data inside the model's folder loads; a path that leaves it is refused",
          "[import][onnx]") {
  namespace fs = std::filesystem;
  fs::path dir = fs::temp_directory_path() / "kiln_onnx_external";
  fs::remove_all(dir);
  fs::create_directories(dir);
  onnx::ModelProto m = SmallCnn();
  onnx::ModelProto original = m;
  // Move fc.w into weights.bin at offset 16.
  auto* t = m.mutable_graph()->mutable_initializer(2);
  REQUIRE(t->name() == "fc.w");
  {
    std::ofstream out(dir / "weights.bin", std::ios::binary);
    out << std::string(16, 'x') << t->raw_data();
  }
  const std::string length = std::to_string(t->raw_data().size());
  t->clear_raw_data();
  t->set_data_location(onnx::TensorProto::EXTERNAL);
  auto add = [&](onnx::TensorProto* tp, const std::string& k, const std::string& v) {
    auto* e = tp->add_external_data();
    e->set_key(k);
    e->set_value(v);
  };
  add(t, "location", "weights.bin");
  add(t, "offset", "16");
  add(t, "length", length);
  {
    std::ofstream out(dir / "model.onnx", std::ios::binary);
    out << Bytes(m);
  }
  auto net = ImportOnnxFile((dir / "model.onnx").string());
  INFO(net.status().ToString());
  REQUIRE(net.ok());
  ExpectMatchesReference(**net, original, 2);

  for (const char* escape : {"../weights.bin", "/etc/passwd", "sub/../../weights.bin"}) {
    onnx::ModelProto bad = m;
    bad.mutable_graph()->mutable_initializer(2)->mutable_external_data(0)->set_value(escape);
    std::string e = ImportError(bad, ImportOptions{.model_dir = dir.string()});
    INFO(e);
    CHECK_THAT(e, Catch::Contains("fc.w") && Catch::Contains("inside the model's folder"));
  }
  onnx::ModelProto beyond = m;
  beyond.mutable_graph()->mutable_initializer(2)->mutable_external_data(1)->set_value("1000000");
  CHECK_THAT(ImportError(beyond, ImportOptions{.model_dir = dir.string()}), Catch::Contains("lies outside"));
  // Bytes without a folder: external data is refused.
  CHECK_THAT(ImportError(m), Catch::Contains("external data needs the model's folder"));
  fs::remove_all(dir);
}

TEST_CASE("ONNX import: malformed and adversarial files get one clear error each", "[import][onnx][errors]") {
  const std::string valid = Bytes(SmallCnn());
  SECTION("truncated protobuf") {
    for (size_t cut : {size_t{1}, size_t{40}, valid.size() / 2, valid.size() - 3}) {
      auto net = ImportOnnxBytes(std::string_view(valid).substr(0, cut));
      REQUIRE_FALSE(net.ok());
      CHECK(net.status().code() == StatusCode::kInvalidArgument);
    }
    auto garbage = ImportOnnxBytes("this is not a protobuf \xff\xff\xff");
    REQUIRE_FALSE(garbage.ok());
    CHECK_THAT(garbage.status().message(), Catch::Contains("ModelProto"));
  }
  SECTION("wrong types: an integer input, a string initializer") {
    onnx::ModelProto m = SmallCnn();
    m.mutable_graph()->mutable_input(0)->mutable_type()->mutable_tensor_type()->set_elem_type(onnx::TensorProto::INT64);
    CHECK_THAT(ImportError(m), Catch::Contains("input 'x': kiln imports a float tensor input"));
    onnx::ModelProto s = SmallCnn();
    auto* t = s.mutable_graph()->mutable_initializer(1);
    t->set_data_type(onnx::TensorProto::STRING);
    t->clear_raw_data();
    t->add_string_data("a");
    t->add_string_data("b");
    t->add_string_data("c");
    std::string e = ImportError(s);
    INFO(e);
    CHECK_THAT(e, Catch::Contains("initializer 'conv.b': data type STRING is not supported"));
  }
  SECTION("a Reshape whose product does not match") {
    onnx::ModelProto m = SmallCnn();
    auto* g = m.mutable_graph();
    *g->add_initializer() = Int64Tensor("bad_shape", {2, 26});
    g->mutable_node(6)->set_input(1, "bad_shape");  // Reshape p [2,3,3,3] to [2, 26]
    auto net = ImportOnnxBytes(Bytes(m));
    if (net.ok()) {  // ONNX shape inference may already refuse it; else the trace does
      Tensor y;
      graph::Predictor p(**net);
      Status s = p.Forward(RandomInput(2), &y);
      REQUIRE_FALSE(s.ok());
      CHECK_THAT(s.message(), Catch::Contains("flatten") && Catch::Contains("Reshape") && Catch::Contains("[2,26]"));
    } else {
      CHECK_THAT(net.status().message(), Catch::Contains("flatten") || Catch::Contains("Reshape"));
    }
  }
  SECTION("a graph output that no node produces (crashed libonnx 1.12's version converter)") {
    onnx::ModelProto m = SmallCnn(9);
    m.mutable_graph()->mutable_node(m.graph().node_size() - 1)->set_output(0, "=");
    std::string e = ImportError(m);
    INFO(e);
    CHECK_THAT(e, Catch::Contains("graph output 'y' is not produced by any node"));
  }
  SECTION("a convolution weight of another rank than its input (crashed libonnx 1.12's shape inference)") {
    onnx::ModelProto m = SmallCnn(11);
    auto* w = m.mutable_graph()->mutable_initializer(0);
    w->clear_dims();
    for (int64_t d : {3, 2, 1, 3, 3}) w->add_dims(d);
    auto net = ImportOnnxBytes(Bytes(m));
    REQUIRE(net.ok());  // the file itself is well formed; the trace refuses the convolution
    Tensor y;
    graph::Predictor p(**net);
    Status s = p.Forward(RandomInput(2), &y);
    REQUIRE_FALSE(s.ok());
    CHECK_THAT(s.message(), Catch::Contains("ONNX node 'conv' (Conv)") && Catch::Contains("[3,2,1,3,3]"));
  }
  SECTION("a cycle") {
    onnx::ModelProto m = SmallCnn();
    m.mutable_graph()->mutable_node(0)->set_input(0, "r");  // conv reads relu's output
    CHECK_THAT(ImportError(m), Catch::Contains("node 'conv' (Conv): input 'r' is not defined before it"));
  }
  SECTION("an initializer whose data is shorter than its shape") {
    onnx::ModelProto m = SmallCnn();
    auto* t = m.mutable_graph()->mutable_initializer(0);
    t->set_raw_data(t->raw_data().substr(0, 40));
    std::string e = ImportError(m);
    INFO(e);
    CHECK_THAT(e, Catch::Contains("conv.w") && Catch::Contains("40 bytes"));
  }
  SECTION("a 2^40-element dim") {
    onnx::ModelProto m = SmallCnn();
    auto* t = m.mutable_graph()->add_initializer();
    t->set_name("huge");
    t->set_data_type(onnx::TensorProto::FLOAT);
    t->add_dims(int64_t{1} << 20);
    t->add_dims(int64_t{1} << 20);
    AddNode(m.mutable_graph(), "Identity", {"huge"}, {"huge_copy"}, "id");
    std::string e = ImportError(m);
    INFO(e);
    CHECK_THAT(e, Catch::Contains("huge"));
  }
  SECTION("an unsupported operator and an unsupported opset: every problem named") {
    onnx::ModelProto m = SmallCnn();
    AddNode(m.mutable_graph(), "Erf", {"flat"}, {"e1"}, "erf_node");
    AddNode(m.mutable_graph(), "Round", {"flat"}, {"e2"}, "round_node");
    std::string e = ImportError(m);
    INFO(e);
    CHECK_THAT(e, Catch::Contains("2 problems") && Catch::Contains("node 'erf_node' (Erf, opset 13)") &&
                      Catch::Contains("node 'round_node' (Round, opset 13)") && Catch::Contains("kiln imports"));
    onnx::ModelProto old = SmallCnn();
    old.mutable_opset_import(0)->set_version(5);
    CHECK_THAT(ImportError(old), Catch::Contains("opset 5") && Catch::Contains("7-17"));
  }
  SECTION("a symbolic dim other than the batch") {
    onnx::ModelProto m = SmallCnn();
    m.mutable_graph()->mutable_input(0)->mutable_type()->mutable_tensor_type()->mutable_shape()->mutable_dim(2)->set_dim_param(
        "height");
    std::string e = ImportError(m);
    INFO(e);
    CHECK_THAT(e, Catch::Contains("dim 2 is symbolic ('height')"));
  }
}

}  // namespace
}  // namespace kiln::onnx_import
