// The data-parallel update pass (passes/data_parallel.h): IR before and after, the math of
// the update against a hand computation, the compiled graph against the reference, and
// the graphs it refuses.
#include <catch2/catch.hpp>

#include <cstdlib>
#include <fstream>

#include "ir/interpreter.h"
#include "ir/text.h"
#include "ir/verifier.h"
#include "passes/data_parallel.h"
#include "tests/passes/equivalence.h"

namespace kiln::passes {
namespace {

const char* kParams = R"(graph update {
  param %w : f32[2,3]OI
  param %b : f32[2]C
}
)";

TEST_CASE("data_parallel_update sums the streams' gradients and updates once (IR before and after)",
          "[passes][data_parallel]") {
  ir::Graph g = testing::ParseOrFail(kParams);
  auto changed = DataParallelUpdate(/*streams=*/3, SgdOptions{}).Run(g);
  REQUIRE(changed.ok());
  CHECK(*changed);
  REQUIRE(ir::Verify(g).ok());
  std::string text = ir::PrintGraph(g);
  if (const char* dir = std::getenv("KILN_GOLDEN_DIR")) std::ofstream(std::string(dir) + "/data_parallel.txt") << text;
  INFO(text);
  CHECK(text == R"(graph update {
  param %w : f32[2,3]OI
  param %b : f32[2]C
  input %grad0:w : f32[2,3]OI
  input %grad1:w : f32[2,3]OI
  input %grad2:w : f32[2,3]OI
  input %grad0:b : f32[2]C
  input %grad1:b : f32[2]C
  input %grad2:b : f32[2]C
  input %lr : f32[]
  input %rescale_grad : f32[]
  %w_grad_sum = add[w_grad_sum](%grad0:w, %grad1:w) : f32[2,3]OI
  %w_grad_sum_1 = add[w_grad_sum_1](%w_grad_sum, %grad2:w) : f32[2,3]OI
  %b_grad_sum = add[b_grad_sum](%grad0:b, %grad1:b) : f32[2]C
  %b_grad_sum_1 = add[b_grad_sum_1](%b_grad_sum, %grad2:b) : f32[2]C
  %b_sgd = sgd_update[b_sgd](%b, %b_grad_sum_1, %lr, %rescale_grad) {clip_gradient=-1.0, momentum=0.0, wd=0.0} : f32[2]C
  %w_sgd = sgd_update[w_sgd](%w, %w_grad_sum_1, %lr, %rescale_grad) {clip_gradient=-1.0, momentum=0.0, wd=0.0} : f32[2,3]OI
  update %b <- %b_sgd
  update %w <- %w_sgd
}
)");
}

TEST_CASE("data_parallel_update: w' = w - lr * rescale * (g0 + g1), compiled as the reference",
          "[passes][data_parallel]") {
  ir::Graph g = testing::ParseOrFail(kParams);
  REQUIRE(DataParallelUpdate(/*streams=*/2, SgdOptions{}).Run(g).ok());
  std::mt19937 rng(5);
  testing::Named args = testing::RandomArguments(g, rng);
  auto out = testing::RunReferenceNamed(g, args);
  REQUIRE(out.ok());
  double lr = args.at("lr")[0], rescale = args.at("rescale_grad")[0];
  for (const char* p : {"w", "b"}) {
    const ir::RefTensor& w = args.at(p);
    const ir::RefTensor& g0 = args.at(std::string("grad0:") + p);
    const ir::RefTensor& g1 = args.at(std::string("grad1:") + p);
    for (int64_t i = 0; i < w.size(); ++i) {
      INFO(p << "[" << i << "]");
      CHECK_THAT(out->at(p)[i], Catch::Matchers::WithinAbs(w[i] - lr * rescale * (g0[i] + g1[i]), 1e-12));
    }
  }
  codegen::LowerOptions grouped{true, true, false};
  grouped.group_updates = true;
  testing::ExpectEquivalent(g, g, 6, {codegen::LowerOptions{}, grouped}, 1e-5);
}

TEST_CASE("data_parallel_update with Adam adds its state", "[passes][data_parallel]") {
  ir::Graph g = testing::ParseOrFail(kParams);
  REQUIRE(DataParallelUpdate(/*streams=*/2, AdamOptions{}).Run(g).ok());
  REQUIRE(ir::Verify(g).ok());
  int adam = 0;
  for (const ir::Node& n : g.nodes()) adam += n.op == "adam_update";
  CHECK(adam == 2);
}

TEST_CASE("data_parallel_update refuses what it cannot build", "[passes][data_parallel][errors]") {
  SECTION("no streams") {
    ir::Graph g = testing::ParseOrFail(kParams);
    auto r = DataParallelUpdate(/*streams=*/0, SgdOptions{}).Run(g);
    CHECK(r.status().code() == StatusCode::kInvalidArgument);
    CHECK_THAT(r.status().message(), Catch::Contains("streams must be >= 1, got 0"));
  }
  SECTION("a graph that already has nodes") {
    ir::Graph g = testing::ParseOrFail(R"(graph g {
  input %x : f32[2]C
  param %w : f32[2]C
  %y = relu[r](%w) : f32[2]C
  output y = %y
}
)");
    auto r = DataParallelUpdate(/*streams=*/2, SgdOptions{}).Run(g);
    CHECK(r.status().code() == StatusCode::kInvalidArgument);
    CHECK_THAT(r.status().message(), Catch::Contains("has 1 nodes"));
  }
}

}  // namespace
}  // namespace kiln::passes
