// LeNet-5 end to end: the gradient of the whole training graph against finite differences
// (reference kernels, double), and the compiled oneDNN training step against the reference
// interpreter (same loss, same updated parameters).
#include <catch2/catch.hpp>

#include "codegen/cpu/kernels_cpu.h"
#include "codegen/lower.h"
#include "examples/lenet_model.h"
#include "graph/trainer.h"
#include "ir/interpreter.h"
#include "passes/autodiff.h"
#include "passes/pass.h"
#include "tests/ir/grad_check.h"

namespace kiln::graph {
namespace {

struct Traced {
  std::unique_ptr<ir::Graph> graph;
  ir::RefEnv env;
};

// LeNet forward + per-sample loss on a random batch, traced into an IR graph; env holds the
// data, labels and the initialized parameters.
Traced TraceLeNet(int64_t batch, uint32_t seed) {
  Seed(seed);
  auto net = examples::MakeLeNet();
  REQUIRE(net->Initialize(Xavier()).ok());
  net->CollectParams();
  Tracer t("lenet");
  Sym x = t.Input("data", DType::kF32, {batch, 1, 28, 28});
  Sym label = t.Input("label", DType::kS32, {batch});
  auto out = net->Forward(x);
  REQUIRE(out.ok());
  auto loss = SoftmaxCrossEntropyLoss()(*out, label);
  REQUIRE(loss.ok());
  t.graph().AddOutput("loss", loss->id);
  t.graph().AddOutput("output", out->id);
  Traced r;
  std::mt19937 rng(seed);
  r.env[x.id] = testing::RandomRef({batch, 1, 28, 28}, rng, -1, 2);
  r.env[label.id] = ir::RefTensor({batch});
  for (int64_t i = 0; i < batch; ++i) r.env[label.id][i] = static_cast<double>((i * 7 + 3) % 10);
  for (auto& [name, p] : net->CollectParams()) {
    ir::RefTensor v = ir::ToRef(**p->Data());
    // Non-zero biases so their gradients are exercised away from the initial point.
    if (v.shape.size() == 1) v = testing::RandomRef(v.shape, rng, -0.1, 0.1);
    r.env[*t.graph().FindValue(name)] = v;
  }
  r.graph = t.TakeGraph();
  return r;
}

TEST_CASE("LeNet training-graph gradients match finite differences", "[graph][lenet][grad]") {
  Traced t = TraceLeNet(/*batch=*/3, /*seed=*/7);
  ir::Graph g = *t.graph;
  // Check d(sum_n loss_n * r_n)/d(every parameter) through the whole network.
  ir::ValueId loss = *g.FindOutput("loss");
  g.AddOutput("y", loss);
  std::mt19937 rng(3);
  auto res = testing::CheckGradients(g, t.env, g.ValuesOfKind(ir::ValueKind::kParameter), rng, 1e-6, 24);
  INFO(res.worst);
  CHECK(res.checked >= 200);
  // double precision central differences; ReLU/max-pool kinks are not hit with random data.
  CHECK(res.max_rel_error < 1e-5);
}

TEST_CASE("compiled LeNet training step matches the reference interpreter", "[graph][lenet][codegen]") {
  int64_t batch = GENERATE(1, 5);
  Traced t = TraceLeNet(batch, 11);
  ir::Graph g = *t.graph;
  passes::PassManager pm;
  pm.Add(std::make_unique<passes::BuildTrainingGraph>("loss", passes::SgdOptions{0.9, 1e-3, -1}));
  pm.Add(std::make_unique<passes::DeadCodeElimination>());
  REQUIRE(pm.Run(g).ok());

  // Hyper-parameters and momentum state.
  ir::ValueId lr = *g.FindValue("lr"), rescale = *g.FindValue("rescale_grad");
  t.env[lr] = ir::RefTensor(Shape{});
  t.env[lr][0] = 0.5;  // large, so a wrong gradient moves the weights visibly
  t.env[rescale] = ir::RefTensor(Shape{});
  t.env[rescale][0] = 1.0 / static_cast<double>(batch);
  std::mt19937 rng(5);
  for (ir::ValueId s : g.ValuesOfKind(ir::ValueKind::kState)) {
    t.env[s] = testing::RandomRef(g.value(s).type.shape, rng, -0.01, 0.01);
  }

  auto exe = codegen::Lower(g, codegen::cpu::CpuSteps());
  REQUIRE(exe.ok());
  std::map<std::string, Tensor> store;
  std::map<std::string, Tensor*> bindings;
  for (const auto& spec : (*exe)->params()) {
    store[spec.name] = ir::FromRef(t.env.at(*g.FindValue(spec.name)), DType::kF32);
    bindings[spec.name] = &store[spec.name];
  }
  auto session = runtime::Session::Create(*exe, bindings);
  REQUIRE(session.ok());
  std::vector<Tensor> inputs;
  std::vector<const Tensor*> in_ptrs;
  for (const auto& spec : (*exe)->inputs()) inputs.push_back(ir::FromRef(t.env.at(*g.FindValue(spec.name)), spec.dtype));
  for (const Tensor& x : inputs) in_ptrs.push_back(&x);
  Tensor loss, out;
  REQUIRE((*session)->Run(in_ptrs, {&loss, &out}).ok());

  ir::RefEnv ref = t.env;
  REQUIRE(ir::RunReference(g, ref, /*apply_updates=*/true).ok());
  auto close = [](double a, double b) { return std::abs(a - b) <= 1e-4 * std::max(1.0, std::abs(b)); };
  const ir::RefTensor& ref_loss = ref.at(*g.FindOutput("loss"));
  for (int64_t i = 0; i < ref_loss.size(); ++i) CHECK(close(loss.f32()[i], ref_loss[i]));
  int compared = 0;
  for (const auto& [name, tensor] : store) {
    const ir::RefTensor& want = ref.at(*g.FindValue(name));
    const ir::RefTensor& before = t.env.at(*g.FindValue(name));
    double moved = 0;
    for (int64_t i = 0; i < want.size(); ++i) {
      INFO(name << "[" << i << "]");
      REQUIRE(close(tensor.f32()[i], want[i]));
      moved = std::max(moved, std::abs(want[i] - before[i]));
      ++compared;
    }
    INFO(name);
    CHECK(moved > 1e-6);  // every parameter (and momentum) was actually updated
  }
  CHECK(compared > 40000);
}

TEST_CASE("a label out of range stops the compiled step with the node named", "[graph][codegen]") {
  auto net = examples::MakeLeNet();
  REQUIRE(net->Initialize(Xavier()).ok());
  Trainer trainer(*net, "sgd", {{"learning_rate", 0.1}});
  TrainStep step(*net, SoftmaxCrossEntropyLoss(), trainer);
  Tensor data(DType::kF32, {2, 1, 28, 28}), label(DType::kS32, {2}), loss, out;
  label.s32()[1] = 10;
  Status s = step.Run(data, label, 2, &loss, &out);
  REQUIRE_FALSE(s.ok());
  CHECK_THAT(s.message(), Catch::Contains("softmax_cross_entropy") && Catch::Contains("10"));
}

TEST_CASE("parameters are not accessible before deferred initialization completes", "[graph][params]") {
  auto net = examples::MakeLeNet();
  REQUIRE(net->Initialize(Xavier()).ok());
  auto params = net->CollectParams();
  REQUIRE(params.front().first == "0.bias");
  CHECK(params.front().second->Data().ok());  // the bias shape [6] is known at construction
  auto w = params[1].second->Data();           // 0.weight [6,0,5,5] waits for the first forward
  REQUIRE_FALSE(w.ok());
  CHECK_THAT(w.status().message(), Catch::Contains("0.weight") && Catch::Contains("deferred"));
  Predictor p(*net);
  Tensor x(DType::kF32, {1, 1, 28, 28}), y;
  REQUIRE(p.Forward(x, &y).ok());
  CHECK(y.shape() == Shape{1, 10});
  REQUIRE(params[1].second->Data().ok());
  CHECK((*params[1].second->Data())->shape() == Shape{6, 1, 5, 5});
}

TEST_CASE("save and load parameters round-trip and reject bad files", "[graph][params]") {
  std::string dir = std::getenv("TEST_TMPDIR") ? std::getenv("TEST_TMPDIR") : "/tmp";
  std::string path = dir + "/lenet.params";
  auto net = examples::MakeLeNet();
  REQUIRE(net->Initialize(Xavier()).ok());
  Predictor p(*net);
  Tensor x(DType::kF32, {2, 1, 28, 28}), y1, y2;
  for (int64_t i = 0; i < x.num_elements(); ++i) x.f32()[i] = static_cast<float>(i % 17) / 17.f;
  REQUIRE(p.Forward(x, &y1).ok());
  REQUIRE(net->SaveParameters(path).ok());
  auto fresh = examples::MakeLeNet();
  REQUIRE(fresh->LoadParameters(path).ok());
  Predictor q(*fresh);
  REQUIRE(q.Forward(x, &y2).ok());
  for (int64_t i = 0; i < y1.num_elements(); ++i) CHECK(y1.f32()[i] == y2.f32()[i]);

  // Truncated file: a clear DataLoss, and the network keeps its parameters.
  std::FILE* f = std::fopen(path.c_str(), "rb");
  std::string bytes(1 << 20, '\0');
  bytes.resize(std::fread(bytes.data(), 1, bytes.size(), f));
  std::fclose(f);
  std::string cut = dir + "/cut.params";
  f = std::fopen(cut.c_str(), "wb");
  std::fwrite(bytes.data(), 1, bytes.size() / 2, f);
  std::fclose(f);
  Status s = fresh->LoadParameters(cut);
  REQUIRE_FALSE(s.ok());
  CHECK(s.code() == StatusCode::kDataLoss);
  CHECK_THAT(s.message(), Catch::Contains("truncated"));
  REQUIRE(q.Forward(x, &y2).ok());
  CHECK(y1.f32()[0] == y2.f32()[0]);

  // A file that is not a .params file.
  std::string junk = dir + "/junk.params";
  f = std::fopen(junk.c_str(), "wb");
  std::fputs("not a parameter file at all", f);
  std::fclose(f);
  CHECK(fresh->LoadParameters(junk).code() == StatusCode::kDataLoss);
  CHECK(fresh->LoadParameters(dir + "/missing.params").code() == StatusCode::kNotFound);

  // A network of another shape names the parameter and both shapes.
  auto other = std::make_shared<nn::Sequential>();
  other->Add(nn::Make<nn::Conv2D>(7, 5));
  Status m = other->LoadParameters(path);
  REQUIRE_FALSE(m.ok());
  CHECK_THAT(m.message(), Catch::Contains("0.weight") || Catch::Contains("0.bias"));
}

}  // namespace
}  // namespace kiln::graph
