// Shared by the server tests: a LeNet artifact (batch 4), random images, the expected
// logits from a direct session run, KServe request bodies, and a running server with a client.
#pragma once

#include <catch2/catch.hpp>

#include <httplib.h>

#include <cstdlib>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>

#include "aot/export.h"
#include "aot/models.h"
#include "graph/parameter.h"
#include "runtime/model.h"
#include "serve/server.h"

namespace kiln::serve::testing {

using json = nlohmann::json;

constexpr int kBatch = 4;  // the artifact's compiled batch

inline std::string TmpPath(const std::string& name) {
  const char* dir = std::getenv("TEST_TMPDIR");
  return std::string(dir ? dir : "/tmp") + "/" + name;
}

// A LeNet artifact compiled for batch 4 (seeded Xavier weights), loaded once.
inline std::shared_ptr<const runtime::Model> LeNet() {
  static std::shared_ptr<const runtime::Model> model = [] {
    graph::Seed(3);
    auto net = aot::MakeModel("lenet");
    REQUIRE(net.ok());
    REQUIRE((*net)->Initialize(graph::Xavier()).ok());
    std::string path = TmpPath("serve_lenet.kiln");
    REQUIRE(aot::ExportArtifact(**net, {kBatch, 1, 28, 28}, path, {.model_name = "lenet"}).ok());
    auto m = runtime::Model::Load(path);
    REQUIRE(m.ok());
    return *m;
  }();
  return model;
}

inline std::vector<float> RandomImages(int n, uint32_t seed) {
  std::vector<float> v(static_cast<size_t>(n) * 784);
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(-1.f, 1.f);
  for (float& x : v) x = u(rng);
  return v;
}

// The model's logits for `images` (n rows), run directly on a session with zero padding,
// as the server batches them.
inline std::vector<float> Expected(const std::vector<float>& images) {
  auto s = LeNet()->NewSession();
  REQUIRE(s.ok());
  Tensor in(DType::kF32, {kBatch, 1, 28, 28}), out;
  std::memcpy(in.data(), images.data(), images.size() * 4);
  REQUIRE((*s)->Run({&in}, {&out}).ok());
  return std::vector<float>(out.f32(), out.f32() + images.size() / 784 * 10);
}

inline json InferBody(const std::vector<float>& images, const std::string& id = "") {
  int n = static_cast<int>(images.size() / 784);
  json b = {{"inputs", {{{"name", "data"}, {"shape", {n, 1, 28, 28}}, {"datatype", "FP32"}, {"data", images}}}}};
  if (!id.empty()) b["id"] = id;
  return b;
}

struct Running {
  std::unique_ptr<InferenceServer> server;
  std::unique_ptr<httplib::Client> client;
  explicit Running(ServerOptions options = {}) {
    options.port = 0;
    auto s = InferenceServer::Create(LeNet(), options);
    REQUIRE(s.ok());
    server = std::move(*s);
    REQUIRE(server->Start().ok());
    REQUIRE(server->port() > 0);
    client = std::make_unique<httplib::Client>("127.0.0.1", server->port());
    client->set_read_timeout(30, 0);
  }
  httplib::Result Post(const std::string& body, const std::string& path = "/v2/models/lenet/infer") {
    return client->Post(path.c_str(), body, "application/json");
  }
};

// Checks that an infer response carries the expected logits exactly (FP32 through JSON
// doubles round-trips bit for bit).
inline void CheckLogits(const httplib::Result& r, const std::vector<float>& images) {
  REQUIRE(r);
  INFO(r->body.substr(0, 300));
  REQUIRE(r->status == 200);
  json j = json::parse(r->body);
  int n = static_cast<int>(images.size() / 784);
  REQUIRE(j["outputs"].size() == 1);
  CHECK(j["outputs"][0]["name"] == "output");
  CHECK(j["outputs"][0]["datatype"] == "FP32");
  CHECK(j["outputs"][0]["shape"] == json({n, 10}));
  std::vector<float> want = Expected(images);
  REQUIRE(j["outputs"][0]["data"].size() == want.size());
  for (size_t i = 0; i < want.size(); ++i) CHECK(j["outputs"][0]["data"][i].get<float>() == want[i]);
}

inline void CheckStillServing(Running& r) {
  auto live = r.client->Get("/v2/health/live");
  REQUIRE(live);
  CHECK(live->status == 200);
  auto images = RandomImages(1, 777);
  CheckLogits(r.Post(InferBody(images).dump()), images);
}

// AddressSanitizer keeps freed memory in quarantine: RSS bounds do not apply under it.
#if defined(__SANITIZE_ADDRESS__)
constexpr bool kSanitized = true;
#else
constexpr bool kSanitized = false;
#endif

// The resident set size (VmRSS) of this process, bytes.
inline int64_t RssBytes() {
  std::ifstream f("/proc/self/status");
  std::string line;
  while (std::getline(f, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::atoll(line.c_str() + 6) * 1024;
  }
  return -1;
}

}  // namespace kiln::serve::testing
