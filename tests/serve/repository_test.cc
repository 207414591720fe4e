// A model repository served over real HTTP: several models and versions at once, versioned
// routes, a bad artifact, a bad config and a symlink escaping the repository reported as
// UNAVAILABLE with their reasons while the others serve, the repository extension (index,
// load, unload) with unload giving the model's memory back, and names that could escape
// the folder refused.
#include <atomic>
#include <filesystem>
#include <fstream>
#include <thread>

#include "tests/serve/serve_test_util.h"

namespace kiln::serve {
namespace {

namespace fs = std::filesystem;
using namespace kiln::serve::testing;

void WriteFile(const fs::path& p, const std::string& text) {
  fs::create_directories(p.parent_path());
  std::ofstream(p, std::ios::binary) << text;
}

// Exports `model` (seeded weights) with `shape` to `path`.
void Export(const std::string& model, uint64_t seed, const Shape& shape, const fs::path& path) {
  graph::Seed(seed);
  auto net = aot::MakeModel(model);
  REQUIRE(net.ok());
  REQUIRE((*net)->Initialize(graph::Xavier()).ok());
  fs::create_directories(path.parent_path());
  REQUIRE(aot::ExportArtifact(**net, shape, path.string(), {.model_name = model}).ok());
}

// The repository, built once:
//   lenet/1 (seed 1, batch 4), lenet/2 (seed 2, batch 2), lenet/config.json
//   resnet/1 (resnet18_v1 at 3x32x32: 45 MB of weights, for the memory check)
//   broken/1/model.kiln (not an artifact), badconfig (unknown key), escape/1/model.kiln (a
//   symlink to an artifact outside the repository), empty/ (no versions)
fs::path Repository() {
  static fs::path root = [] {
    fs::path base = TmpPath("repo_test");
    fs::remove_all(base);
    fs::path r = base / "models";
    Export("lenet", 1, {4, 1, 28, 28}, r / "lenet" / "1" / "model.kiln");
    Export("lenet", 2, {2, 1, 28, 28}, r / "lenet" / "2" / "model.kiln");
    WriteFile(r / "lenet" / "config.json", R"({"max_queue_delay_us": 500, "instances": 1, "max_queue_size": 64})");
    Export("resnet18_v1", 3, {1, 3, 32, 32}, r / "resnet" / "1" / "model.kiln");
    WriteFile(r / "broken" / "1" / "model.kiln", "this is not an artifact");
    fs::create_directories(r / "badconfig" / "1");
    fs::copy_file(r / "lenet" / "1" / "model.kiln", r / "badconfig" / "1" / "model.kiln");
    WriteFile(r / "badconfig" / "config.json", R"({"max_batch_sise": 2})");
    fs::copy_file(r / "lenet" / "1" / "model.kiln", base / "outside.kiln");
    fs::create_directories(r / "escape" / "1");
    fs::create_symlink(base / "outside.kiln", r / "escape" / "1" / "model.kiln");
    fs::create_directories(r / "empty");
    return r;
  }();
  return root;
}

// The logits a session of `path`'s artifact gives for `images`.
std::vector<float> Direct(const fs::path& path, const std::vector<float>& images) {
  auto m = runtime::Model::Load(path.string());
  REQUIRE(m.ok());
  auto s = (*m)->NewSession();
  REQUIRE(s.ok());
  Tensor in(DType::kF32, (*m)->inputs()[0].shape), out;
  std::memcpy(in.data(), images.data(), images.size() * 4);
  REQUIRE((*s)->Run({&in}, {&out}).ok());
  return std::vector<float>(out.f32(), out.f32() + images.size() / 784 * 10);
}

struct RepoServer {
  std::unique_ptr<InferenceServer> server;
  std::unique_ptr<httplib::Client> client;
  explicit RepoServer(ServerOptions options = {}) {
    options.port = 0;
    auto s = InferenceServer::CreateFromRepository(Repository().string(), options);
    REQUIRE(s.ok());
    server = std::move(*s);
    REQUIRE(server->Start().ok());
    client = std::make_unique<httplib::Client>("127.0.0.1", server->port());
    client->set_read_timeout(60, 0);
  }
  json Index() {
    auto res = client->Post("/v2/repository/index", "", "application/json");
    REQUIRE(res);
    REQUIRE(res->status == 200);
    return json::parse(res->body);
  }
  // The index row of name/version.
  json Row(const std::string& name, const std::string& version) {
    for (const json& r : Index()) {
      if (r["name"] == name && r.value("version", "") == version) return r;
    }
    FAIL("no index row " << name << "/" << version);
    return {};
  }
  std::vector<float> Infer(const std::string& route, const std::vector<float>& images, int* status = nullptr) {
    auto res = client->Post(route.c_str(), InferBody(images).dump(), "application/json");
    REQUIRE(res);
    if (status) *status = res->status;
    if (res->status != 200) return {};
    return json::parse(res->body)["outputs"][0]["data"].get<std::vector<float>>();
  }
};

TEST_CASE("repository: models and versions served side by side, bad ones unavailable with reasons",
          "[serve][repository]") {
  RepoServer r;
  CHECK(r.Row("lenet", "1")["state"] == "READY");
  CHECK(r.Row("lenet", "2")["state"] == "READY");
  CHECK(r.Row("resnet", "1")["state"] == "READY");
  json broken = r.Row("broken", "1");
  CHECK(broken["state"] == "UNAVAILABLE");
  CHECK_THAT(broken["reason"].get<std::string>(), Catch::Contains("artifact"));
  json escape = r.Row("escape", "1");
  CHECK(escape["state"] == "UNAVAILABLE");
  CHECK_THAT(escape["reason"].get<std::string>(), Catch::Contains("outside the repository"));
  json bad = r.Row("badconfig", "");
  CHECK(bad["state"] == "UNAVAILABLE");
  CHECK_THAT(bad["reason"].get<std::string>(), Catch::Contains("unknown key \"max_batch_sise\""));
  CHECK_THAT(r.Row("empty", "")["reason"].get<std::string>(), Catch::Contains("no version folders"));

  auto images = RandomImages(2, 40);
  fs::path root = Repository();
  // No version: the highest ready one (2); each version its own weights.
  CHECK(r.Infer("/v2/models/lenet/infer", images) == Direct(root / "lenet/2/model.kiln", images));
  CHECK(r.Infer("/v2/models/lenet/versions/2/infer", images) == Direct(root / "lenet/2/model.kiln", images));
  CHECK(r.Infer("/v2/models/lenet/versions/1/infer", images) == Direct(root / "lenet/1/model.kiln", images));
  CHECK(Direct(root / "lenet/1/model.kiln", images) != Direct(root / "lenet/2/model.kiln", images));
  // Version 2 was compiled for batch 2: three images are too many for it, not for version 1.
  int status = 0;
  r.Infer("/v2/models/lenet/versions/2/infer", RandomImages(3, 41), &status);
  CHECK(status == 400);
  r.Infer("/v2/models/lenet/versions/1/infer", RandomImages(3, 41), &status);
  CHECK(status == 200);
  // Metadata lists the ready versions; config.json reached the batcher.
  auto meta = r.client->Get("/v2/models/lenet");
  REQUIRE(meta);
  json m = json::parse(meta->body);
  CHECK(m["versions"] == json({"1", "2"}));
  CHECK(m["parameters"]["batch_delay_us"] == 500);
  // Readiness per model and version.
  CHECK(r.client->Get("/v2/models/lenet/versions/1/ready")->status == 200);
  auto not_ready = r.client->Get("/v2/models/broken/ready");
  REQUIRE(not_ready);
  CHECK(not_ready->status == 503);
  CHECK(json::parse(not_ready->body)["ready"] == false);
  CHECK(r.client->Get("/v2/models/lenet/versions/7/ready")->status == 404);
  CHECK(r.client->Get("/v2/models/nosuch/ready")->status == 404);
  r.Infer("/v2/models/broken/infer", images, &status);
  CHECK(status == 503);
  // Server metadata names the extension; metrics carry both versions.
  CHECK(json::parse(r.client->Get("/v2")->body)["extensions"] == json({"binary_tensor_data", "model_repository"}));
  std::string metrics = r.server->MetricsText();
  CHECK_THAT(metrics, Catch::Contains("kiln_inference_request_success{model=\"lenet\",version=\"1\"} 2\n"));
  CHECK_THAT(metrics, Catch::Contains("kiln_inference_request_success{model=\"lenet\",version=\"2\"} 2\n"));
  // Each family once (Prometheus requires it), samples for every version.
  size_t first = metrics.find("# TYPE kiln_inference_count counter");
  CHECK(first != std::string::npos);
  CHECK(metrics.find("# TYPE kiln_inference_count counter", first + 1) == std::string::npos);
}

TEST_CASE("repository: unload frees the model, load brings it back, names are checked", "[serve][repository]") {
  RepoServer r;
  std::vector<float> image(3 * 32 * 32, 0.25f);
  auto resnet_body = [&] {
    return json{{"inputs", {{{"name", "data"}, {"shape", {1, 3, 32, 32}}, {"datatype", "FP32"}, {"data", image}}}}}
        .dump();
  };
  auto res = r.client->Post("/v2/models/resnet/infer", resnet_body(), "application/json");
  REQUIRE(res);
  REQUIRE(res->status == 200);
  std::vector<float> before_unload = json::parse(res->body)["outputs"][0]["data"].get<std::vector<float>>();
  int64_t loaded = RssBytes();
  auto unload = r.client->Post("/v2/repository/models/resnet/unload", "", "application/json");
  REQUIRE(unload);
  CHECK(unload->status == 200);
  int64_t unloaded = RssBytes();
  // resnet18_v1 holds 46.8 MB of f32 weights (11.7 M parameters), mapped from the artifact and
  // prepacked into blocked layouts per session: at least 40 MB must go back.
  WARN("RSS with resnet loaded " << loaded / 1e6 << " MB, after unload " << unloaded / 1e6 << " MB");
  if (!kSanitized) CHECK(loaded - unloaded > (int64_t{40} << 20));
  CHECK(r.Row("resnet", "")["reason"] == "unloaded");
  res = r.client->Post("/v2/models/resnet/infer", resnet_body(), "application/json");
  REQUIRE(res);
  CHECK(res->status == 503);
  CHECK_THAT(json::parse(res->body)["error"].get<std::string>(), Catch::Contains("unloaded"));
  // The others kept serving.
  auto images = RandomImages(1, 5);
  CHECK(r.Infer("/v2/models/lenet/infer", images) == Direct(Repository() / "lenet/2/model.kiln", images));
  // Load again: the same answers.
  auto load = r.client->Post("/v2/repository/models/resnet/load", "", "application/json");
  REQUIRE(load);
  CHECK(load->status == 200);
  res = r.client->Post("/v2/models/resnet/infer", resnet_body(), "application/json");
  REQUIRE(res);
  REQUIRE(res->status == 200);
  CHECK(json::parse(res->body)["outputs"][0]["data"].get<std::vector<float>>() == before_unload);
  // Errors: unknown, unsafe and unloadable names; unloading what is not loaded.
  auto nosuch = r.client->Post("/v2/repository/models/nosuch/load", "", "application/json");
  REQUIRE(nosuch);
  CHECK(nosuch->status == 404);
  for (const char* name : {"..", ".", "a%2F..", "x$y"}) {
    auto bad = r.client->Post((std::string("/v2/repository/models/") + name + "/load").c_str(), "", "application/json");
    REQUIRE(bad);
    INFO(name << " -> " << bad->body);
    CHECK((bad->status == 400 || bad->status == 404));
  }
  CHECK(r.server->LoadModel("..").code() == StatusCode::kInvalidArgument);
  CHECK(r.server->LoadModel("../models/lenet").code() == StatusCode::kInvalidArgument);
  auto broken = r.client->Post("/v2/repository/models/broken/load", "", "application/json");
  REQUIRE(broken);
  CHECK(broken->status == 400);
  CHECK_THAT(json::parse(broken->body)["error"].get<std::string>(), Catch::Contains("no version could be loaded"));
  auto twice = r.client->Post("/v2/repository/models/empty/unload", "", "application/json");
  REQUIRE(twice);
  CHECK(twice->status == 404);
  // GET on the repository routes is refused.
  CHECK(r.client->Get("/v2/repository/index")->status == 405);
}

TEST_CASE("repository: the admin token guards load and unload while inference is open", "[serve][repository][auth]") {
  RepoServer r({.admin_token = "adm1n"});
  auto images = RandomImages(1, 9);
  CHECK(r.Infer("/v2/models/lenet/infer", images) == Direct(Repository() / "lenet/2/model.kiln", images));
  for (const char* path : {"/v2/repository/index", "/v2/repository/models/lenet/unload", "/v2/repository/models/lenet/load"}) {
    auto res = r.client->Post(path, "", "application/json");
    REQUIRE(res);
    INFO(path);
    CHECK(res->status == 401);
    auto wrong = r.client->Post(path, {{"Authorization", "Bearer adm1N"}}, "", "application/json");
    REQUIRE(wrong);
    CHECK(wrong->status == 401);
  }
  auto load = r.client->Post("/v2/repository/models/lenet/load", {{"Authorization", "Bearer adm1n"}}, "", "application/json");
  REQUIRE(load);
  CHECK(load->status == 200);
  CHECK(r.Infer("/v2/models/lenet/infer", images) == Direct(Repository() / "lenet/2/model.kiln", images));
}

TEST_CASE("repository: an artifact server has no load or unload", "[serve][repository]") {
  Running r;
  auto res = r.client->Post("/v2/repository/models/lenet/load", "", "application/json");
  REQUIRE(res);
  CHECK(res->status == 400);
  CHECK_THAT(json::parse(res->body)["error"].get<std::string>(), Catch::Contains("--model-repository"));
  auto index = r.client->Post("/v2/repository/index", "", "application/json");
  REQUIRE(index);
  CHECK(json::parse(index->body) == json::parse(R"([{"name":"lenet","version":"1","state":"READY"}])"));
  CHECK(InferenceServer::CreateFromRepository(TmpPath("no_such_repo"), {}).status().code() == StatusCode::kNotFound);
}

}  // namespace
}  // namespace kiln::serve
