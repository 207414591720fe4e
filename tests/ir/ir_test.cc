// IR text round trip, the verifier's rejections, and the pass manager's verification.
#include <catch2/catch.hpp>

#include "ir/builder.h"
#include "ir/text.h"
#include "ir/verifier.h"
#include "passes/autodiff.h"
#include "passes/pass.h"

namespace kiln::ir {
namespace {

TensorType F32(Shape s, std::string layout) { return TensorType{DType::kF32, std::move(s), std::move(layout)}; }

// A small CNN forward graph with a loss, like LeNet's first layers.
Graph SmallCnn() {
  Graph g("small_cnn");
  Builder b(g);
  ValueId x = g.AddInput("data", F32({4, 1, 12, 12}, "NCHW"));
  ValueId label = g.AddInput("label", TensorType{DType::kS32, {4}, "N"});
  ValueId w = g.AddParameter("0.weight", F32({3, 1, 3, 3}, "OIHW"));
  ValueId bias = g.AddParameter("0.bias", F32({3}, "C"));
  ValueId fw = g.AddParameter("1.weight", F32({10, 75}, "OI"));
  Tensor c(DType::kF32, {3});
  c.f32()[0] = 0.5f;
  c.f32()[1] = -1.25f;
  c.f32()[2] = 3e-8f;
  ValueId k = g.AddConstant("scale", c);
  Attrs conv{{"stride", Shape{1, 1}}, {"padding_begin", Shape{0, 0}}, {"padding_end", Shape{0, 0}}, {"dilation", Shape{1, 1}}};
  ValueId y = b.Emit1("conv2d", {x, w, bias}, conv, "conv0").value();
  ValueId r = b.Emit1("relu", {y}, {}, "relu0").value();
  ValueId s = b.Emit1("mul", {r, b.Emit1("reshape", {k}, Attrs{{"shape", Shape{3, 1, 1}}}).value()}).value();
  ValueId p = b.Emit1("pool2d", {s}, Attrs{{"kind", "max"}, {"kernel", Shape{2, 2}}, {"stride", Shape{2, 2}},
                                           {"padding_begin", Shape{0, 0}}, {"padding_end", Shape{0, 0}}}, "pool0").value();
  ValueId f = b.Emit1("reshape", {p}, Attrs{{"shape", Shape{4, 75}}}, "flatten").value();
  ValueId logits = b.Emit1("dense", {f, fw}, {}, "fc").value();
  ValueId loss = b.Emit1("softmax_cross_entropy", {logits, label}, {}, "loss").value();
  g.AddOutput("loss", loss);
  g.AddOutput("output", logits);
  return g;
}

TEST_CASE("IR text round-trips a training graph", "[ir][text]") {
  Graph g = SmallCnn();
  passes::BuildTrainingGraph train("loss", passes::SgdOptions{0.9, 1e-4, -1});
  REQUIRE(train.Run(g).ok());
  REQUIRE(Verify(g).ok());
  std::string text = PrintGraph(g);
  auto parsed = ParseGraph(text);
  INFO(text);
  REQUIRE(parsed.ok());
  CHECK(PrintGraph(*parsed) == text);
  CHECK(parsed->nodes().size() == g.nodes().size());
  CHECK(parsed->updates().size() == g.updates().size());
  CHECK(Verify(*parsed).ok());
  // The training graph has the backward ops and one in-place update per parameter (+momentum).
  CHECK_THAT(text, Catch::Contains("conv2d_backward_weights") && Catch::Contains("pool2d_backward") &&
                       Catch::Contains("update %0.weight <- %0.weight_sgd") &&
                       Catch::Contains("update %0.weight.momentum <- %0.weight_sgd.1"));
}

TEST_CASE("IR parser reports the line and the problem", "[ir][text]") {
  auto r = ParseGraph("graph g {\n  input %x : f32[2,3]NC\n  %y = relu[r](%z) : f32[2,3]NC\n}\n");
  REQUIRE_FALSE(r.ok());
  CHECK_THAT(r.status().message(), Catch::Contains("line 3") && Catch::Contains("undefined value %z"));
  auto t = ParseGraph("graph g {\n  input %x : f32[2,3]NC\n  %y = relu[r](%x) : f32[2,4]NC\n}\n");
  REQUIRE_FALSE(t.ok());
  CHECK_THAT(t.status().message(), Catch::Contains("disagree with shape inference"));
  auto u = ParseGraph("graph g {\n  input %x : f32[2,3]NC\n  %y = conv9[r](%x) : f32[2,4]NC\n}\n");
  CHECK_THAT(u.status().message(), Catch::Contains("unknown op 'conv9'"));
}

TEST_CASE("IR parser rejects what the fuzzer found instead of aborting", "[ir][text]") {
  // Each of these once hit a KILN_CHECK (abort), undefined behaviour or a huge allocation.
  const char* head = "graph g {\n  input %x : f32[2,3]NC\n";
  struct Case {
    std::string body, message;
  } cases[] = {
      {"  %a = relu[r](%x) : f32[2,3]NC\n  %b = relu[r](%a) : f32[2,3]NC\n}\n", "duplicate node name 'r'"},
      {"  %a = relu[](%x) : f32[2,3]NC\n}\n", "expected a node name"},
      {"  %a = relu[r](%x) : f32[2,300000000000000000000000000000]NC\n}\n", "out of range"},
      {"  %a = relu[r](%x) : f32[2,3.5]NC\n}\n", "expected an integer"},
      {"  const %c : f32[1000000000000] = [1]\n}\n", "dim out of range"},
      {"  const %c : f32[50,50,50] = [1]\n}\n", "more elements than the text"},
      {"  const %c : s32[1] = [3e12]\n}\n", "is not a 32-bit integer"},
      {"  output y = %x\n  output y = %x\n}\n", "duplicate output name 'y'"},
  };
  for (const Case& c : cases) {
    INFO(c.body);
    auto g = ParseGraph(head + c.body);
    CHECK(g.status().code() == StatusCode::kInvalidArgument);
    CHECK_THAT(g.status().message(), Catch::Contains(c.message));
  }
}

TEST_CASE("the verifier rejects malformed graphs", "[ir][verifier]") {
  SECTION("stored type differs from shape inference") {
    Graph g = SmallCnn();
    ValueId v = g.nodes()[0].outputs[0];
    g.mutable_value(v).type.shape[1] = 7;
    Status s = Verify(g);
    REQUIRE_FALSE(s.ok());
    CHECK_THAT(s.message(), Catch::Contains("conv2d \"conv0\"") && Catch::Contains("f32[4,7,10,10]NCHW") &&
                                Catch::Contains("f32[4,3,10,10]NCHW"));
  }
  SECTION("use before definition") {
    Graph g = SmallCnn();
    std::swap(g.mutable_nodes()[0], g.mutable_nodes()[1]);
    Status s = Verify(g);
    REQUIRE_FALSE(s.ok());
    CHECK_THAT(s.message(), Catch::Contains("relu \"relu0\"") && Catch::Contains("used before it is defined"));
  }
  SECTION("an update target read after the update") {
    Graph g("upd");
    Builder b(g);
    ValueId w = g.AddParameter("w", F32({3}, "C"));
    ValueId n = b.Emit1("relu", {w}, {}, "new_w").value();
    b.Emit1("sigmoid", {w}, {}, "late_reader").value();
    g.AddUpdate(w, n);
    Status s = Verify(g);
    REQUIRE_FALSE(s.ok());
    CHECK_THAT(s.message(), Catch::Contains("late_reader") && Catch::Contains("after the update"));
  }
  SECTION("an update of an input") {
    Graph g("upd2");
    Builder b(g);
    ValueId x = g.AddInput("x", F32({3}, "C"));
    g.AddUpdate(x, b.Emit1("relu", {x}).value());
    CHECK_THAT(Verify(g).message(), Catch::Contains("not a parameter or state"));
  }
}

// A pass that breaks the graph, to check the pass manager names it.
class BreakTypes final : public passes::Pass {
 public:
  std::string_view Name() const override { return "break_types"; }
  StatusOr<bool> Run(Graph& g) override {
    g.mutable_value(g.nodes()[0].outputs[0]).type.dtype = DType::kS32;
    return true;
  }
};

TEST_CASE("the pass manager verifies after every pass and names the culprit", "[passes]") {
  Graph g = SmallCnn();
  passes::PassManager pm;
  pm.Add(std::make_unique<passes::DeadCodeElimination>());
  pm.Add(std::make_unique<BreakTypes>());
  Status s = pm.Run(g);
  REQUIRE_FALSE(s.ok());
  CHECK(s.code() == StatusCode::kInternal);
  CHECK_THAT(s.message(), Catch::Contains("after pass break_types") && Catch::Contains("conv0"));
}

TEST_CASE("dead-code elimination keeps what outputs and updates need", "[passes][dce]") {
  Graph g = SmallCnn();
  Builder b(g);
  b.Emit1("tanh", {g.nodes()[0].outputs[0]}, {}, "unused").value();
  size_t before = g.nodes().size();
  passes::DeadCodeElimination dce;
  auto changed = dce.Run(g);
  REQUIRE(changed.ok());
  CHECK(*changed);
  CHECK(g.nodes().size() == before - 1);
  CHECK(Verify(g).ok());
  CHECK_THAT(PrintGraph(g), !Catch::Contains("unused"));
}

}  // namespace
}  // namespace kiln::ir
