// Memory planning: the planner on random lifetimes (no two simultaneously live buffers
// overlap, every buffer inside the arena, lower bound <= arena <= naive), and whole random
// graphs lowered with planning, in-place reuse and blocked layouts computing exactly what
// the reference interpreter computes.
#include <catch2/catch.hpp>

#include "codegen/lower.h"
#include "codegen/memory_plan.h"
#include "ir/builder.h"
#include "ir/text.h"
#include "tests/passes/equivalence.h"

namespace kiln::codegen {
namespace {

TEST_CASE("best-fit planning reuses the bytes of dead buffers", "[memory_plan]") {
  // a: steps 0-1 (1000 B), b: 1-2 (1000 B), c: 2-3 (1000 B): a and c may share.
  std::vector<BufferLifetime> buffers{{1000, 0, 1}, {1000, 1, 2}, {1000, 2, 3}};
  MemoryPlan plan = PlanMemory(buffers);
  REQUIRE(CheckPlan(buffers, plan).ok());
  CHECK(plan.arena_bytes == 2 * 1024);
  CHECK(plan.offsets[0] == plan.offsets[2]);
  CHECK(NaiveBytes(buffers) == 3 * 1024);
  CHECK(LowerBoundBytes(buffers) == 2 * 1024);
  // Best fit picks the smallest gap that holds the buffer.
  std::vector<BufferLifetime> gaps{{4096, 0, 0}, {640, 0, 0}, {64, 0, 0}, {64, 1, 1}};
  MemoryPlan g = PlanMemory(gaps);
  REQUIRE(CheckPlan(gaps, g).ok());
  CHECK(g.arena_bytes == 4096 + 640 + 64);
}

TEST_CASE("CheckPlan rejects overlapping live buffers", "[memory_plan]") {
  std::vector<BufferLifetime> buffers{{128, 0, 2}, {128, 1, 3}};
  MemoryPlan bad{{0, 64}, 192};
  Status s = CheckPlan(buffers, bad);
  REQUIRE_FALSE(s.ok());
  CHECK_THAT(s.message(), Catch::Contains("overlaps"));
  MemoryPlan outside{{0, 128}, 200};
  CHECK_FALSE(CheckPlan(buffers, outside).ok());
}

TEST_CASE("random lifetimes: no overlap, within the arena, between lower bound and naive", "[memory_plan][property]") {
  std::mt19937 rng(12345);
  for (int trial = 0; trial < 500; ++trial) {
    int steps = 1 + static_cast<int>(rng() % 40);
    size_t n = 1 + rng() % 60;
    std::vector<BufferLifetime> buffers;
    for (size_t i = 0; i < n; ++i) {
      int a = static_cast<int>(rng() % static_cast<unsigned>(steps));
      int b = a + static_cast<int>(rng() % 8);
      // Sizes over several orders of magnitude, some not multiples of the alignment.
      int64_t bytes = static_cast<int64_t>(1 + rng() % 5000) << (rng() % 6);
      buffers.push_back({bytes, a, b});
    }
    MemoryPlan plan = PlanMemory(buffers);
    INFO("trial " << trial);
    Status s = CheckPlan(buffers, plan);
    INFO(s.ToString());
    REQUIRE(s.ok());
    CHECK(plan.arena_bytes >= LowerBoundBytes(buffers));
    CHECK(plan.arena_bytes <= NaiveBytes(buffers));
  }
}

// A random graph over [2,8,6,6] tensors: activations, add/mul, 3x3 convolutions (padding 1)
// and 3x3 stride-1 pooling, reading random earlier values; 1 to 3 outputs.
ir::Graph RandomGraph(std::mt19937& rng, int num_nodes) {
  ir::Graph g("random");
  ir::Builder b(g);
  ir::TensorType t{DType::kF32, {2, 8, 6, 6}, "NCHW"};
  std::vector<ir::ValueId> values{g.AddInput("x0", t), g.AddInput("x1", t)};
  auto pick = [&] { return values[rng() % values.size()]; };
  for (int i = 0; i < num_nodes; ++i) {
    StatusOr<ir::ValueId> v = InvalidArgument("unset");
    switch (rng() % 6) {
      case 0: {
        const char* ops[] = {"relu", "sigmoid", "tanh"};
        v = b.Emit1(ops[rng() % 3], {pick()});
        break;
      }
      case 1: v = b.Emit1(rng() % 2 ? "add" : "mul", {pick(), pick()}); break;
      case 2:
      case 3: {
        ir::ValueId w = g.AddParameter("w" + std::to_string(i), {DType::kF32, {8, 8, 3, 3}, "OIHW"});
        std::vector<ir::ValueId> ins{pick(), w};
        if (rng() % 2) ins.push_back(g.AddParameter("b" + std::to_string(i), {DType::kF32, {8}, "C"}));
        v = b.Emit1("conv2d", ins,
                    ir::Attrs{{"stride", std::vector<int64_t>{1, 1}},
                              {"padding_begin", std::vector<int64_t>{1, 1}},
                              {"padding_end", std::vector<int64_t>{1, 1}},
                              {"dilation", std::vector<int64_t>{1, 1}}});
        break;
      }
      default:
        v = b.Emit1("pool2d", {pick()},
                    ir::Attrs{{"kind", std::string(rng() % 2 ? "max" : "avg")},
                              {"kernel", std::vector<int64_t>{3, 3}},
                              {"stride", std::vector<int64_t>{1, 1}},
                              {"padding_begin", std::vector<int64_t>{1, 1}},
                              {"padding_end", std::vector<int64_t>{1, 1}}});
        break;
    }
    REQUIRE(v.ok());
    values.push_back(*v);
  }
  g.AddOutput("y", values.back());
  int extra = static_cast<int>(rng() % 3);
  for (int i = 0; i < extra; ++i) g.AddOutput("z" + std::to_string(i), values[2 + rng() % (values.size() - 2)]);
  return g;
}

TEST_CASE("random graphs lowered with memory planning compute the reference results", "[memory_plan][property]") {
  std::mt19937 rng(777);
  int in_place = 0, reused = 0;
  for (int trial = 0; trial < 40; ++trial) {
    ir::Graph g = RandomGraph(rng, 4 + static_cast<int>(rng() % 14));
    INFO("trial " << trial << "\n" << ir::PrintGraph(g));
    testing::Named args = testing::RandomArguments(g, rng);
    auto want = testing::RunReferenceNamed(g, args);
    REQUIRE(want.ok());
    for (LowerOptions options : {LowerOptions{false, true}, LowerOptions{true, true}}) {
      INFO("blocked_layouts=" << options.blocked_layouts);
      LowerStats stats;
      auto got = testing::RunCompiledNamed(g, args, options, &stats);
      INFO((got.ok() ? std::string() : got.status().ToString()));
      REQUIRE(got.ok());
      testing::ExpectNamedClose(*got, *want, 2e-4);
      CHECK(stats.memory.arena_bytes >= stats.memory.lower_bound_bytes);
      CHECK(stats.memory.arena_bytes <= stats.memory.naive_bytes);
      in_place += stats.memory.num_in_place;
      reused += stats.memory.arena_bytes < stats.memory.naive_bytes;
    }
  }
  // The generator exercises the interesting cases, not only trivially separate buffers.
  CHECK(in_place > 10);
  CHECK(reused > 20);
}

}  // namespace
}  // namespace kiln::codegen
