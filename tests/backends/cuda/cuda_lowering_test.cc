// The cuda target's lowering without a GPU: LeNet (inference and a training step),
// the MNIST CNN, VGG-11 with batch norm and resnet18_v1 lower to planned step programs for
// target "cuda" (every operand dense NCHW/OIHW/NC, no reorders, a memory plan within its
// bounds); an artifact of one records target and SM versions and fails to load cleanly
// without a driver; compiling to run (Predictor, TrainStep) with --target cuda gives one
// clear error. The GPU kernels are not written (backends/cuda/cuda_target.h): with a
// driver, instantiation must name the first step kind it cannot run.
#include <catch2/catch.hpp>

#include "aot/models.h"
#include "backends/cuda/cuda_driver.h"
#include "backends/cuda/cuda_target.h"
#include "compiler/compile.h"
#include "graph/parameter.h"
#include "graph/symbol.h"
#include "graph/trainer.h"
#include "runtime/artifact.h"
#include "runtime/model.h"

namespace kiln {
namespace {

StatusOr<compiler::CompiledModule> LowerForCuda(graph::nn::Block& net, const Shape& shape, bool training) {
  graph::CompileOptions options;
  options.target = "cuda";
  if (training) {
    graph::Trainer trainer(net, "sgd", {{"learning_rate", 0.1}, {"momentum", 0.9}});
    ASSIGN_OR_RETURN(auto g, graph::TraceTrainingGraph(net, graph::SoftmaxCrossEntropyLoss(), shape));
    compiler::CompileRequest r = graph::TrainingRequest(options, trainer);
    r.instantiate = false;
    return compiler::Compile(std::move(g), r);
  }
  graph::Tracer t("forward");
  graph::Sym x = t.Input("data", DType::kF32, shape);
  ASSIGN_OR_RETURN(graph::Sym out, net.Forward(x));
  t.graph().AddOutput("output", out.id);
  options.constant_params = true;
  compiler::CompileRequest r = graph::InferenceRequest(options);
  r.instantiate = false;
  return compiler::Compile(t.TakeGraph(), r);
}

void CheckProgram(const runtime::StepProgram& p) {
  CHECK(p.target == "cuda");
  CHECK(p.planned);
  CHECK(p.arena_bytes >= 64);
  CHECK(p.memory.lower_bound_bytes <= p.memory.arena_bytes);
  CHECK(p.memory.arena_bytes <= p.memory.naive_bytes);
  CHECK(p.memory.num_reorders == static_cast<int>(p.prepack_steps.size()));  // no layout reorders: prepack steps only
  CHECK_FALSE(p.steps.empty());
  for (const auto* list : {&p.steps, &p.prepack_steps}) {
    for (const runtime::StepDesc& d : *list) {
      INFO(d.Where());
      CHECK(d.kind != "reorder");
      for (const auto* refs : {&d.inputs, &d.outputs}) {
        for (const runtime::TensorRef& r : *refs) CHECK(r.dense());
      }
    }
  }
}

TEST_CASE("networks lower to planned dense step programs for the cuda target", "[cuda][lowering]") {
  auto [model, shape, training] = GENERATE(std::make_tuple(std::string("lenet"), Shape{4, 1, 28, 28}, false),
                                           std::make_tuple(std::string("lenet"), Shape{4, 1, 28, 28}, true),
                                           std::make_tuple(std::string("mnist_cnn"), Shape{2, 1, 28, 28}, false),
                                           std::make_tuple(std::string("vgg11_bn"), Shape{1, 3, 32, 32}, false),
                                           std::make_tuple(std::string("resnet18_v1"), Shape{1, 3, 32, 32}, false));
  INFO(model << " " << ShapeToString(shape) << (training ? " training" : " inference"));
  graph::Seed(5);
  auto net = aot::MakeModel(model);
  REQUIRE(net.ok());
  REQUIRE((*net)->Initialize(graph::Xavier()).ok());
  auto m = LowerForCuda(**net, shape, training);
  INFO((m.ok() ? "" : m.status().ToString()));
  REQUIRE(m.ok());
  CheckProgram(m->program);
  if (training) {
    bool updates = false;
    for (const auto& d : m->program.steps) updates = updates || d.kind == "sgd_update";
    CHECK(updates);
    CHECK(m->program.writeback_steps.empty());  // dense-homed parameters: nothing resident
  }
}

TEST_CASE("a cuda artifact records its target and fails to load cleanly without a driver", "[cuda][lowering]") {
  graph::Seed(5);
  auto net = aot::MakeModel("lenet");
  REQUIRE(net.ok());
  REQUIRE((*net)->Initialize(graph::Xavier()).ok());
  auto m = LowerForCuda(**net, {2, 1, 28, 28}, false);
  REQUIRE(m.ok());
  runtime::ArtifactContents c;
  c.model_name = "lenet-cuda";
  c.program = m->program;
  c.isa = m->target->runtime_target().isa();
  CHECK(c.isa == "sm_80,sm_90");
  std::vector<Tensor> copies;
  copies.reserve(c.program.params.size());
  auto named = (*net)->CollectParams();
  std::map<std::string, graph::Parameter*> by_name(named.begin(), named.end());
  for (const auto& spec : c.program.params) {
    copies.push_back(*by_name.at(spec.name)->data_or_null());
    c.weights.push_back(&copies.back());
  }
  auto bytes = runtime::SerializeArtifact(c);
  REQUIRE(bytes.ok());
  auto view = runtime::ParseArtifact(reinterpret_cast<const uint8_t*>(bytes->data()), bytes->size());
  REQUIRE(view.ok());
  CHECK(view->target == "cuda");
  CHECK(view->isa == "sm_80,sm_90");
  auto model = runtime::Model::FromBytes(bytes->data(), bytes->size());
  REQUIRE_FALSE(model.ok());
  if (!backends::cuda::Driver::Get().ok()) {
    CHECK(model.status().code() == StatusCode::kFailedPrecondition);
    CHECK_THAT(model.status().message(), Catch::Contains("no CUDA driver"));
  } else {
    CHECK(model.status().code() == StatusCode::kUnimplemented);
    CHECK_THAT(model.status().message(), Catch::Contains("no GPU kernel for step kind"));
  }
}

TEST_CASE("compiling to run on the cuda target gives one clear error", "[cuda][lowering]") {
  graph::Seed(5);
  auto net = aot::MakeModel("lenet");
  REQUIRE(net.ok());
  REQUIRE((*net)->Initialize(graph::Xavier()).ok());
  graph::CompileOptions options;
  options.target = "cuda";
  graph::Predictor predictor(**net, options);
  Tensor x(DType::kF32, {1, 1, 28, 28}), y;
  Status s = predictor.Forward(x, &y);
  REQUIRE_FALSE(s.ok());
  if (!backends::cuda::Driver::Get().ok()) {
    CHECK(s.code() == StatusCode::kFailedPrecondition);
    CHECK_THAT(s.message(), Catch::Contains("no CUDA driver"));
  } else {
    CHECK(s.code() == StatusCode::kUnimplemented);
  }
  graph::Trainer trainer(**net, "sgd", {});
  graph::TrainStep step(**net, graph::SoftmaxCrossEntropyLoss(), trainer, options);
  Tensor label(DType::kS32, {1}), loss, out;
  label.s32()[0] = 3;
  Status t = step.Run(x, label, 1, &loss, &out);
  REQUIRE_FALSE(t.ok());
  CHECK(t.code() == s.code());
  // An unknown target lists the known ones.
  options.target = "rocm";
  graph::Predictor other(**net, options);
  Status u = other.Forward(x, &y);
  CHECK(u.code() == StatusCode::kNotFound);
  CHECK_THAT(u.message(), Catch::Contains("cpu, cuda"));
}

}  // namespace
}  // namespace kiln
