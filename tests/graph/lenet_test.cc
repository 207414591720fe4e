// LeNet-5 end to end: the gradient of the whole training graph against finite differences
// (reference kernels, double), and the compiled oneDNN training step against the reference
// interpreter (same loss, same updated parameters).
#include <catch2/catch.hpp>

#include <set>

#include "backends/cpu/kernels_cpu.h"
#include "codegen/lower.h"
#include "examples/lenet_model.h"
#include "graph/lowlevel.h"
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

// TraceLeNet plus autodiff and the SGD update (momentum 0.9, wd 1e-3): env also holds lr,
// rescale_grad = 1/batch and random momentum state (drawn from `state_seed`).
Traced TraceLeNetTraining(int64_t batch, uint32_t seed, double lr, uint32_t state_seed) {
  Traced t = TraceLeNet(batch, seed);
  passes::PassManager pm;
  pm.Add(std::make_unique<passes::BuildTrainingGraph>("loss", passes::SgdOptions{0.9, 1e-3, -1}));
  pm.Add(std::make_unique<passes::DeadCodeElimination>());
  REQUIRE(pm.Run(*t.graph).ok());
  const ir::Graph& g = *t.graph;
  ir::ValueId lr_id = *g.FindValue("lr"), rescale = *g.FindValue("rescale_grad");
  t.env[lr_id] = ir::RefTensor(Shape{});
  t.env[lr_id][0] = lr;
  t.env[rescale] = ir::RefTensor(Shape{});
  t.env[rescale][0] = 1.0 / static_cast<double>(batch);
  std::mt19937 rng(state_seed);
  for (ir::ValueId s : g.ValuesOfKind(ir::ValueKind::kState)) {
    t.env[s] = testing::RandomRef(g.value(s).type.shape, rng, -0.01, 0.01);
  }
  return t;
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
  // lr 0.5: large, so a wrong gradient moves the weights visibly.
  Traced t = TraceLeNetTraining(batch, 11, /*lr=*/0.5, /*state_seed=*/5);
  const ir::Graph& g = *t.graph;

  auto exe = codegen::Lower(g, backends::cpu::CpuSteps());
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

// A LeNet with its trainer and TrainStep, initialized the same way for every `seed` (the
// deferred initialization is finished at once, while the generator is seeded), so that two
// runs with different CompileOptions can be compared step by step.
struct TrainRun {
  std::shared_ptr<nn::Sequential> net;
  std::unique_ptr<Trainer> trainer;
  std::unique_ptr<TrainStep> step;
};

TrainRun MakeTrainRun(const std::string& optimizer, uint64_t seed, const CompileOptions& options) {
  TrainRun r;
  Seed(seed);
  r.net = examples::MakeLeNet();
  REQUIRE(r.net->Initialize(Xavier()).ok());
  {
    Predictor p(*r.net);
    Tensor x(DType::kF32, {1, 1, 28, 28}), y;
    REQUIRE(p.Forward(x, &y).ok());
  }
  std::map<std::string, double> opts{{"learning_rate", optimizer == "sgd" ? 0.2 : 0.01}, {"wd", 1e-3}};
  if (optimizer == "sgd") opts["momentum"] = 0.9;
  r.trainer = std::make_unique<Trainer>(*r.net, optimizer, opts);
  r.step = std::make_unique<TrainStep>(*r.net, SoftmaxCrossEntropyLoss(), *r.trainer, options);
  return r;
}

TEST_CASE("resident parameters: -O2 training reorders weights once, updates them in place, writes them back",
          "[graph][lenet][codegen][layouts]") {
  int64_t batch = 4;
  Traced t = TraceLeNetTraining(batch, 13, /*lr=*/0.3, /*state_seed=*/9);
  const ir::Graph& g = *t.graph;

  codegen::LowerOptions options;
  options.blocked_layouts = options.plan_memory = options.group_updates = true;
  options.resident_params = true;
  codegen::LowerStats stats;
  auto exe = codegen::Lower(g, backends::cpu::CpuSteps(), &stats, options);
  REQUIRE(exe.ok());
  INFO((*exe)->DescribeSteps());
  // Every resident value has one prepack and one write-back reorder; the convolution
  // weights and their momentum are among them.
  const auto& prepack = (*exe)->prepack_steps();
  const auto& writeback = (*exe)->writeback_steps();
  REQUIRE(prepack.size() == writeback.size());
  std::set<std::string> resident;
  for (const auto& step : prepack) {
    CHECK(step->desc().kind == "reorder");
    CHECK(step->desc().inputs[0].kind == runtime::BufferKind::kParam);
    CHECK_FALSE(step->desc().outputs[0].dense());
    resident.insert((*exe)->params().at(static_cast<size_t>(step->desc().inputs[0].index)).name);
  }
  CHECK(resident.count("0.weight") == 1);
  CHECK(resident.count("0.weight.momentum") == 1);
  CHECK(prepack.size() >= 4);  // two convolution weights and their momentum
  // No step of the run reorders a bound parameter or writes one: the run touches only the
  // resident copies of the resident values.
  for (const auto& step : (*exe)->steps()) {
    const runtime::StepDesc& d = step->desc();
    if (d.kind == "reorder") {
      INFO(d.Where());
      CHECK(d.inputs[0].kind != runtime::BufferKind::kParam);
      CHECK(d.outputs[0].kind != runtime::BufferKind::kParam);
    }
  }

  // The resident copies lie after the planned arena, and no step operand overlaps one
  // unless it is that very copy.
  CHECK(stats.memory.resident_bytes > 0);
  CHECK(stats.arena_bytes >= stats.memory.arena_bytes + stats.memory.resident_bytes);
  CHECK(stats.memory.arena_bytes >= stats.memory.lower_bound_bytes);
  for (const auto& pre : prepack) {
    const runtime::TensorRef& r = pre->desc().outputs[0];
    CHECK(r.offset >= stats.memory.arena_bytes);
    CHECK(r.offset + r.size_bytes() <= stats.arena_bytes);
    for (const auto& step : (*exe)->steps()) {
      for (const auto* refs : {&step->desc().inputs, &step->desc().outputs, &step->desc().scratch}) {
        for (const runtime::TensorRef& o : *refs) {
          if (o.kind != runtime::BufferKind::kArena || o.offset == r.offset) continue;
          INFO(step->desc().Where() << " " << o.ToString() << " vs resident " << r.ToString());
          CHECK((o.offset + o.size_bytes() <= r.offset || o.offset >= r.offset + r.size_bytes()));
        }
      }
    }
  }

  std::map<std::string, Tensor> store;
  std::map<std::string, Tensor*> bindings;
  for (const auto& spec : (*exe)->params()) {
    store[spec.name] = ir::FromRef(t.env.at(*g.FindValue(spec.name)), DType::kF32);
    bindings[spec.name] = &store[spec.name];
  }
  std::map<std::string, Tensor> initial = store;
  auto session = runtime::Session::Create(*exe, bindings);
  REQUIRE(session.ok());
  std::vector<Tensor> inputs;
  std::vector<const Tensor*> in_ptrs;
  for (const auto& spec : (*exe)->inputs()) inputs.push_back(ir::FromRef(t.env.at(*g.FindValue(spec.name)), spec.dtype));
  for (const Tensor& x : inputs) in_ptrs.push_back(&x);
  Tensor loss, out;
  constexpr int kSteps = 3;
  ir::RefEnv ref = t.env;
  for (int step = 0; step < kSteps; ++step) {
    REQUIRE((*session)->Run(in_ptrs, {&loss, &out}).ok());
    REQUIRE(ir::RunReference(g, ref, /*apply_updates=*/true).ok());
  }
  // Before the write-back the bound tensors of resident values still hold their initial
  // values (the steps never wrote them); non-resident ones (biases) are current.
  CHECK((*session)->resident_newer());
  auto weight0 = store.at("0.weight");
  for (int64_t i = 0; i < weight0.num_elements(); ++i) REQUIRE(weight0.f32()[i] == initial.at("0.weight").f32()[i]);
  REQUIRE((*session)->WriteBack().ok());
  CHECK_FALSE((*session)->resident_newer());
  auto close = [](double a, double b) { return std::abs(a - b) <= 2e-4 * std::max(1.0, std::abs(b)); };
  int compared = 0;
  for (const auto& [name, tensor] : store) {
    const ir::RefTensor& want = ref.at(*g.FindValue(name));
    for (int64_t i = 0; i < want.size(); ++i) {
      INFO(name << "[" << i << "]");
      REQUIRE(close(tensor.f32()[i], want[i]));
      ++compared;
    }
  }
  CHECK(compared > 40000);

  // A caller that changes the dense values and invalidates the session gets them used.
  for (auto& [name, tensor] : store) {
    for (int64_t i = 0; i < tensor.num_elements(); ++i) tensor.f32()[i] = initial.at(name).f32()[i];
  }
  (*session)->Invalidate();
  ir::RefEnv again = t.env;
  REQUIRE((*session)->Run(in_ptrs, {&loss, &out}).ok());
  REQUIRE(ir::RunReference(g, again, /*apply_updates=*/true).ok());
  REQUIRE((*session)->WriteBack().ok());
  for (const auto& [name, tensor] : store) {
    const ir::RefTensor& want = again.at(*g.FindValue(name));
    for (int64_t i = 0; i < want.size(); ++i) {
      INFO(name << "[" << i << "] after Invalidate");
      REQUIRE(close(tensor.f32()[i], want[i]));
    }
  }
}

TEST_CASE("TrainStep with resident parameters matches TrainStep without, across API reads, writes and shapes",
          "[graph][lenet][layouts]") {
  std::string optimizer = GENERATE(std::string("sgd"), std::string("adam"));
  INFO(optimizer);
  using Run = TrainRun;
  CompileOptions resident, dense;
  dense.resident_params = false;
  Run a = MakeTrainRun(optimizer, 21, resident), b = MakeTrainRun(optimizer, 21, dense);
  auto batch_of = [](int64_t n, int salt) {
    std::pair<Tensor, Tensor> d{Tensor(DType::kF32, {n, 1, 28, 28}), Tensor(DType::kS32, {n})};
    for (int64_t i = 0; i < d.first.num_elements(); ++i) d.first.f32()[i] = static_cast<float>((i * 31 + salt) % 23) / 23.f;
    for (int64_t i = 0; i < n; ++i) d.second.s32()[i] = static_cast<int32_t>((i * 3 + salt) % 10);
    return d;
  };
  auto step = [&](Run& r, int64_t n, int salt) {
    auto [x, y] = batch_of(n, salt);
    Tensor loss, out;
    REQUIRE(r.step->Run(x, y, n, &loss, &out).ok());
    return loss;
  };
  auto same_params = [&](const char* when) {
    auto pa = a.net->CollectParams(), pb = b.net->CollectParams();
    REQUIRE(pa.size() == pb.size());
    for (size_t k = 0; k < pa.size(); ++k) {
      Tensor* x = *pa[k].second->Data();
      Tensor* y = *pb[k].second->Data();
      for (int64_t i = 0; i < x->num_elements(); ++i) {
        INFO(when << ": " << pa[k].first << "[" << i << "]");
        REQUIRE(std::abs(x->f32()[i] - y->f32()[i]) <= 1e-5f * std::max(1.f, std::abs(y->f32()[i])));
      }
    }
  };
  for (int i = 0; i < 3; ++i) {
    step(a, 8, i);
    step(b, 8, i);
  }
  REQUIRE(a.step->last_session()->executable().writeback_steps().size() >= 2);
  CHECK(b.step->last_session()->executable().writeback_steps().empty());
  CHECK(a.step->last_session()->resident_newer());
  same_params("after 3 steps");  // Data() wrote the resident values back
  CHECK_FALSE(a.step->last_session()->resident_newer());

  // Writing a weight through the API: the next step starts from it.
  for (Run* r : {&a, &b}) {
    auto params = r->net->CollectParams();
    Tensor w = **params[1].second->Data();
    for (int64_t i = 0; i < w.num_elements(); ++i) w.f32()[i] *= 0.5f;
    REQUIRE(params[1].second->SetData(std::move(w)).ok());
  }
  // Another shape (a short last batch) compiles its own session, which must see the newest
  // values; then back to the first shape.
  step(a, 8, 5);
  step(b, 8, 5);
  step(a, 3, 6);
  step(b, 3, 6);
  Tensor la = step(a, 8, 7), lb = step(b, 8, 7);
  for (int64_t i = 0; i < la.num_elements(); ++i) CHECK(std::abs(la.f32()[i] - lb.f32()[i]) <= 1e-4f);
  // A Predictor reads the newest values.
  auto [x, y] = batch_of(4, 9);
  Tensor ya, yb;
  Predictor pa(*a.net), pb(*b.net);
  REQUIRE(pa.Forward(x, &ya).ok());
  REQUIRE(pb.Forward(x, &yb).ok());
  for (int64_t i = 0; i < ya.num_elements(); ++i) CHECK(std::abs(ya.f32()[i] - yb.f32()[i]) <= 1e-4f);
  // ... also a Predictor compiled before the latest steps.
  step(a, 8, 8);
  step(b, 8, 8);
  Tensor za, zb;
  REQUIRE(pa.Forward(x, &za).ok());
  REQUIRE(pb.Forward(x, &zb).ok());
  double moved = 0;
  for (int64_t i = 0; i < za.num_elements(); ++i) {
    CHECK(std::abs(za.f32()[i] - zb.f32()[i]) <= 1e-4f);
    moved = std::max(moved, static_cast<double>(std::abs(zb.f32()[i] - yb.f32()[i])));
  }
  CHECK(moved > 1e-4);  // the step changed the predictions
  same_params("after switching shapes");
  // Optimizer state read through the trainer is current as well.
  auto first = a.net->CollectParams()[1];
  std::string state = first.first + (optimizer == "sgd" ? ".momentum" : ".mean");
  step(a, 8, 10);
  step(b, 8, 10);
  Tensor* sa = a.trainer->State(state, (*first.second->Data())->shape());
  Tensor* sb = b.trainer->State(state, (*first.second->Data())->shape());
  REQUIRE(sa != nullptr);
  REQUIRE(sb != nullptr);
  double norm = 0;
  for (int64_t i = 0; i < sa->num_elements(); ++i) {
    REQUIRE(std::abs(sa->f32()[i] - sb->f32()[i]) <= 1e-5f * std::max(1.f, std::abs(sb->f32()[i])));
    norm += std::abs(sb->f32()[i]);
  }
  CHECK(norm > 0);
}

// A block whose output adds the batch mean: sample i's output depends on the
// other samples, so it must not be split into streams.
class BatchMeanNet : public nn::Block {
 public:
  BatchMeanNet() { fc_ = RegisterChild("fc", nn::Make<nn::Dense>(3)); }
  StatusOr<Sym> Forward(Sym x) override {
    ASSIGN_OR_RETURN(Sym d, (*fc_)(x));
    ASSIGN_OR_RETURN(Sym m, ops::Mean(d, {0}, /*keepdims=*/true));
    return ops::Add(d, m);
  }

 private:
  nn::Dense* fc_;
};

TEST_CASE("Predictor streams: sub-batches on concurrent sessions give the one-session outputs",
          "[graph][lenet][streams]") {
  int64_t batch = GENERATE(2, 7, 64);
  bool frozen = GENERATE(false, true);
  INFO("batch " << batch << (frozen ? " frozen" : ""));
  Seed(5);
  auto net = examples::MakeLeNet();
  REQUIRE(net->Initialize(Xavier()).ok());
  Tensor x(DType::kF32, {batch, 1, 28, 28});
  for (int64_t i = 0; i < x.num_elements(); ++i) x.f32()[i] = static_cast<float>((i * 13) % 29) / 29.f;
  CompileOptions one, two;
  one.constant_params = two.constant_params = frozen;
  two.streams = 2;
  Predictor p1(*net, one), p2(*net, two);
  Tensor y1, y2;
  REQUIRE(p1.Forward(x, &y1).ok());
  REQUIRE(p2.Forward(x, &y2).ok());
  INFO(p2.streams_note());
  CHECK(p2.last_streams() == 2);
  CHECK(p2.streams_note().empty());
  REQUIRE(y2.shape() == y1.shape());
  for (int64_t i = 0; i < y1.num_elements(); ++i) REQUIRE(std::abs(y1.f32()[i] - y2.f32()[i]) <= 1e-5f);
  // A batch smaller than the stream count runs as one session.
  Tensor x1(DType::kF32, {1, 1, 28, 28}), z;
  REQUIRE(p2.Forward(x1, &z).ok());
  CHECK(p2.last_streams() == 1);
  // An input of another shape compiles its own (and fails here: the network needs 28x28).
  Tensor bad(DType::kF32, {batch, 1, 28, 27});
  Status s = p2.Forward(bad, &z);
  REQUIRE_FALSE(s.ok());
}

TEST_CASE("Predictor streams fall back to one session for a network that mixes samples", "[graph][streams]") {
  BatchMeanNet net;
  REQUIRE(net.Initialize(Xavier()).ok());
  Tensor x(DType::kF32, {6, 4});
  for (int64_t i = 0; i < x.num_elements(); ++i) x.f32()[i] = static_cast<float>(i % 5) - 2.f;
  CompileOptions two;
  two.streams = 2;
  Predictor p1(net), p2(net, two);
  Tensor y1, y2;
  REQUIRE(p1.Forward(x, &y1).ok());
  REQUIRE(p2.Forward(x, &y2).ok());
  CHECK(p2.last_streams() == 1);
  CHECK_THAT(p2.streams_note(), Catch::Contains("not batch separable") && Catch::Contains("reduce_mean"));
  for (int64_t i = 0; i < y1.num_elements(); ++i) CHECK(y1.f32()[i] == y2.f32()[i]);
}

TEST_CASE("a low-level CompiledGraph sees the weights a resident TrainStep holds", "[graph][lenet][layouts]") {
  TrainRun r = MakeTrainRun("sgd", 44, CompileOptions{});
  Tensor x(DType::kF32, {4, 1, 28, 28}), y(DType::kS32, {4}), loss, out;
  for (int64_t i = 0; i < x.num_elements(); ++i) x.f32()[i] = static_cast<float>((i * 7) % 13) / 13.f;
  for (int64_t i = 0; i < 4; ++i) y.s32()[i] = static_cast<int32_t>(i);
  Tracer t("forward");
  Sym data = t.Input("data", DType::kF32, x.shape());
  auto logits = r.net->Forward(data);
  REQUIRE(logits.ok());
  t.graph().AddOutput("logits", logits->id);
  auto compiled = CompiledGraph::Compile(t, *r.net);
  REQUIRE(compiled.ok());
  Tensor before, after;
  REQUIRE(compiled->Run({{"data", &x}}, {{"logits", &before}}).ok());
  for (int i = 0; i < 3; ++i) REQUIRE(r.step->Run(x, y, 4, &loss, &out).ok());
  REQUIRE(r.step->last_session()->resident_newer());
  REQUIRE(compiled->Run({{"data", &x}}, {{"logits", &after}}).ok());
  Tensor want;
  Predictor p(*r.net);
  REQUIRE(p.Forward(x, &want).ok());
  double moved = 0;
  for (int64_t i = 0; i < want.num_elements(); ++i) {
    CHECK(std::abs(after.f32()[i] - want.f32()[i]) <= 1e-5f);
    moved = std::max(moved, static_cast<double>(std::abs(after.f32()[i] - before.f32()[i])));
  }
  CHECK(moved > 1e-3);
}

TEST_CASE("TrainStep streams: summed sub-batch gradients train like the whole batch", "[graph][lenet][streams]") {
  std::string optimizer = GENERATE(std::string("sgd"), std::string("adam"));
  INFO(optimizer);
  using Run = TrainRun;
  CompileOptions one_stream, two_streams;
  two_streams.streams = 2;
  Run one = MakeTrainRun(optimizer, 33, one_stream), two = MakeTrainRun(optimizer, 33, two_streams);
  auto step = [](Run& r, int64_t n, int salt) {
    Tensor x(DType::kF32, {n, 1, 28, 28}), y(DType::kS32, {n}), loss, out;
    for (int64_t i = 0; i < x.num_elements(); ++i) x.f32()[i] = static_cast<float>((i * 17 + salt) % 31) / 31.f;
    for (int64_t i = 0; i < n; ++i) y.s32()[i] = static_cast<int32_t>((i * 7 + salt) % 10);
    REQUIRE(r.step->Run(x, y, n, &loss, &out).ok());
    return std::make_pair(loss, out);
  };
  // Batches of 8 (4 + 4 rows), 7 (4 + 3: two part sizes) and 1 (too small to split: one
  // session with resident weights, between streamed steps that read the dense ones).
  const int64_t sizes[] = {8, 8, 7, 1, 8};
  for (int i = 0; i < 5; ++i) {
    int64_t n = sizes[i];
    auto [l1, o1] = step(one, n, i);
    auto [l2, o2] = step(two, n, i);
    INFO("step " << i << ": " << two.step->streams_note());
    CHECK(two.step->last_streams() == (n >= 2 ? 2 : 1));
    CHECK(one.step->last_streams() == 1);
    REQUIRE(l2.shape() == l1.shape());
    REQUIRE(o2.shape() == o1.shape());
    for (int64_t j = 0; j < l1.num_elements(); ++j) REQUIRE(std::abs(l1.f32()[j] - l2.f32()[j]) <= 1e-4f);
    for (int64_t j = 0; j < o1.num_elements(); ++j) REQUIRE(std::abs(o1.f32()[j] - o2.f32()[j]) <= 1e-4f);
  }
  auto pa = one.net->CollectParams(), pb = two.net->CollectParams();
  double moved = 0;
  for (size_t k = 0; k < pa.size(); ++k) {
    Tensor* a = *pa[k].second->Data();
    Tensor* b = *pb[k].second->Data();
    for (int64_t i = 0; i < a->num_elements(); ++i) {
      INFO(pa[k].first << "[" << i << "]");
      REQUIRE(std::abs(a->f32()[i] - b->f32()[i]) <= 1e-4f * std::max(1.f, std::abs(a->f32()[i])));
    }
  }
  // The steps moved the weights (a test that would pass on untouched parameters is none).
  Seed(33);
  auto fresh = examples::MakeLeNet();
  REQUIRE(fresh->Initialize(Xavier()).ok());
  Predictor p(*fresh);
  Tensor x(DType::kF32, {1, 1, 28, 28}), y;
  REQUIRE(p.Forward(x, &y).ok());
  auto pf = fresh->CollectParams();
  for (size_t k = 0; k < pf.size(); ++k) {
    Tensor* a = *pb[k].second->Data();
    Tensor* f = *pf[k].second->Data();
    for (int64_t i = 0; i < a->num_elements(); ++i) moved = std::max(moved, double(std::abs(a->f32()[i] - f->f32()[i])));
  }
  CHECK(moved > 1e-3);
  CHECK(one.trainer->num_update() == 5);
  CHECK(two.trainer->num_update() == 5);
}

TEST_CASE("TrainStep streams fall back to one session when the loss mixes samples", "[graph][streams]") {
  BatchMeanNet net;
  REQUIRE(net.Initialize(Xavier()).ok());
  Trainer trainer(net, "sgd", {{"learning_rate", 0.1}});
  CompileOptions two;
  two.streams = 2;
  TrainStep step(net, SoftmaxCrossEntropyLoss(), trainer, two);
  Tensor x(DType::kF32, {6, 4}), y(DType::kS32, {6}), loss, out;
  for (int64_t i = 0; i < x.num_elements(); ++i) x.f32()[i] = static_cast<float>(i % 5) - 2.f;
  for (int64_t i = 0; i < 6; ++i) y.s32()[i] = static_cast<int32_t>(i % 3);
  REQUIRE(step.Run(x, y, 6, &loss, &out).ok());
  CHECK(step.last_streams() == 1);
  CHECK_THAT(step.streams_note(), Catch::Contains("not batch separable") && Catch::Contains("reduce_mean"));
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
