// KServe v2 over gRPC against the in-process server on loopback: the same logits as a direct
// session run (typed and raw contents, converted datatypes), the same errors as HTTP mapped
// to gRPC codes, the message limit, tokens, an exclusive port, and HTTP and gRPC together.
#include <grpcpp/grpcpp.h>

#include <cmath>
#include <thread>

#include "serve/proto/grpc_predict_v2.grpc.pb.h"
#include "tests/serve/serve_test_util.h"

namespace kiln::serve::testing {
namespace {

namespace pb = ::inference;

struct GrpcRunning {
  std::unique_ptr<InferenceServer> server;
  std::unique_ptr<pb::GRPCInferenceService::Stub> stub;
  std::unique_ptr<httplib::Client> http;
  explicit GrpcRunning(ServerOptions options = {}) {
    options.port = 0;
    options.grpc_port = 0;
    auto s = InferenceServer::Create(LeNet(), options);
    REQUIRE(s.ok());
    server = std::move(*s);
    Status st = server->Start();
    INFO(st.ToString());
    REQUIRE(st.ok());
    REQUIRE(server->grpc_port() > 0);
    auto channel = grpc::CreateChannel("127.0.0.1:" + std::to_string(server->grpc_port()),
                                       grpc::InsecureChannelCredentials());
    stub = pb::GRPCInferenceService::NewStub(channel);
    http = std::make_unique<httplib::Client>("127.0.0.1", server->port());
  }
};

pb::ModelInferRequest Fp32Request(const std::vector<float>& images, bool raw) {
  pb::ModelInferRequest req;
  req.set_model_name("lenet");
  req.set_id("req-1");
  auto* in = req.add_inputs();
  in->set_name("data");
  in->set_datatype("FP32");
  for (int64_t d : {static_cast<int64_t>(images.size() / 784), int64_t{1}, int64_t{28}, int64_t{28}}) in->add_shape(d);
  if (raw) {
    req.add_raw_input_contents(std::string(reinterpret_cast<const char*>(images.data()), images.size() * 4));
  } else {
    for (float v : images) in->mutable_contents()->add_fp32_contents(v);
  }
  return req;
}

std::vector<float> Logits(const pb::ModelInferResponse& resp) {
  REQUIRE(resp.outputs_size() == 1);
  REQUIRE(resp.raw_output_contents_size() == 1);
  const std::string& bytes = resp.raw_output_contents(0);
  std::vector<float> out(bytes.size() / 4);
  std::memcpy(out.data(), bytes.data(), bytes.size());
  return out;
}

grpc::Status Infer(GrpcRunning& r, const pb::ModelInferRequest& req, pb::ModelInferResponse* resp,
                   const std::string& token = "") {
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
  if (!token.empty()) ctx.AddMetadata("authorization", "Bearer " + token);
  return r.stub->ModelInfer(&ctx, req, resp);
}

void CheckInferError(GrpcRunning& r, const pb::ModelInferRequest& req, grpc::StatusCode code, const std::string& what) {
  pb::ModelInferResponse resp;
  grpc::Status s = Infer(r, req, &resp);
  INFO(s.error_message());
  CHECK(s.error_code() == code);
  CHECK_THAT(s.error_message(), Catch::Contains(what));
}

TEST_CASE("grpc: health and metadata", "[serve][grpc]") {
  GrpcRunning r;
  {
    grpc::ClientContext ctx;
    pb::ServerLiveResponse live;
    REQUIRE(r.stub->ServerLive(&ctx, {}, &live).ok());
    CHECK(live.live());
  }
  {
    grpc::ClientContext ctx;
    pb::ServerReadyResponse ready;
    REQUIRE(r.stub->ServerReady(&ctx, {}, &ready).ok());
    CHECK(ready.ready());
  }
  {
    grpc::ClientContext ctx;
    pb::ServerMetadataResponse meta;
    REQUIRE(r.stub->ServerMetadata(&ctx, {}, &meta).ok());
    CHECK(meta.name() == "kiln");
    CHECK(meta.extensions_size() >= 1);
  }
  {
    grpc::ClientContext ctx;
    pb::ModelMetadataRequest req;
    req.set_name("lenet");
    pb::ModelMetadataResponse meta;
    REQUIRE(r.stub->ModelMetadata(&ctx, req, &meta).ok());
    CHECK(meta.platform() == "kiln");
    REQUIRE(meta.versions_size() == 1);
    CHECK(meta.versions(0) == "1");
    REQUIRE(meta.inputs_size() == 1);
    CHECK(meta.inputs(0).name() == "data");
    CHECK(meta.inputs(0).datatype() == "FP32");
    CHECK(std::vector<int64_t>(meta.inputs(0).shape().begin(), meta.inputs(0).shape().end()) ==
          std::vector<int64_t>{-1, 1, 28, 28});
    CHECK(meta.outputs(0).shape(1) == 10);
  }
  {
    grpc::ClientContext ctx;
    pb::ModelReadyRequest req;
    req.set_name("nosuch");
    pb::ModelReadyResponse ready;
    grpc::Status s = r.stub->ModelReady(&ctx, req, &ready);
    CHECK(s.error_code() == grpc::StatusCode::NOT_FOUND);
    CHECK_THAT(s.error_message(), Catch::Contains("unknown model 'nosuch'"));
  }
}

TEST_CASE("grpc: ModelInfer gives the model's logits from typed and raw contents", "[serve][grpc]") {
  GrpcRunning r;
  auto images = RandomImages(3, 41);
  std::vector<float> want = Expected(images);
  for (bool raw : {false, true}) {
    INFO((raw ? "raw_input_contents" : "fp32_contents"));
    pb::ModelInferResponse resp;
    grpc::Status s = Infer(r, Fp32Request(images, raw), &resp);
    INFO(s.error_message());
    REQUIRE(s.ok());
    CHECK(resp.model_name() == "lenet");
    CHECK(resp.model_version() == "1");
    CHECK(resp.id() == "req-1");
    CHECK(resp.outputs(0).name() == "output");
    CHECK(resp.outputs(0).datatype() == "FP32");
    CHECK(std::vector<int64_t>(resp.outputs(0).shape().begin(), resp.outputs(0).shape().end()) ==
          std::vector<int64_t>{3, 10});
    CHECK(Logits(resp) == want);  // bit for bit: raw floats both ways
  }
  SECTION("FP64 typed contents and UINT8 raw contents are converted") {
    pb::ModelInferRequest req = Fp32Request(images, false);
    auto* in = req.mutable_inputs(0);
    in->set_datatype("FP64");
    in->mutable_contents()->clear_fp32_contents();
    for (float v : images) in->mutable_contents()->add_fp64_contents(v);
    pb::ModelInferResponse resp;
    REQUIRE(Infer(r, req, &resp).ok());
    CHECK(Logits(resp) == want);

    std::vector<uint8_t> pixels(784);
    std::vector<float> as_float(784);
    for (size_t i = 0; i < pixels.size(); ++i) as_float[i] = pixels[i] = static_cast<uint8_t>((i * 7) % 256);
    pb::ModelInferRequest u8 = Fp32Request(as_float, true);
    u8.mutable_inputs(0)->set_datatype("UINT8");
    u8.set_raw_input_contents(0, std::string(pixels.begin(), pixels.end()));
    REQUIRE(Infer(r, u8, &resp).ok());
    CHECK(Logits(resp) == Expected(as_float));
  }
}

TEST_CASE("grpc: bad requests get the HTTP path's messages as gRPC codes", "[serve][grpc][errors]") {
  GrpcRunning r;
  auto images = RandomImages(1, 43);
  pb::ModelInferRequest ok = Fp32Request(images, false);

  pb::ModelInferRequest req = ok;
  req.set_model_name("nosuch");
  CheckInferError(r, req, grpc::StatusCode::NOT_FOUND, "unknown model 'nosuch'");

  req = ok;
  req.mutable_inputs(0)->set_shape(2, 27);
  CheckInferError(r, req, grpc::StatusCode::INVALID_ARGUMENT, "input 'data': shape [1,1,27,28] but the model expects");

  req = ok;
  req.mutable_inputs(0)->set_datatype("FP64");
  req.mutable_inputs(0)->mutable_contents()->clear_fp32_contents();
  for (size_t i = 0; i < images.size(); ++i) req.mutable_inputs(0)->mutable_contents()->add_fp64_contents(i == 17 ? 1e300 : 0.5);
  CheckInferError(r, req, grpc::StatusCode::INVALID_ARGUMENT, "value 1e+300 at index 17 is out of range for FP32");

  req = ok;
  req.mutable_inputs(0)->mutable_contents()->set_fp32_contents(5, std::nanf(""));
  CheckInferError(r, req, grpc::StatusCode::INVALID_ARGUMENT, "at index 5 is not finite");

  req = ok;
  req.mutable_inputs(0)->set_datatype("INT32");
  CheckInferError(r, req, grpc::StatusCode::INVALID_ARGUMENT, "datatype INT32 but the values are in fp32_contents");

  req = ok;
  req.mutable_inputs(0)->mutable_contents()->mutable_fp32_contents()->RemoveLast();
  CheckInferError(r, req, grpc::StatusCode::INVALID_ARGUMENT, "needs 784 values, the contents have 783");

  req = Fp32Request(images, true);
  req.set_raw_input_contents(0, req.raw_input_contents(0).substr(0, 100));
  CheckInferError(r, req, grpc::StatusCode::INVALID_ARGUMENT, "needs 3136 bytes, raw_input_contents[0] has 100");

  req = Fp32Request(images, true);
  req.add_raw_input_contents("x");
  CheckInferError(r, req, grpc::StatusCode::INVALID_ARGUMENT, "raw_input_contents has 2 entries for 1 inputs");

  req = ok;
  req.add_outputs()->set_name("logits");
  CheckInferError(r, req, grpc::StatusCode::INVALID_ARGUMENT, "unknown output 'logits'");

  req = ok;
  req.mutable_inputs(0)->set_name("image");
  CheckInferError(r, req, grpc::StatusCode::INVALID_ARGUMENT, "unknown input 'image'");

  // After all of it, the server still answers.
  pb::ModelInferResponse resp;
  REQUIRE(Infer(r, ok, &resp).ok());
  CHECK(Logits(resp) == Expected(images));
}

TEST_CASE("grpc: messages over the body limit are refused, the server keeps serving", "[serve][grpc][limits]") {
  ServerOptions options;
  options.max_body_bytes = 64 << 10;
  GrpcRunning r(options);
  auto images = RandomImages(4, 47);  // 12.5 KB raw, ~16 KB as fp32_contents: under the limit
  pb::ModelInferResponse resp;
  REQUIRE(Infer(r, Fp32Request(images, true), &resp).ok());
  pb::ModelInferRequest big = Fp32Request(images, true);
  big.set_raw_input_contents(0, std::string(1 << 20, 'x'));  // 1 MiB
  CheckInferError(r, big, grpc::StatusCode::RESOURCE_EXHAUSTED, "");
  REQUIRE(Infer(r, Fp32Request(images, false), &resp).ok());
  CHECK(Logits(resp) == Expected(images));
  auto live = r.http->Get("/v2/health/live");
  REQUIRE(live);
  CHECK(live->status == 200);
}

TEST_CASE("grpc: a bearer token guards every call but ServerLive", "[serve][grpc][auth]") {
  ServerOptions options;
  options.auth_token = "s3cret-token";
  GrpcRunning r(options);
  {
    grpc::ClientContext ctx;
    pb::ServerLiveResponse live;
    CHECK(r.stub->ServerLive(&ctx, {}, &live).ok());
  }
  {
    grpc::ClientContext ctx;
    pb::ServerReadyResponse ready;
    CHECK(r.stub->ServerReady(&ctx, {}, &ready).error_code() == grpc::StatusCode::UNAUTHENTICATED);
  }
  auto images = RandomImages(1, 53);
  pb::ModelInferResponse resp;
  grpc::Status none = Infer(r, Fp32Request(images, false), &resp);
  CHECK(none.error_code() == grpc::StatusCode::UNAUTHENTICATED);
  CHECK_THAT(none.error_message(), Catch::Contains("authorization: Bearer"));
  CHECK(Infer(r, Fp32Request(images, false), &resp, "wrong-token").error_code() == grpc::StatusCode::UNAUTHENTICATED);
  REQUIRE(Infer(r, Fp32Request(images, false), &resp, "s3cret-token").ok());
  CHECK(Logits(resp) == Expected(images));
}

TEST_CASE("grpc: the port is bound exclusively", "[serve][grpc][limits]") {
  GrpcRunning first;
  ServerOptions options;
  options.port = 0;
  options.grpc_port = first.server->grpc_port();
  auto second = InferenceServer::Create(LeNet(), options);
  REQUIRE(second.ok());
  Status s = (*second)->Start();
  CHECK(!s.ok());
  CHECK_THAT(s.message(), Catch::Contains("cannot bind gRPC") && Catch::Contains(std::to_string(options.grpc_port)));
  options.grpc_port = 70000;
  auto third = InferenceServer::Create(LeNet(), options);
  REQUIRE(third.ok());
  CHECK_THAT((*third)->Start().message(), Catch::Contains("outside [0, 65535]"));
}

TEST_CASE("grpc: concurrent gRPC and HTTP clients share the batcher and the metrics", "[serve][grpc][batching]") {
  GrpcRunning r;
  constexpr int kThreads = 6, kEach = 8;
  std::atomic<int> wrong{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      httplib::Client http("127.0.0.1", r.server->port());
      for (int i = 0; i < kEach; ++i) {
        auto images = RandomImages(1 + (t + i) % 2, static_cast<uint32_t>(1000 + t * 100 + i));
        std::vector<float> want = Expected(images);
        std::vector<float> got;
        if (t % 2 == 0) {
          pb::ModelInferResponse resp;
          if (!Infer(r, Fp32Request(images, i % 2 == 0), &resp).ok()) {
            wrong++;
            continue;
          }
          const std::string& bytes = resp.raw_output_contents(0);
          got.resize(bytes.size() / 4);
          std::memcpy(got.data(), bytes.data(), bytes.size());
        } else {
          auto res = http.Post("/v2/models/lenet/infer", InferBody(images).dump(), "application/json");
          if (!res || res->status != 200) {
            wrong++;
            continue;
          }
          got = json::parse(res->body)["outputs"][0]["data"].get<std::vector<float>>();
        }
        if (got != want) wrong++;
      }
    });
  }
  for (auto& t : threads) t.join();
  CHECK(wrong == 0);
  std::string metrics = r.server->MetricsText();
  CHECK_THAT(metrics, Catch::Contains("kiln_inference_request_success{model=\"lenet\",version=\"1\"} " +
                                      std::to_string(kThreads * kEach) + "\n"));
}

}  // namespace
}  // namespace kiln::serve::testing
