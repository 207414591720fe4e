// TLS for HTTP and gRPC with a self-signed certificate made at test time (openssl req): an
// HTTPS client that trusts it is served, a plain HTTP client on the TLS port is not, a
// wrong bearer token gets 401 / UNAUTHENTICATED and the right one the model's logits.
#include <grpcpp/grpcpp.h>

#include "serve/proto/grpc_predict_v2.grpc.pb.h"
#include "tests/serve/serve_test_util.h"

namespace kiln::serve::testing {
namespace {

namespace pb = ::inference;

std::string ReadText(const std::string& path) {
  std::ifstream f(path);
  return std::string(std::istreambuf_iterator<char>(f), {});
}

// A self-signed certificate for localhost and 127.0.0.1 (RSA 2048, one day), made once.
const std::pair<std::string, std::string>& CertAndKey() {
  static const std::pair<std::string, std::string> files = [] {
    std::string cert = TmpPath("tls_cert.pem"), key = TmpPath("tls_key.pem");
    std::string cmd = "openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=localhost "
                      "-addext subjectAltName=DNS:localhost,IP:127.0.0.1 -keyout " +
                      key + " -out " + cert + " >/dev/null 2>&1";
    REQUIRE(std::system(cmd.c_str()) == 0);
    return std::make_pair(cert, key);
  }();
  return files;
}

struct TlsRunning {
  std::unique_ptr<InferenceServer> server;
  TlsRunning() {
    ServerOptions options;
    options.port = 0;
    options.grpc_port = 0;
    options.auth_token = "tls-token";
    options.tls_cert_file = CertAndKey().first;
    options.tls_key_file = CertAndKey().second;
    options.header_timeout_ms = 2000;
    auto s = InferenceServer::Create(LeNet(), options);
    REQUIRE(s.ok());
    server = std::move(*s);
    Status st = server->Start();
    INFO(st.ToString());
    REQUIRE(st.ok());
  }
  std::unique_ptr<httplib::SSLClient> Https() const {
    auto c = std::make_unique<httplib::SSLClient>("localhost", server->port());
    c->set_ca_cert_path(CertAndKey().first.c_str());
    c->enable_server_certificate_verification(true);
    c->set_read_timeout(30, 0);
    return c;
  }
};

TEST_CASE("tls: HTTPS serves clients that trust the certificate, with the token", "[serve][tls]") {
  TlsRunning r;
  auto https = r.Https();
  auto live = https->Get("/v2/health/live");
  INFO(httplib::to_string(live.error()));
  REQUIRE(live);
  CHECK(live->status == 200);
  auto images = RandomImages(2, 61);
  std::string body = InferBody(images).dump();
  auto none = https->Post("/v2/models/lenet/infer", body, "application/json");
  REQUIRE(none);
  CHECK(none->status == 401);
  httplib::Headers wrong = {{"Authorization", "Bearer wrong"}};
  auto bad = https->Post("/v2/models/lenet/infer", wrong, body, "application/json");
  REQUIRE(bad);
  CHECK(bad->status == 401);
  httplib::Headers right = {{"Authorization", "Bearer tls-token"}};
  CheckLogits(https->Post("/v2/models/lenet/infer", right, body, "application/json"), images);
}

TEST_CASE("tls: a plain HTTP client on the TLS port gets no answer, and the server keeps serving", "[serve][tls]") {
  TlsRunning r;
  httplib::Client plain("127.0.0.1", r.server->port());
  plain.set_read_timeout(5, 0);
  auto res = plain.Get("/v2/health/live");
  CHECK(!res);  // the handshake fails on the HTTP request line; the connection is closed
  auto https = r.Https();
  auto live = https->Get("/v2/health/live");
  REQUIRE(live);
  CHECK(live->status == 200);
}

TEST_CASE("tls: gRPC over TLS with the token; an insecure channel is refused", "[serve][tls][grpc]") {
  TlsRunning r;
  auto images = RandomImages(1, 67);
  pb::ModelInferRequest req;
  req.set_model_name("lenet");
  auto* in = req.add_inputs();
  in->set_name("data");
  in->set_datatype("FP32");
  for (int64_t d : {1, 1, 28, 28}) in->add_shape(d);
  req.add_raw_input_contents(std::string(reinterpret_cast<const char*>(images.data()), images.size() * 4));
  auto call = [&](const std::shared_ptr<grpc::ChannelCredentials>& creds, const std::string& token,
                  pb::ModelInferResponse* resp) {
    grpc::ChannelArguments args;
    // 127.0.0.1 (in the certificate's subjectAltName): no DNS lookup (c-ares leaks 30 bytes
    // per "localhost" resolution under LeakSanitizer).
    auto channel = grpc::CreateCustomChannel("127.0.0.1:" + std::to_string(r.server->grpc_port()), creds, args);
    auto stub = pb::GRPCInferenceService::NewStub(channel);
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    if (!token.empty()) ctx.AddMetadata("authorization", "Bearer " + token);
    return stub->ModelInfer(&ctx, req, resp);
  };
  grpc::SslCredentialsOptions ssl;
  ssl.pem_root_certs = ReadText(CertAndKey().first);
  auto tls = grpc::SslCredentials(ssl);
  pb::ModelInferResponse resp;
  CHECK(call(tls, "wrong", &resp).error_code() == grpc::StatusCode::UNAUTHENTICATED);
  grpc::Status ok = call(tls, "tls-token", &resp);
  INFO(ok.error_message());
  REQUIRE(ok.ok());
  std::vector<float> got(10);
  REQUIRE(resp.raw_output_contents(0).size() == 40);
  std::memcpy(got.data(), resp.raw_output_contents(0).data(), 40);
  CHECK(got == Expected(images));
  CHECK(call(grpc::InsecureChannelCredentials(), "tls-token", &resp).error_code() == grpc::StatusCode::UNAVAILABLE);
}

TEST_CASE("tls: an unreadable certificate or a missing key is a clear start error", "[serve][tls][errors]") {
  ServerOptions options;
  options.port = 0;
  options.tls_cert_file = TmpPath("no_such_cert.pem");
  options.tls_key_file = CertAndKey().second;
  auto s = InferenceServer::Create(LeNet(), options);
  REQUIRE(s.ok());
  Status st = (*s)->Start();
  CHECK(!st.ok());
  CHECK_THAT(st.message(), Catch::Contains("TLS certificate") && Catch::Contains("no_such_cert.pem"));
  options.tls_key_file.clear();
  auto s2 = InferenceServer::Create(LeNet(), options);
  REQUIRE(s2.ok());
  CHECK_THAT((*s2)->Start().message(), Catch::Contains("both a certificate and a private key"));
}

}  // namespace
}  // namespace kiln::serve::testing
