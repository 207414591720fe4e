// Batch buckets over real HTTP: an artifact compiled for batches 1, 2, 4 and 8 runs each
// batch on the smallest bucket that holds it, so one request computes one image, not eight;
// each request's logits are the bucket session's, bit for bit; padding is counted.
#include "tests/serve/serve_test_util.h"

namespace kiln::serve::testing {
namespace {

// LeNet (seeded Xavier weights) compiled for batch 8 with buckets 1, 2 and 4 when `buckets`.
std::shared_ptr<const runtime::Model> LeNet8(bool buckets) {
  graph::Seed(5);
  auto net = aot::MakeModel("lenet");
  REQUIRE(net.ok());
  REQUIRE((*net)->Initialize(graph::Xavier()).ok());
  aot::ExportOptions options;
  options.model_name = "lenet";
  if (buckets) options.batch_buckets = {1, 2, 4};
  std::string path = TmpPath(buckets ? "serve_lenet_buckets.kiln" : "serve_lenet8.kiln");
  REQUIRE(aot::ExportArtifact(**net, {8, 1, 28, 28}, path, options).ok());
  auto m = runtime::Model::Load(path);
  REQUIRE(m.ok());
  return *m;
}

// The logits of `images` run on the model's bucket `batch`, zero-padded as the server pads.
std::vector<float> BucketLogits(const runtime::Model& model, int64_t batch, const std::vector<float>& images) {
  auto s = model.NewSession(batch);
  REQUIRE(s.ok());
  Tensor in(DType::kF32, {batch, 1, 28, 28}), out;
  std::memset(in.data(), 0, static_cast<size_t>(in.size_bytes()));
  std::memcpy(in.data(), images.data(), images.size() * 4);
  REQUIRE((*s)->Run({&in}, {&out}).ok());
  return std::vector<float>(out.f32(), out.f32() + images.size() / 784 * 10);
}

uint64_t Counter(const std::string& metrics, const std::string& name) {
  std::string key = name + "{model=\"lenet\",version=\"1\"} ";
  auto at = metrics.find(key);
  REQUIRE(at != std::string::npos);
  return std::stoull(metrics.substr(at + key.size()));
}

struct BucketServer {
  std::unique_ptr<InferenceServer> server;
  std::unique_ptr<httplib::Client> client;
  BucketServer(std::shared_ptr<const runtime::Model> model, int max_batch_size) {
    ServerOptions options;
    options.port = 0;
    options.batch_delay_us = 0;  // one request per run: the bucket is the request's own size
    options.max_batch_size = max_batch_size;
    auto s = InferenceServer::Create(std::move(model), options);
    REQUIRE(s.ok());
    server = std::move(*s);
    REQUIRE(server->Start().ok());
    client = std::make_unique<httplib::Client>("127.0.0.1", server->port());
    client->set_read_timeout(30, 0);
  }
  std::vector<float> Infer(const std::vector<float>& images) {
    auto r = client->Post("/v2/models/lenet/infer", InferBody(images).dump(), "application/json");
    REQUIRE(r);
    INFO(r->body.substr(0, 300));
    REQUIRE(r->status == 200);
    return json::parse(r->body)["outputs"][0]["data"].get<std::vector<float>>();
  }
};

TEST_CASE("batch buckets: each batch runs on the smallest bucket that holds it", "[serve][buckets]") {
  auto model = LeNet8(true);
  BucketServer s(model, 0);
  auto meta = s.client->Get("/v2/models/lenet");
  REQUIRE(meta);
  json j = json::parse(meta->body);
  CHECK(j["parameters"]["batch_buckets"] == json({1, 2, 4, 8}));
  CHECK(j["parameters"]["max_batch_size"] == 8);
  CHECK(j["inputs"][0]["shape"] == json({-1, 1, 28, 28}));

  // n -> the bucket it runs on, and the zero rows that costs.
  const std::vector<std::pair<int, int64_t>> cases = {{1, 1}, {2, 2}, {3, 4}, {4, 4}, {5, 8}, {8, 8}};
  uint64_t padding = 0, runs = 0;
  for (const auto& [n, bucket] : cases) {
    INFO("n=" << n << " bucket " << bucket);
    auto images = RandomImages(n, static_cast<uint32_t>(100 + n));
    std::vector<float> got = s.Infer(images);
    std::vector<float> want = BucketLogits(*model, bucket, images);
    REQUIRE(got.size() == want.size());
    for (size_t i = 0; i < want.size(); ++i) CHECK(got[i] == want[i]);
    padding += static_cast<uint64_t>(bucket - n);
    runs++;
    std::string metrics = s.server->MetricsText();
    CHECK(Counter(metrics, "kiln_inference_padding_count") == padding);
    CHECK(Counter(metrics, "kiln_inference_exec_count") == runs);
  }
  CHECK(padding == 0 + 0 + 1 + 0 + 3 + 0);
}

TEST_CASE("batch buckets: without them a request is padded to the compiled batch", "[serve][buckets]") {
  auto model = LeNet8(false);
  BucketServer s(model, 0);
  auto images = RandomImages(1, 7);
  std::vector<float> got = s.Infer(images);
  std::vector<float> want = BucketLogits(*model, 8, images);
  for (size_t i = 0; i < want.size(); ++i) CHECK(got[i] == want[i]);
  CHECK(Counter(s.server->MetricsText(), "kiln_inference_padding_count") == 7);
}

TEST_CASE("batch buckets: max_batch_size keeps only the buckets it needs", "[serve][buckets]") {
  auto model = LeNet8(true);
  auto instance = ModelInstance::Create("lenet", "1", model, {.max_batch_size = 3});
  REQUIRE(instance.ok());
  CHECK((*instance)->buckets() == std::vector<int64_t>{1, 2, 4});
  BucketServer s(model, 3);
  auto images = RandomImages(3, 9);
  std::vector<float> got = s.Infer(images);
  std::vector<float> want = BucketLogits(*model, 4, images);
  for (size_t i = 0; i < want.size(); ++i) CHECK(got[i] == want[i]);
  auto r = s.client->Post("/v2/models/lenet/infer", InferBody(RandomImages(4, 10)).dump(), "application/json");
  REQUIRE(r);
  CHECK(r->status == 400);  // 4 samples exceed max_batch_size 3
}

}  // namespace
}  // namespace kiln::serve::testing
