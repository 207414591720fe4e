// Training artifacts (aot::ExportTrainingArtifact, runtime::TrainingSession): N steps run
// from the artifact by the runtime alone equal N steps of graph::TrainStep bit for bit
// (loss, output, every weight and optimizer-state tensor), for SGD with momentum and weight
// decay and for Adam; a checkpoint taken mid-run and restored into a fresh session continues
// exactly as the uninterrupted run; the eval program equals a frozen Predictor; wrong
// inputs, wrong artifacts and wrong checkpoints give clear errors and change nothing.
#include <catch2/catch.hpp>

#include <cstdlib>
#include <cstring>
#include <random>

#include "aot/export.h"
#include "aot/models.h"
#include "backends/cpu/cpu_target.h"
#include "graph/parameter.h"
#include "graph/trainer.h"
#include "runtime/artifact.h"
#include "runtime/model.h"
#include "runtime/training.h"

namespace kiln {
namespace {

std::string TmpPath(const std::string& name) {
  const char* dir = std::getenv("TEST_TMPDIR");
  return std::string(dir ? dir : "/tmp") + "/" + name;
}

struct Batch {
  Tensor data, label;
};

std::vector<Batch> MakeBatches(int count, const Shape& shape, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(-1.f, 1.f);
  std::uniform_int_distribution<int32_t> cls(0, 9);
  std::vector<Batch> out;
  for (int k = 0; k < count; ++k) {
    Batch b{Tensor(DType::kF32, shape), Tensor(DType::kS32, {shape[0]})};
    for (int64_t i = 0; i < b.data.num_elements(); ++i) b.data.f32()[i] = u(rng);
    for (int64_t i = 0; i < shape[0]; ++i) b.label.s32()[i] = cls(rng);
    out.push_back(std::move(b));
  }
  return out;
}

bool SameBits(const Tensor& a, const Tensor& b) {
  return a.dtype() == b.dtype() && a.shape() == b.shape() &&
         std::memcmp(a.data(), b.data(), static_cast<size_t>(a.size_bytes())) == 0;
}

struct Setup {
  std::shared_ptr<graph::nn::Block> net;
  std::unique_ptr<graph::Trainer> trainer;
};

Setup MakeLeNet(const std::string& optimizer) {
  graph::Seed(3);
  auto net = aot::MakeModel("lenet");
  REQUIRE(net.ok());
  REQUIRE((*net)->Initialize(graph::Xavier()).ok());
  std::map<std::string, double> options = optimizer == "adam"
                                              ? std::map<std::string, double>{{"learning_rate", 0.002}, {"wd", 1e-4}}
                                              : std::map<std::string, double>{
                                                    {"learning_rate", 0.05}, {"momentum", 0.9}, {"wd", 1e-4}};
  Setup s;
  s.net = std::move(*net);
  s.trainer = std::make_unique<graph::Trainer>(*s.net, optimizer, options);
  REQUIRE(s.trainer->status().ok());
  return s;
}

const Shape kShape = {8, 1, 28, 28};

std::shared_ptr<const runtime::Model> Export(Setup& s, const std::string& path, int64_t eval_batch = 0) {
  aot::TrainExportOptions options;
  options.model_name = "lenet-train";
  options.eval_batch = eval_batch;
  auto r = aot::ExportTrainingArtifact(*s.net, graph::SoftmaxCrossEntropyLoss(), *s.trainer, kShape, path, options);
  INFO((r.ok() ? "" : r.status().ToString()));
  REQUIRE(r.ok());
  auto model = runtime::Model::Load(path);
  INFO((model.ok() ? "" : model.status().ToString()));
  REQUIRE(model.ok());
  return *model;
}

std::unique_ptr<runtime::TrainingSession> Open(std::shared_ptr<const runtime::Model> model) {
  auto run = runtime::TrainingSession::Create(std::move(model));
  INFO((run.ok() ? "" : run.status().ToString()));
  REQUIRE(run.ok());
  return std::move(*run);
}

TEST_CASE("N steps from a training artifact equal N steps of TrainStep bit for bit", "[runtime][training]") {
  std::string optimizer = GENERATE(std::string("sgd"), std::string("adam"));
  INFO(optimizer);
  Setup s = MakeLeNet(optimizer);
  auto model = Export(s, TmpPath("lenet-train-" + optimizer + ".kiln"));
  const runtime::ModelInfo& info = model->info();
  REQUIRE(info.training);
  CHECK(info.training->optimizer == optimizer);
  CHECK(info.training->num_update == 0);
  // The step keeps weights and state resident (write-back steps) and updates them all.
  CHECK_FALSE(info.writeback_steps.empty());
  int states = 0;
  for (size_t i = 0; i < info.params.size(); ++i) {
    CHECK(info.param_info[i].updated);
    states += info.param_info[i].state;
  }
  CHECK(states == (optimizer == "adam" ? 20 : 10));  // LeNet: 10 weights; momentum, or mean and var
  CHECK(model->eval_executable() != nullptr);
  // Not an inference model.
  auto plain = model->NewSession();
  REQUIRE_FALSE(plain.ok());
  CHECK(plain.status().code() == StatusCode::kFailedPrecondition);
  CHECK_THAT(plain.status().message(), Catch::Contains("training artifact"));

  auto run = Open(model);
  graph::CompileOptions copts;
  copts.streams = 1;
  graph::TrainStep step(*s.net, graph::SoftmaxCrossEntropyLoss(), *s.trainer, copts);
  auto batches = MakeBatches(4, kShape, 21);
  for (size_t k = 0; k < batches.size(); ++k) {
    INFO("step " << k);
    Tensor want_loss, want_out, got_loss, got_out;
    REQUIRE(step.Run(batches[k].data, batches[k].label, kShape[0], &want_loss, &want_out).ok());
    Status st = run->Step(batches[k].data, batches[k].label, &got_loss, &got_out);
    INFO(st.ToString());
    REQUIRE(st.ok());
    CHECK(SameBits(want_loss, got_loss));
    CHECK(SameBits(want_out, got_out));
  }
  CHECK(run->num_update() == 4);
  CHECK(s.trainer->num_update() == 4);
  // Every weight and state tensor, read through the entries (resident copies written back).
  for (auto& [name, p] : s.net->CollectParams()) {
    INFO(name);
    auto got = run->store().entry(name)->Read();
    auto want = p->Data();
    REQUIRE(got.ok());
    REQUIRE(want.ok());
    CHECK(SameBits(**want, **got));
  }
  for (size_t i = 0; i < info.params.size(); ++i) {
    if (!info.param_info[i].state) continue;
    const runtime::TensorSpec& spec = info.params[i];
    INFO(spec.name);
    Tensor* want = s.trainer->State(spec.name, spec.shape);
    auto got = run->store().entry(spec.name)->Read();
    REQUIRE(want != nullptr);
    REQUIRE(got.ok());
    CHECK(SameBits(*want, **got));
  }
  // A training run whose weights did not move would pass the comparisons above trivially.
  auto first = runtime::Model::Load(TmpPath("lenet-train-" + optimizer + ".kiln"));
  REQUIRE(first.ok());
  const Tensor& w = run->store().entry("0.weight")->value();
  CHECK(std::memcmp(w.data(), (*first)->weight_data(0), static_cast<size_t>(w.size_bytes())) != 0);
}

TEST_CASE("the eval program of a training artifact equals a frozen Predictor after training",
          "[runtime][training]") {
  Setup s = MakeLeNet("sgd");
  auto run = Open(Export(s, TmpPath("lenet-eval.kiln"), /*eval_batch=*/5));
  CHECK(run->eval_input_shape() == Shape{5, 1, 28, 28});
  auto batches = MakeBatches(3, kShape, 5);
  Tensor loss, out;
  for (const auto& b : batches) REQUIRE(run->Step(b.data, b.label, &loss, &out).ok());
  // The same weights in a graph network, then both forward passes on one input.
  std::string params = TmpPath("lenet-eval.params");
  REQUIRE(run->SaveParameters(params).ok());
  auto fresh = aot::MakeModel("lenet");
  REQUIRE(fresh.ok());
  REQUIRE((*fresh)->LoadParameters(params).ok());
  graph::CompileOptions frozen;
  frozen.constant_params = true;
  graph::Predictor predictor(**fresh, frozen);
  Tensor x = MakeBatches(1, {5, 1, 28, 28}, 9)[0].data, want, got;
  REQUIRE(predictor.Forward(x, &want).ok());
  REQUIRE(run->Predict(x, &got).ok());
  CHECK(SameBits(want, got));
  // More steps move the weights: the eval session re-reads them (prepack) by itself.
  for (const auto& b : batches) REQUIRE(run->Step(b.data, b.label, &loss, &out).ok());
  Tensor after;
  REQUIRE(run->Predict(x, &after).ok());
  CHECK_FALSE(SameBits(got, after));
  // Wrong shapes name the input and both shapes.
  Status bad = run->Predict(MakeBatches(1, kShape, 1)[0].data, &after);
  CHECK(bad.code() == StatusCode::kInvalidArgument);
  CHECK_THAT(bad.message(), Catch::Contains("data") && Catch::Contains("[5,1,28,28]"));
}

TEST_CASE("a checkpoint restored into a fresh session continues the run bit for bit", "[runtime][training]") {
  Setup s = MakeLeNet("adam");  // Adam: the step count is part of the learning rate
  std::string path = TmpPath("lenet-ckpt.kiln");
  auto model = Export(s, path);
  auto batches = MakeBatches(5, kShape, 8);
  Tensor loss, out;
  auto straight = Open(model);
  for (const auto& b : batches) REQUIRE(straight->Step(b.data, b.label, &loss, &out).ok());

  std::string ckpt = TmpPath("lenet.ckpt.params");
  {
    auto first = Open(model);
    first->set_learning_rate(first->learning_rate());  // unchanged, stored exactly
    for (int k = 0; k < 2; ++k) REQUIRE(first->Step(batches[k].data, batches[k].label, &loss, &out).ok());
    REQUIRE(first->SaveCheckpoint(ckpt).ok());
  }
  auto resumed = Open(runtime::Model::Load(path).value());
  Status st = resumed->LoadCheckpoint(ckpt);
  INFO(st.ToString());
  REQUIRE(st.ok());
  CHECK(resumed->num_update() == 2);
  for (int k = 2; k < 5; ++k) REQUIRE(resumed->Step(batches[k].data, batches[k].label, &loss, &out).ok());
  CHECK(resumed->num_update() == 5);
  for (const std::string& name : straight->store().Names()) {
    INFO(name);
    CHECK(SameBits(**straight->store().entry(name)->Read(), **resumed->store().entry(name)->Read()));
  }
  // Without the step count the Adam run would not continue exactly: a weights-only file is
  // refused, naming what is missing, and the session is unchanged.
  std::string weights_only = TmpPath("lenet.weights.params");
  REQUIRE(resumed->SaveParameters(weights_only).ok());
  Tensor before = **resumed->store().entry("0.weight")->Read();
  Status bad = resumed->LoadCheckpoint(weights_only);
  CHECK(bad.code() == StatusCode::kInvalidArgument);
  CHECK_THAT(bad.message(), Catch::Contains("has no tensor '0.bias.mean'"));
  CHECK(SameBits(before, **resumed->store().entry("0.weight")->Read()));
  CHECK(resumed->num_update() == 5);
}

TEST_CASE("training artifacts reject wrong inputs and inference artifacts", "[runtime][training]") {
  Setup s = MakeLeNet("sgd");
  auto model = Export(s, TmpPath("lenet-errors.kiln"), /*eval_batch=*/-1);
  CHECK(model->eval_executable() == nullptr);
  auto run = Open(model);
  Tensor loss, out;
  auto b = MakeBatches(1, {4, 1, 28, 28}, 2)[0];
  Status st = run->Step(b.data, b.label, &loss, &out);
  CHECK(st.code() == StatusCode::kInvalidArgument);
  CHECK_THAT(st.message(), Catch::Contains("[4,1,28,28]") && Catch::Contains("[8,1,28,28]"));
  CHECK(run->num_update() == 0);
  Tensor x(DType::kF32, kShape);
  CHECK(run->Predict(x, &out).code() == StatusCode::kUnimplemented);

  // An inference artifact is not a training artifact.
  std::string plain = TmpPath("lenet-plain.kiln");
  REQUIRE(aot::ExportArtifact(*s.net, {1, 1, 28, 28}, plain).ok());
  auto inference = runtime::Model::Load(plain);
  REQUIRE(inference.ok());
  auto bad = runtime::TrainingSession::Create(*inference);
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.status().code() == StatusCode::kFailedPrecondition);
  CHECK_THAT(bad.status().message(), Catch::Contains("kiln compile --train"));
}

TEST_CASE("a training artifact's extra fields are validated on load", "[runtime][training]") {
  Setup s = MakeLeNet("sgd");
  std::vector<std::unique_ptr<Tensor>> weights;
  auto c = aot::CompileTrainingForExport(*s.net, graph::SoftmaxCrossEntropyLoss(), *s.trainer, kShape, {}, &weights);
  REQUIRE(c.ok());
  auto bytes = runtime::SerializeArtifact(*c);
  REQUIRE(bytes.ok());
  auto view = runtime::ParseArtifact(reinterpret_cast<const uint8_t*>(bytes->data()), bytes->size());
  REQUIRE(view.ok());
  REQUIRE(view->training);
  CHECK(view->training->eval_params.size() == 10);
  CHECK(view->training->info.Option("momentum", 0) == 0.9);
  // The writer refuses inconsistent contents.
  runtime::ArtifactContents wrong = *c;
  wrong.program.param_info.pop_back();
  CHECK(runtime::SerializeArtifact(wrong).status().code() == StatusCode::kInvalidArgument);
  wrong = *c;
  wrong.training.reset();
  auto no_training = runtime::SerializeArtifact(wrong);
  CHECK(no_training.status().code() == StatusCode::kFailedPrecondition);
  CHECK_THAT(no_training.status().message(), Catch::Contains("write-back"));
  wrong = *c;
  wrong.eval.params[0].name = "no.such.weight";
  CHECK_THAT(runtime::SerializeArtifact(wrong).status().message(), Catch::Contains("no.such.weight"));
}

}  // namespace
}  // namespace kiln
