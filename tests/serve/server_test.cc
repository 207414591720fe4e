// The inference server over real HTTP on loopback (in-process, ephemeral port): every
// endpoint, bad requests (malformed JSON, wrong shapes and datatypes, oversized bodies),
// concurrent clients with dynamic batching, metrics, and a graceful shutdown that finishes
// in-flight requests. The server must keep answering correctly after every bad request.
#include <catch2/catch.hpp>

#include <httplib.h>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <nlohmann/json.hpp>
#include <random>
#include <thread>

#include "tests/serve/serve_test_util.h"

namespace kiln::serve {
namespace {

using namespace kiln::serve::testing;

TEST_CASE("server: health, server and model metadata", "[serve]") {
  Running r;
  auto live = r.client->Get("/v2/health/live");
  REQUIRE(live);
  CHECK(live->status == 200);
  CHECK(json::parse(live->body)["live"] == true);
  auto ready = r.client->Get("/v2/health/ready");
  REQUIRE(ready);
  CHECK(ready->status == 200);
  CHECK(json::parse(ready->body)["ready"] == true);
  auto server = r.client->Get("/v2");
  REQUIRE(server);
  CHECK(json::parse(server->body)["name"] == "kiln");

  auto meta = r.client->Get("/v2/models/lenet");
  REQUIRE(meta);
  REQUIRE(meta->status == 200);
  json m = json::parse(meta->body);
  CHECK(m["name"] == "lenet");
  CHECK(m["platform"] == "kiln");
  REQUIRE(m["inputs"].size() == 1);
  CHECK(m["inputs"][0] == json({{"name", "data"}, {"datatype", "FP32"}, {"shape", {-1, 1, 28, 28}}}));
  CHECK(m["outputs"][0] == json({{"name", "output"}, {"datatype", "FP32"}, {"shape", {-1, 10}}}));
  CHECK(m["parameters"]["max_batch_size"] == kBatch);

  auto model_ready = r.client->Get("/v2/models/lenet/ready");
  REQUIRE(model_ready);
  CHECK(json::parse(model_ready->body)["ready"] == true);

  auto unknown = r.client->Get("/v2/models/resnet");
  REQUIRE(unknown);
  CHECK(unknown->status == 404);
  CHECK_THAT(json::parse(unknown->body)["error"].get<std::string>(), Catch::Contains("resnet"));
  auto nowhere = r.client->Get("/v3/nothing");
  REQUIRE(nowhere);
  CHECK(nowhere->status == 404);
  CHECK_THAT(json::parse(nowhere->body)["error"].get<std::string>(), Catch::Contains("/v3/nothing"));
}

TEST_CASE("server: inference gives the model's outputs", "[serve]") {
  Running r({.batch_delay_us = 0});
  SECTION("one sample, id echoed") {
    auto images = RandomImages(1, 1);
    auto res = r.Post(InferBody(images, "req-1").dump());
    CheckLogits(res, images);
    json j = json::parse(res->body);
    CHECK(j["id"] == "req-1");
    CHECK(j["model_name"] == "lenet");
  }
  SECTION("a full batch of 4 in one request") {
    auto images = RandomImages(4, 2);
    CheckLogits(r.Post(InferBody(images).dump()), images);
  }
  SECTION("nested data is accepted") {
    auto images = RandomImages(1, 3);
    json body = InferBody(images);
    json rows = json::array();
    for (int h = 0; h < 28; ++h) {
      rows.push_back(std::vector<float>(images.begin() + h * 28, images.begin() + (h + 1) * 28));
    }
    body["inputs"][0]["data"] = json::array({json::array({rows})});
    CheckLogits(r.Post(body.dump()), images);
  }
  SECTION("requested outputs") {
    auto images = RandomImages(2, 4);
    json body = InferBody(images);
    body["outputs"] = {{{"name", "output"}}};
    CheckLogits(r.Post(body.dump()), images);
    body["outputs"] = {{{"name", "probabilities"}}};
    auto bad = r.Post(body.dump());
    REQUIRE(bad);
    CHECK(bad->status == 400);
    CHECK_THAT(json::parse(bad->body)["error"].get<std::string>(), Catch::Contains("probabilities"));
  }
}

TEST_CASE("server: the binary tensor data extension gives the same logits as JSON", "[serve][binary_data]") {
  Running r;
  auto images = RandomImages(2, 61);
  json header = {{"inputs", {{{"name", "data"}, {"shape", {2, 1, 28, 28}}, {"datatype", "FP32"},
                              {"parameters", {{"binary_data_size", images.size() * 4}}}}}},
                 {"outputs", {{{"name", "output"}, {"parameters", {{"binary_data", true}}}}}}};
  std::string text = header.dump();
  std::string body = text + std::string(reinterpret_cast<const char*>(images.data()), images.size() * 4);
  httplib::Headers headers = {{"Inference-Header-Content-Length", std::to_string(text.size())}};
  auto res = r.client->Post("/v2/models/lenet/infer", headers, body, "application/octet-stream");
  REQUIRE(res);
  INFO(res->body.substr(0, 200));
  REQUIRE(res->status == 200);
  size_t json_bytes = std::stoul(res->get_header_value("Inference-Header-Content-Length"));
  json j = json::parse(res->body.substr(0, json_bytes));
  CHECK(j["outputs"][0]["shape"] == json({2, 10}));
  CHECK(j["outputs"][0]["parameters"]["binary_data_size"] == 80);
  std::vector<float> got(20);
  REQUIRE(res->body.size() == json_bytes + 80);
  std::memcpy(got.data(), res->body.data() + json_bytes, 80);
  CHECK(got == Expected(images));
  // UINT8 pixels convert to the model's FP32.
  std::string pixels(784, '\x07');
  json h8 = {{"inputs", {{{"name", "data"}, {"shape", {1, 1, 28, 28}}, {"datatype", "UINT8"},
                          {"parameters", {{"binary_data_size", 784}}}}}}};
  std::string t8 = h8.dump();
  auto r8 = r.client->Post("/v2/models/lenet/infer", {{"Inference-Header-Content-Length", std::to_string(t8.size())}},
                           t8 + pixels, "application/octet-stream");
  REQUIRE(r8);
  CHECK(r8->status == 200);
  CHECK(json::parse(r8->body)["outputs"][0]["data"].get<std::vector<float>>() == Expected(std::vector<float>(784, 7.f)));
  // A header length that is not a number, or past the body.
  auto bad = r.client->Post("/v2/models/lenet/infer", {{"Inference-Header-Content-Length", "12x"}}, body,
                            "application/octet-stream");
  REQUIRE(bad);
  CHECK(bad->status == 400);
  auto past = r.client->Post("/v2/models/lenet/infer", {{"Inference-Header-Content-Length", "999999999"}}, body,
                             "application/octet-stream");
  REQUIRE(past);
  CHECK(past->status == 400);
  CheckStillServing(r);
}

TEST_CASE("server: bad requests get 400 with a JSON error naming the problem", "[serve][errors]") {
  Running r({.max_body_bytes = 40 * 1024});
  auto images = RandomImages(1, 5);
  auto body = InferBody(images);
  auto expect_400 = [&](const std::string& text, const std::string& needle) {
    auto res = r.Post(text);
    REQUIRE(res);
    INFO(text.substr(0, 200) << " -> " << res->body);
    CHECK(res->status == 400);
    json j = json::parse(res->body, nullptr, false);
    REQUIRE(j.is_object());
    CHECK_THAT(j["error"].get<std::string>(), Catch::Contains(needle));
  };
  expect_400("{\"inputs\": [", "malformed JSON");
  expect_400("not json at all", "malformed JSON");
  expect_400("", "malformed JSON");
  expect_400("[1, 2, 3]", "JSON object");
  expect_400("{}", "\"inputs\"");
  expect_400("{\"inputs\": []}", "\"inputs\"");
  expect_400("{\"inputs\": [42]}", "object");
  {
    json b = body;
    b["inputs"][0]["name"] = "image";
    expect_400(b.dump(), "unknown input 'image'");
  }
  {
    json b = body;
    b["inputs"][0]["datatype"] = "INT32";  // converted to FP32, but these values are not integers
    expect_400(b.dump(), "INT32 data must be integers, got a fraction at index 0");
    b["inputs"][0]["datatype"] = "BYTES";
    expect_400(b.dump(), "datatype BYTES but the model expects FP32 (it converts FP64, FP16, BF16 and the integer");
    b["inputs"][0].erase("datatype");
    expect_400(b.dump(), "datatype");
  }
  {
    json b = body;
    b["inputs"][0]["shape"] = {1, 28, 28};
    expect_400(b.dump(), "shape [1,28,28] but the model expects [N,1,28,28] with 1 <= N <= 4");
    b["inputs"][0]["shape"] = {1, 1, 28, 27};
    expect_400(b.dump(), "shape [1,1,28,27]");
    b["inputs"][0]["shape"] = {5, 1, 28, 28};  // more than the batch
    expect_400(b.dump(), "1 <= N <= 4");
    b["inputs"][0]["shape"] = {0, 1, 28, 28};
    expect_400(b.dump(), "shape [0,1,28,28]");
    b["inputs"][0]["shape"] = "1,1,28,28";
    expect_400(b.dump(), "\"shape\"");
  }
  {
    json b = body;
    b["inputs"][0]["shape"] = {2, 1, 28, 28};  // data holds one image
    expect_400(b.dump(), "needs 1568 values, \"data\" has 784");
    b = body;
    b["inputs"][0]["data"] = std::vector<float>(785, 0.f);
    expect_400(b.dump(), "needs 784 values, \"data\" has 785");
    b["inputs"][0]["data"][3] = "x";
    expect_400(b.dump(), "data must be numbers (at index 3), got a string");
    b = body;
    b["inputs"][0].erase("data");
    expect_400(b.dump(), "no \"data\"");
    b = body;
    b["inputs"].push_back(b["inputs"][0]);
    expect_400(b.dump(), "given twice");
  }
  SECTION("oversized body: 413 with a JSON error") {
    std::string big = InferBody(RandomImages(4, 6)).dump();  // ~4 x 784 floats, > 40 KiB
    REQUIRE(big.size() > 40 * 1024);
    auto res = r.Post(big);
    REQUIRE(res);
    CHECK(res->status == 413);
    CHECK_THAT(json::parse(res->body)["error"].get<std::string>(), Catch::Contains("40960 bytes"));
  }
  SECTION("unknown model on infer") {
    auto res = r.Post(body.dump(), "/v2/models/other/infer");
    REQUIRE(res);
    CHECK(res->status == 404);
  }
  CheckStillServing(r);
  // Failures are counted.
  std::string metrics = r.server->MetricsText();
  CHECK_THAT(metrics, Catch::Contains("kiln_inference_request_failure{model=\"lenet\",version=\"1\"}"));
  CHECK_THAT(metrics, !Catch::Contains("kiln_inference_request_failure{model=\"lenet\",version=\"1\"} 0\n"));
}

TEST_CASE("server: concurrent clients are batched and each gets its own rows", "[serve][batching]") {
  // A long delay so that concurrent requests meet in one batch.
  Running r({.batch_delay_us = 20000, .http_threads = 16});
  constexpr int kClients = 12, kRequests = 5;
  std::atomic<int> ok{0}, wrong{0};
  std::vector<std::thread> threads;
  for (int c = 0; c < kClients; ++c) {
    threads.emplace_back([&, c] {
      httplib::Client client("127.0.0.1", r.server->port());
      client.set_read_timeout(30, 0);
      for (int k = 0; k < kRequests; ++k) {
        int n = 1 + (c + k) % 2;  // one or two images per request
        auto images = RandomImages(n, static_cast<uint32_t>(1000 + c * 10 + k));
        auto res = client.Post("/v2/models/lenet/infer", InferBody(images).dump(), "application/json");
        if (!res || res->status != 200) {
          wrong++;
          continue;
        }
        json j = json::parse(res->body);
        // Each request's rows must equal a direct run of its images alone.
        auto s = LeNet()->NewSession();
        Tensor in(DType::kF32, {kBatch, 1, 28, 28}), out;
        std::memcpy(in.data(), images.data(), images.size() * 4);
        bool same = s.ok() && (*s)->Run({&in}, {&out}).ok() && j["outputs"][0]["data"].size() == size_t(n) * 10;
        for (int i = 0; same && i < n * 10; ++i) same = j["outputs"][0]["data"][size_t(i)].get<float>() == out.f32()[i];
        (same ? ok : wrong)++;
      }
    });
  }
  for (auto& t : threads) t.join();
  CHECK(wrong == 0);
  CHECK(ok == kClients * kRequests);
  std::string metrics = r.server->MetricsText();
  INFO(metrics);
  const std::string labels = "{model=\"lenet\",version=\"1\"}";
  CHECK_THAT(metrics, Catch::Contains("kiln_inference_request_success" + labels + " 60\n"));
  CHECK_THAT(metrics, Catch::Contains("kiln_inference_request_failure" + labels + " 0\n"));
  // Samples: 1 or 2 per request, alternating per client: 12 clients x (3 + 2 x 2 or 2 + 3 x 2).
  int samples = 0;
  for (int c = 0; c < kClients; ++c) {
    for (int k = 0; k < kRequests; ++k) samples += 1 + (c + k) % 2;
  }
  CHECK_THAT(metrics, Catch::Contains("kiln_inference_count" + labels + " " + std::to_string(samples) + "\n"));
  // Fewer runs than requests: requests were batched together.
  std::string exec = "kiln_inference_exec_count" + labels + " ";
  auto runs_at = metrics.find(exec);
  REQUIRE(runs_at != std::string::npos);
  int runs = std::atoi(metrics.c_str() + runs_at + exec.size());
  CHECK(runs < kClients * kRequests);
  CHECK_THAT(metrics, Catch::Contains("kiln_batch_size_bucket{model=\"lenet\",version=\"1\",le=\"+Inf\"} " +
                                      std::to_string(runs)));
  CHECK_THAT(metrics, Catch::Contains("kiln_request_latency_seconds_count" + labels + " 60"));
  // Every duration family is there and the compute time is not zero.
  for (const char* family : {"request", "queue", "compute_input", "compute_infer", "compute_output"}) {
    CHECK_THAT(metrics, Catch::Contains(std::string("kiln_inference_") + family + "_duration_us" + labels));
  }
  CHECK_THAT(metrics, !Catch::Contains("kiln_inference_compute_infer_duration_us" + labels + " 0\n"));
  auto scraped = r.client->Get("/metrics");
  REQUIRE(scraped);
  CHECK(scraped->status == 200);
  CHECK_THAT(scraped->body, Catch::Contains("# TYPE kiln_request_latency_seconds histogram"));
  CheckStillServing(r);
}

TEST_CASE("server: shutdown finishes in-flight requests", "[serve][shutdown]") {
  Running r({.batch_delay_us = 300000});  // requests wait 0.3 s for their batch
  int port = r.server->port();
  std::atomic<int> ok{0};
  std::vector<std::thread> threads;
  for (int c = 0; c < 3; ++c) {
    threads.emplace_back([&, c] {
      httplib::Client client("127.0.0.1", port);
      client.set_read_timeout(30, 0);
      auto images = RandomImages(1, static_cast<uint32_t>(50 + c));
      auto res = client.Post("/v2/models/lenet/infer", InferBody(images).dump(), "application/json");
      if (res && res->status == 200 && json::parse(res->body)["outputs"][0]["data"].size() == 10) ok++;
    });
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(100));  // the requests are queued now
  r.server->Shutdown();
  for (auto& t : threads) t.join();
  CHECK(ok == 3);
  httplib::Client late("127.0.0.1", port);
  late.set_connection_timeout(1, 0);
  auto res = late.Get("/v2/health/live");
  CHECK(!res);  // nobody listens any more
}

TEST_CASE("server: options are checked against the artifact", "[serve]") {
  CHECK(InferenceServer::Create(LeNet(), {.max_batch_size = 8}).status().code() == StatusCode::kInvalidArgument);
  CHECK_THAT(InferenceServer::Create(LeNet(), {.max_batch_size = 8}).status().message(), Catch::Contains("[1, 4]"));
  CHECK(InferenceServer::Create(LeNet(), {.max_batch_size = 2}).ok());
}

}  // namespace
}  // namespace kiln::serve

namespace kiln::serve::testing {
namespace {

TEST_CASE("server: metrics on a port of their own, open while the main port needs a token", "[serve][metrics]") {
  ServerOptions options;
  options.metrics_port = 0;
  options.auth_token = "metrics-test-token";
  Running r(options);
  REQUIRE(r.server->metrics_port() > 0);
  CHECK(r.server->metrics_port() != r.server->port());
  httplib::Headers token = {{"Authorization", "Bearer metrics-test-token"}};
  auto images = RandomImages(1, 71);
  CheckLogits(r.client->Post("/v2/models/lenet/infer", token, InferBody(images).dump(), "application/json"), images);
  httplib::Client scraper("127.0.0.1", r.server->metrics_port());
  auto m = scraper.Get("/metrics");
  REQUIRE(m);
  CHECK(m->status == 200);
  CHECK_THAT(m->get_header_value("Content-Type"), Catch::Contains("text/plain"));
  CHECK_THAT(m->body, Catch::Contains("kiln_inference_request_success{model=\"lenet\",version=\"1\"} 1\n"));
  // Only /metrics there: no inference, no metadata.
  auto other = scraper.Get("/v2/models/lenet");
  REQUIRE(other);
  CHECK(other->status == 404);
  auto body = scraper.Post("/v2/models/lenet/infer", InferBody(images).dump(), "application/json");
  REQUIRE(body);
  CHECK(body->status == 413);  // the metrics port reads no bodies past 1 KiB
  // The main port's /metrics keeps its token.
  auto guarded = r.client->Get("/metrics");
  REQUIRE(guarded);
  CHECK(guarded->status == 401);
}

}  // namespace
}  // namespace kiln::serve::testing
