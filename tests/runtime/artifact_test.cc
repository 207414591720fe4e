// The artifact round trip: a network compiled in-process (Predictor) and the same network
// exported (aot::ExportArtifact) then loaded by the runtime alone (runtime::Model) give
// bit-identical outputs; concurrent sessions agree; wrong, truncated and corrupted files
// give clear errors.
#include <catch2/catch.hpp>

#include "backends/cpu/cpu_target.h"

#include <cstdlib>
#include <cstring>
#include <fstream>
#include <random>
#include <thread>

#include "aot/export.h"
#include "aot/models.h"
#include "graph/parameter.h"
#include "graph/trainer.h"
#include "runtime/artifact.h"
#include "runtime/model.h"

namespace kiln {
namespace {

std::string TmpPath(const std::string& name) {
  const char* dir = std::getenv("TEST_TMPDIR");
  return std::string(dir ? dir : "/tmp") + "/" + name;
}

Tensor RandomTensor(const Shape& shape, uint32_t seed) {
  Tensor t(DType::kF32, shape);
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(-1.f, 1.f);
  for (int64_t i = 0; i < t.num_elements(); ++i) t.f32()[i] = u(rng);
  return t;
}

std::string ReadFile(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(f), {});
}

void WriteFile(const std::string& path, const std::string& bytes) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

// Builds `model` with seeded Xavier weights, runs the in-process Predictor on `input`, exports
// the artifact to `path` and returns the Predictor's output.
Tensor CompileRunAndExport(const std::string& model, const Tensor& input, const std::string& path) {
  graph::Seed(7);
  auto net = aot::MakeModel(model);
  REQUIRE(net.ok());
  REQUIRE((*net)->Initialize(graph::Xavier()).ok());
  graph::Predictor predictor(**net);
  Tensor expected;
  REQUIRE(predictor.Forward(input, &expected).ok());
  auto r = aot::ExportArtifact(**net, input.shape(), path, {.model_name = model});
  INFO((r.ok() ? "" : r.status().ToString()));
  REQUIRE(r.ok());
  CHECK(r->file_bytes > r->memory.weight_bytes);
  CHECK(r->memory.arena_bytes > 0);
  CHECK(r->memory.lower_bound_bytes <= r->memory.naive_bytes);
  return expected;
}

TEST_CASE("artifact loaded by the runtime gives bit-identical outputs", "[runtime][artifact]") {
  auto [model, shape] = GENERATE(std::make_pair(std::string("lenet"), Shape{4, 1, 28, 28}),
                                 std::make_pair(std::string("lenet"), Shape{1, 1, 28, 28}),
                                 std::make_pair(std::string("mnist_cnn"), Shape{2, 1, 28, 28}),
                                 std::make_pair(std::string("mlp"), Shape{3, 1, 4, 4}));
  INFO(model << " " << ShapeToString(shape));
  Tensor input = RandomTensor(shape, 11);
  std::string path = TmpPath(model + ".kiln");
  Tensor expected = CompileRunAndExport(model, input, path);

  auto loaded = runtime::Model::Load(path);
  INFO((loaded.ok() ? "" : loaded.status().ToString()));
  REQUIRE(loaded.ok());
  const runtime::Model& m = **loaded;
  CHECK(m.name() == model);
  REQUIRE(m.inputs().size() == 1);
  CHECK(m.inputs()[0].shape == shape);
  CHECK(m.outputs()[0].shape == expected.shape());
  CHECK(m.info().weights_in_place);
  CHECK(m.info().format_version == runtime::kArtifactFormatVersion);
  CHECK(m.info().metadata.at("input_shape") == ShapeToString(shape));
  CHECK(!m.info().graph_text.empty());
  auto session = m.NewSession();
  REQUIRE(session.ok());
  Tensor out;
  REQUIRE((*session)->Run({&input}, {&out}).ok());
  REQUIRE(out.shape() == expected.shape());
  // Bit-identical: the same steps run on the same bytes.
  CHECK(std::memcmp(out.data(), expected.data(), static_cast<size_t>(out.size_bytes())) == 0);

  // FromBytes (a copy in memory) behaves the same.
  std::string bytes = ReadFile(path);
  auto from_bytes = runtime::Model::FromBytes(bytes.data(), bytes.size());
  REQUIRE(from_bytes.ok());
  auto s2 = (*from_bytes)->NewSession();
  REQUIRE(s2.ok());
  Tensor out2;
  REQUIRE((*s2)->Run({&input}, {&out2}).ok());
  CHECK(std::memcmp(out2.data(), expected.data(), static_cast<size_t>(out.size_bytes())) == 0);
}

TEST_CASE("many sessions run one loaded model concurrently", "[runtime][artifact][threads]") {
  Shape shape{2, 1, 28, 28};
  std::string path = TmpPath("lenet_threads.kiln");
  (void)CompileRunAndExport("lenet", RandomTensor(shape, 1), path);
  auto loaded = runtime::Model::Load(path);
  REQUIRE(loaded.ok());
  std::shared_ptr<const runtime::Model> model = *loaded;
  constexpr int kThreads = 6, kInputs = 4, kRounds = 10;
  std::vector<Tensor> inputs, expected(kInputs);
  auto ref_session = model->NewSession();
  REQUIRE(ref_session.ok());
  for (int i = 0; i < kInputs; ++i) {
    inputs.push_back(RandomTensor(shape, 100 + static_cast<uint32_t>(i)));
    REQUIRE((*ref_session)->Run({&inputs.back()}, {&expected[static_cast<size_t>(i)]}).ok());
  }
  std::vector<int> mismatches(kThreads, 0), failures(kThreads, 0);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      auto s = model->NewSession();
      if (!s.ok()) {
        failures[static_cast<size_t>(t)]++;
        return;
      }
      Tensor out;
      for (int r = 0; r < kRounds; ++r) {
        size_t k = static_cast<size_t>((t + r) % kInputs);
        if (!(*s)->Run({&inputs[k]}, {&out}).ok()) {
          failures[static_cast<size_t>(t)]++;
          continue;
        }
        if (std::memcmp(out.data(), expected[k].data(), static_cast<size_t>(out.size_bytes())) != 0) {
          mismatches[static_cast<size_t>(t)]++;
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  for (int t = 0; t < kThreads; ++t) {
    CHECK(failures[static_cast<size_t>(t)] == 0);
    CHECK(mismatches[static_cast<size_t>(t)] == 0);
  }
  // The sessions keep the model alive after the handle is dropped.
  auto s = model->NewSession();
  REQUIRE(s.ok());
  model.reset();
  Tensor out;
  REQUIRE((*s)->Run({&inputs[0]}, {&out}).ok());
  CHECK(std::memcmp(out.data(), expected[0].data(), static_cast<size_t>(out.size_bytes())) == 0);
}

TEST_CASE("a session rejects inputs that disagree with the signature", "[runtime][artifact]") {
  std::string path = TmpPath("mlp_sig.kiln");
  (void)CompileRunAndExport("mlp", RandomTensor({2, 1, 4, 4}, 3), path);
  auto m = runtime::Model::Load(path);
  REQUIRE(m.ok());
  auto s = (*m)->NewSession();
  REQUIRE(s.ok());
  Tensor wrong = RandomTensor({3, 1, 4, 4}, 4), out;
  Status st = (*s)->Run({&wrong}, {&out});
  CHECK(st.code() == StatusCode::kInvalidArgument);
  CHECK_THAT(st.message(), Catch::Contains("data") && Catch::Contains("[2,1,4,4]") && Catch::Contains("[3,1,4,4]"));
}

TEST_CASE("wrong, truncated and corrupted artifacts give clear errors", "[runtime][artifact][errors]") {
  std::string good_path = TmpPath("mlp_good.kiln");
  (void)CompileRunAndExport("mlp", RandomTensor({1, 1, 4, 4}, 5), good_path);
  const std::string good = ReadFile(good_path);
  REQUIRE(good.size() > 200);
  std::string path = TmpPath("bad.kiln");
  auto load = [&](const std::string& bytes) {
    WriteFile(path, bytes);
    return runtime::Model::Load(path).status();
  };

  SECTION("missing file") {
    Status s = runtime::Model::Load(TmpPath("does_not_exist.kiln")).status();
    CHECK(s.code() == StatusCode::kNotFound);
    CHECK_THAT(s.message(), Catch::Contains("does_not_exist.kiln"));
  }
  SECTION("empty file") { CHECK(load("").code() == StatusCode::kDataLoss); }
  SECTION("wrong magic") {
    Status s = load("PK\x03\x04 this is a zip file, not an artifact, padded to be long enough..........");
    CHECK(s.code() == StatusCode::kInvalidArgument);
    CHECK_THAT(s.message(), Catch::Contains("bad magic"));
    std::string params_like = good;
    params_like[0] = 'X';
    CHECK(load(params_like).code() == StatusCode::kInvalidArgument);
  }
  SECTION("other format version") {
    std::string v2 = good;
    v2[8] = 2;
    Status s = load(v2);
    CHECK(s.code() == StatusCode::kUnimplemented);
    CHECK_THAT(s.message(), Catch::Contains("version 2"));
  }
  SECTION("truncated anywhere") {
    for (size_t n : {size_t{10}, size_t{63}, size_t{64}, size_t{100}, good.size() / 2, good.size() - 1}) {
      Status s = load(good.substr(0, n));
      INFO("truncated to " << n << " bytes: " << s.ToString());
      CHECK(s.code() == StatusCode::kDataLoss);
      CHECK_THAT(s.message(), Catch::Contains("truncated"));
    }
  }
  SECTION("one flipped byte anywhere in the payload fails the checksum") {
    for (size_t at : {size_t{64}, size_t{100}, good.size() / 3, good.size() - 1}) {
      std::string bad = good;
      bad[at] = static_cast<char>(bad[at] ^ 0x20);
      Status s = load(bad);
      INFO("byte " << at << ": " << s.ToString());
      CHECK(s.code() == StatusCode::kDataLoss);
      CHECK_THAT(s.message(), Catch::Contains("CRC-32"));
    }
  }
  SECTION("garbage payload with a valid checksum fails the verifier, never crashes") {
    runtime::ArtifactLimits no_crc;
    no_crc.verify_checksum = false;
    std::mt19937 rng(9);
    int rejected = 0;
    for (int i = 0; i < 200; ++i) {
      std::string bad = good;
      for (int k = 0; k < 8; ++k) {
        size_t at = 64 + rng() % (bad.size() - 64);
        bad[at] = static_cast<char>(rng());
      }
      auto m = runtime::Model::FromBytes(bad.data(), bad.size(), {.target = nullptr, .limits = no_crc});
      rejected += !m.ok();
    }
    // Most random corruptions are caught (some hit weight bytes, which are just numbers).
    CHECK(rejected > 0);
  }
}

// Contents of a tiny valid artifact (one relu step) for hand-made corruptions.
struct Tiny {
  Tensor weight{DType::kF32, {4}};
  runtime::ArtifactContents c;
  Tiny() {
    c.model_name = "tiny";
    c.program.inputs = {{"data", DType::kF32, {4}}};
    c.program.outputs = {{"output", DType::kF32, {4}}};
    c.program.params = {{"w", DType::kF32, {4}}};
    c.program.planned = true;
    c.weights = {&weight};
    c.program.arena_bytes = 64;
    runtime::StepDesc add;
    add.kind = "add";
    add.node_name = "add0";
    add.inputs = {{runtime::BufferKind::kInput, 0, 0, DType::kF32, {4}, "", 0},
                  {runtime::BufferKind::kParam, 0, 0, DType::kF32, {4}, "", 0}};
    add.outputs = {{runtime::BufferKind::kArena, 0, 0, DType::kF32, {4}, "", 0}};
    runtime::StepDesc relu;
    relu.kind = "relu";
    relu.node_name = "relu0";
    relu.inputs = add.outputs;
    relu.outputs = {{runtime::BufferKind::kOutput, 0, 0, DType::kF32, {4}, "", 0}};
    c.program.steps = {add, relu};
    for (int i = 0; i < 4; ++i) weight.f32()[i] = static_cast<float>(i) - 1.5f;
  }
  Status Load() const {
    auto bytes = runtime::SerializeArtifact(c);
    REQUIRE(bytes.ok());
    return runtime::Model::FromBytes(bytes->data(), bytes->size()).status();
  }
};

TEST_CASE("every step operand is validated before any step is built", "[runtime][artifact][errors]") {
  Tiny t;
  SECTION("the tiny artifact itself loads and runs") {
    auto bytes = runtime::SerializeArtifact(t.c);
    REQUIRE(bytes.ok());
    auto m = runtime::Model::FromBytes(bytes->data(), bytes->size());
    REQUIRE(m.ok());
    auto s = (*m)->NewSession();
    REQUIRE(s.ok());
    Tensor x(DType::kF32, {4}), y;
    for (int i = 0; i < 4; ++i) x.f32()[i] = 1.f;
    REQUIRE((*s)->Run({&x}, {&y}).ok());
    CHECK(y.f32()[0] == 0.f);  // relu(1 - 1.5)
    CHECK(y.f32()[3] == 2.5f);
  }
  SECTION("arena offset past the end") {
    t.c.program.steps[0].outputs[0].offset = 64;
    t.c.program.steps[1].inputs[0].offset = 64;
    Status s = t.Load();
    CHECK(s.code() == StatusCode::kInvalidArgument);
    CHECK_THAT(s.message(), Catch::Contains("step 0 (add \"add0\") output 0") && Catch::Contains("outside its buffer"));
  }
  SECTION("input index out of range") {
    t.c.program.steps[0].inputs[0].index = 3;
    Status s = t.Load();
    CHECK(s.code() == StatusCode::kInvalidArgument);
    CHECK_THAT(s.message(), Catch::Contains("refers to input 3 of 1"));
  }
  SECTION("parameter read with more elements than it has") {
    t.c.program.steps[0].inputs[1].dims = {8};
    CHECK_THAT(t.Load().message(), Catch::Contains("outside its buffer"));
  }
  SECTION("dtype disagrees with the bound tensor") {
    t.c.program.steps[0].inputs[0].dtype = DType::kS32;
    CHECK_THAT(t.Load().message(), Catch::Contains("reads s32"));
  }
  SECTION("negative offset and negative dims") {
    t.c.program.steps[0].inputs[0].offset = -4;
    CHECK_THAT(t.Load().message(), Catch::Contains("negative offset"));
    t.c.program.steps[0].inputs[0].offset = 0;
    t.c.program.steps[0].inputs[0].dims = {-4};
    CHECK_THAT(t.Load().message(), Catch::Contains("negative dim"));
  }
  SECTION("huge arena") {
    t.c.program.arena_bytes = int64_t{1} << 50;
    CHECK_THAT(t.Load().message(), Catch::Contains("arena"));
  }
  SECTION("a step writing into an input") {
    t.c.program.steps[1].outputs[0] = t.c.program.steps[0].inputs[0];
    CHECK_THAT(t.Load().message(), Catch::Contains("read-only"));
  }
  SECTION("unknown step kind") {
    t.c.program.steps[1].kind = "frobnicate";
    Status s = t.Load();
    CHECK(s.code() == StatusCode::kUnimplemented);
    CHECK_THAT(s.message(), Catch::Contains("frobnicate"));
  }
  SECTION("weight disagrees with its parameter spec") {
    Tensor w8(DType::kF32, {8});
    t.c.weights = {&w8};
    CHECK(runtime::SerializeArtifact(t.c).status().code() == StatusCode::kInvalidArgument);
  }
}

TEST_CASE("an artifact records its target and ISA, and carries the lowering's memory report", "[runtime][artifact]") {
  graph::Seed(9);
  auto net = aot::MakeModel("lenet");
  REQUIRE(net.ok());
  REQUIRE((*net)->Initialize(graph::Xavier()).ok());
  Tensor input = RandomTensor({3, 1, 28, 28}, 22), out;
  graph::Predictor predictor(**net);
  REQUIRE(predictor.Forward(input, &out).ok());
  const runtime::MemoryReport& lowered = predictor.last_compile_stats().memory;
  std::string path = TmpPath("lenet_target.kiln");
  auto r = aot::ExportArtifact(**net, input.shape(), path, {.model_name = "lenet"});
  REQUIRE(r.ok());
  auto m = runtime::Model::Load(path);
  REQUIRE(m.ok());
  const runtime::ModelInfo& info = (*m)->info();
  CHECK(info.target == "cpu");
  CHECK(!info.isa.empty());
  // One memory report: what plan_buffers computed is what the artifact stores.
  CHECK(info.memory.arena_bytes == lowered.arena_bytes);
  CHECK(info.memory.naive_bytes == lowered.naive_bytes);
  CHECK(info.memory.lower_bound_bytes == lowered.lower_bound_bytes);
  CHECK(info.memory.num_reorders == lowered.num_reorders);
  CHECK(info.memory.num_buffers == lowered.num_buffers);
  CHECK(info.memory.weight_bytes == r->memory.weight_bytes);
  CHECK(info.memory.weight_bytes > 0);
}

TEST_CASE("loading refuses another target or a missing ISA with a clear error", "[runtime][artifact][errors]") {
  Tiny t;
  SECTION("an artifact for a target this program does not link") {
    t.c.program.target = "rocm";
    Status s = t.Load();
    CHECK(s.code() == StatusCode::kNotFound);
    CHECK_THAT(s.message(), Catch::Contains("no target 'rocm'") && Catch::Contains("cpu, cuda"));
  }
  SECTION("a runtime given another target than the artifact's") {
    t.c.program.target = "cuda";
    auto bytes = runtime::SerializeArtifact(t.c);
    REQUIRE(bytes.ok());
    runtime::LoadOptions options;
    options.target = &backends::cpu::CpuTarget();
    Status s = runtime::Model::FromBytes(bytes->data(), bytes->size(), options).status();
    CHECK(s.code() == StatusCode::kFailedPrecondition);
    CHECK_THAT(s.message(), Catch::Contains("compiled for target 'cuda'") && Catch::Contains("given 'cpu'"));
  }
  SECTION("an ISA this machine does not have") {
    // AMX is a superset no AVX2 machine has; on an AMX machine the check passes instead.
    t.c.isa = "avx512_core_amx";
    Status s = t.Load();
    if (backends::cpu::CpuTarget().isa() != "avx512_core_amx") {
      CHECK(s.code() == StatusCode::kFailedPrecondition);
      CHECK_THAT(s.message(), Catch::Contains("compiled for ISA avx512_core_amx"));
    } else {
      CHECK(s.ok());
    }
  }
  SECTION("an ISA name nobody knows") {
    t.c.isa = "z80";
    Status s = t.Load();
    CHECK(s.code() == StatusCode::kInvalidArgument);
    CHECK_THAT(s.message(), Catch::Contains("unknown ISA 'z80'"));
  }
  SECTION("the artifact's own ISA loads") {
    t.c.isa = backends::cpu::CpuTarget().isa();
    CHECK(t.Load().ok());
  }
}
}  // namespace
}  // namespace kiln

namespace kiln {
namespace {

TEST_CASE("constant-parameter graphs keep their prepack steps in the artifact", "[runtime][artifact]") {
  graph::Seed(8);
  auto net = aot::MakeModel("lenet");
  REQUIRE(net.ok());
  REQUIRE((*net)->Initialize(graph::Xavier()).ok());
  graph::CompileOptions compile;
  compile.constant_params = true;  // weight reorders become prepack steps run once per session
  Tensor input = RandomTensor({2, 1, 28, 28}, 21), expected, out;
  graph::Predictor predictor(**net, compile);
  REQUIRE(predictor.Forward(input, &expected).ok());
  std::string path = TmpPath("lenet_prepack.kiln");
  aot::ExportOptions options;
  options.model_name = "lenet";
  options.compile = compile;
  REQUIRE(aot::ExportArtifact(**net, input.shape(), path, options).ok());
  auto m = runtime::Model::Load(path);
  REQUIRE(m.ok());
  INFO((*m)->executable().DescribeSteps());
  CHECK(!(*m)->info().prepack_steps.empty());
  CHECK((*m)->info().prepack_steps.size() == (*m)->executable().prepack_steps().size());
  auto s = (*m)->NewSession();
  REQUIRE(s.ok());
  for (int round = 0; round < 2; ++round) {  // the second run reuses the prepacked weights
    REQUIRE((*s)->Run({&input}, {&out}).ok());
    CHECK(std::memcmp(out.data(), expected.data(), static_cast<size_t>(out.size_bytes())) == 0);
  }
}

TEST_CASE("batch buckets: one artifact, one copy of the weights, each batch as its own compile", "[runtime][artifact][buckets]") {
  graph::Seed(9);
  auto net = aot::MakeModel("lenet");
  REQUIRE(net.ok());
  REQUIRE((*net)->Initialize(graph::Xavier()).ok());
  std::string single = TmpPath("lenet_b8.kiln"), bucketed = TmpPath("lenet_buckets.kiln");
  REQUIRE(aot::ExportArtifact(**net, {8, 1, 28, 28}, single, {.model_name = "lenet"}).ok());
  aot::ExportOptions options;
  options.model_name = "lenet";
  options.batch_buckets = {1, 2, 3, 8};  // 8 is the input shape's own batch: listed once
  auto r = aot::ExportArtifact(**net, {8, 1, 28, 28}, bucketed, options);
  INFO((r.ok() ? "" : r.status().ToString()));
  REQUIRE(r.ok());
  // The weights are stored once: four programs cost far less than four copies of them.
  int64_t single_bytes = static_cast<int64_t>(ReadFile(single).size());
  CHECK(r->file_bytes - single_bytes < r->memory.weight_bytes / 2);

  auto m = runtime::Model::Load(bucketed);
  INFO((m.ok() ? "" : m.status().ToString()));
  REQUIRE(m.ok());
  CHECK((*m)->info().batch_sizes == std::vector<int64_t>{1, 2, 3, 8});
  CHECK((*m)->info().metadata.at("batch_buckets") == "1,2,3,8");
  CHECK((*m)->inputs()[0].shape == Shape{8, 1, 28, 28});  // the main program is the input shape's
  CHECK((*m)->BucketFor(1) == 1);
  CHECK((*m)->BucketFor(3) == 3);
  CHECK((*m)->BucketFor(4) == 8);
  CHECK((*m)->BucketFor(9) == 0);
  // Each bucket gives exactly what the in-process Predictor gives at that batch (the same
  // compile of the same graph), on the same shared weights.
  for (int64_t b : {1, 2, 3, 8}) {
    INFO("batch " << b);
    Tensor input = RandomTensor({b, 1, 28, 28}, static_cast<uint32_t>(30 + b)), expected, out;
    graph::Predictor predictor(**net);
    REQUIRE(predictor.Forward(input, &expected).ok());
    auto s = (*m)->NewSession(b);
    REQUIRE(s.ok());
    CHECK((*s)->executable().inputs()[0].shape == input.shape());
    REQUIRE((*s)->Run({&input}, {&out}).ok());
    REQUIRE(out.shape() == Shape{b, 10});
    CHECK(std::memcmp(out.data(), expected.data(), static_cast<size_t>(out.size_bytes())) == 0);
  }
  auto missing = (*m)->NewSession(4);
  REQUIRE(!missing.ok());
  CHECK(missing.status().code() == StatusCode::kNotFound);
  CHECK_THAT(missing.status().message(), Catch::Contains("no batch bucket 4") && Catch::Contains("1, 2, 3, 8"));
}

TEST_CASE("batch buckets: equal constants are stored once, inconsistent buckets are refused", "[runtime][artifact][buckets][errors]") {
  graph::Seed(10);
  auto net = aot::MakeModel("resnet18_v1");
  REQUIRE(net.ok());
  REQUIRE((*net)->Initialize(graph::Xavier()).ok());
  aot::ExportOptions options;
  options.model_name = "resnet18_v1";
  options.compile.constant_params = true;  // batch norms fold into the convolutions
  options.batch_buckets = {1, 2};
  std::vector<std::unique_ptr<Tensor>> weights;
  auto c = aot::CompileForExport(**net, {3, 3, 32, 32}, options, &weights);
  INFO((c.ok() ? "" : c.status().ToString()));
  REQUIRE(c.ok());
  REQUIRE(c->buckets.size() == 2);
  REQUIRE(!c->program.constants.empty());  // the folded batch norms' shifts
  auto bytes = runtime::SerializeArtifact(*c);
  REQUIRE(bytes.ok());
  // A 64-byte aligned copy for the parser.
  std::vector<uint64_t> aligned((bytes->size() + 7) / 8 + 8);
  auto* base = reinterpret_cast<uint8_t*>(aligned.data());
  base += (64 - reinterpret_cast<uintptr_t>(base) % 64) % 64;
  std::memcpy(base, bytes->data(), bytes->size());
  auto view = runtime::ParseArtifact(base, bytes->size());
  REQUIRE(view.ok());
  REQUIRE(view->buckets.size() == 2);
  // The buckets' constants are the main program's (batch-independent): one copy in the file.
  CHECK(view->constants.size() == c->program.constants.size());
  for (const auto& bk : view->buckets) {
    REQUIRE(bk.constants.size() == c->program.constants.size());
    for (size_t i = 0; i < bk.constants.size(); ++i) {
      const Tensor& want = c->program.constants[i];
      CHECK(bk.constant_specs[i].shape == want.shape());
      CHECK(std::memcmp(bk.constants[i], want.data(), static_cast<size_t>(want.size_bytes())) == 0);
    }
  }

  SECTION("a bucket with other parameters") {
    c->buckets[0].params[0].shape[0] += 1;
    auto bad = runtime::SerializeArtifact(*c);
    REQUIRE(!bad.ok());
    CHECK_THAT(bad.status().message(), Catch::Contains("batch bucket 0") && Catch::Contains("parameters differ"));
  }
  SECTION("a bucket whose signature differs in more than the batch") {
    c->buckets[1].inputs[0].shape[2] = 64;
    auto bad = runtime::SerializeArtifact(*c);
    REQUIRE(!bad.ok());
    CHECK_THAT(bad.status().message(), Catch::Contains("batch bucket 1 input 'data'") &&
                                           Catch::Contains("in more than the batch dim"));
  }
  SECTION("two programs with the same batch") {
    c->buckets[1] = c->buckets[0];
    auto bad = runtime::SerializeArtifact(*c);
    REQUIRE(!bad.ok());
    CHECK_THAT(bad.status().message(), Catch::Contains("batch 1 is not a new batch size"));
  }
}

}  // namespace
}  // namespace kiln
