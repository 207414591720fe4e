#include "serve/grpc_service.h"

#include <grpcpp/grpcpp.h>
#include <grpcpp/resource_quota.h>

#include <fstream>
#include <future>
#include <sstream>

#include "serve/grpc_request.h"
#include "serve/http.h"
#include "serve/infer_request.h"
#include "serve/proto/grpc_predict_v2.grpc.pb.h"

namespace kiln::serve {

namespace pb = ::inference;

int GrpcCodeForHttpStatus(int http_status) {
  switch (http_status) {
    case 200: return grpc::StatusCode::OK;
    case 400: return grpc::StatusCode::INVALID_ARGUMENT;
    case 401: return grpc::StatusCode::UNAUTHENTICATED;
    case 404: return grpc::StatusCode::NOT_FOUND;
    case 413: return grpc::StatusCode::RESOURCE_EXHAUSTED;
    case 429:
    case 503: return grpc::StatusCode::UNAVAILABLE;
    case 504: return grpc::StatusCode::DEADLINE_EXCEEDED;
    default: return grpc::StatusCode::INTERNAL;
  }
}

namespace {

grpc::Status Error(int http_status, const std::string& message) {
  return grpc::Status(static_cast<grpc::StatusCode>(GrpcCodeForHttpStatus(http_status)), message);
}

void FillTensorMetadata(const runtime::TensorSpec& spec, pb::ModelMetadataResponse::TensorMetadata* t) {
  t->set_name(spec.name);
  t->set_datatype(KServeDatatype(spec.dtype));
  for (size_t i = 0; i < spec.shape.size(); ++i) t->add_shape(i == 0 ? -1 : spec.shape[i]);
}

StatusOr<std::string> ReadPem(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return InvalidArgument("cannot read TLS file '" + path + "'");
  std::stringstream ss;
  ss << f.rdbuf();
  if (ss.str().empty()) return InvalidArgument("TLS file '" + path + "' is empty");
  return ss.str();
}

}  // namespace

class GrpcFrontend::Service final : public pb::GRPCInferenceService::Service {
 public:
  explicit Service(GrpcBackend backend) : backend_(std::move(backend)) {}

  grpc::Status ServerLive(grpc::ServerContext*, const pb::ServerLiveRequest*, pb::ServerLiveResponse* out) override {
    out->set_live(true);
    return grpc::Status::OK;
  }
  grpc::Status ServerReady(grpc::ServerContext* ctx, const pb::ServerReadyRequest*,
                           pb::ServerReadyResponse* out) override {
    if (auto s = Authorize(ctx); !s.ok()) return s;
    out->set_ready(backend_.ready());
    return grpc::Status::OK;
  }
  grpc::Status ModelReady(grpc::ServerContext* ctx, const pb::ModelReadyRequest* req,
                          pb::ModelReadyResponse* out) override {
    if (auto s = Authorize(ctx); !s.ok()) return s;
    int status = 0;
    std::string error;
    auto inst = backend_.find(req->name(), req->version(), &status, &error);
    if (!inst && status == 404) return Error(status, error);
    out->set_ready(inst != nullptr && backend_.ready());
    return grpc::Status::OK;
  }
  grpc::Status ServerMetadata(grpc::ServerContext* ctx, const pb::ServerMetadataRequest*,
                              pb::ServerMetadataResponse* out) override {
    if (auto s = Authorize(ctx); !s.ok()) return s;
    out->set_name("kiln");
    out->set_version("1");
    for (const auto& e : backend_.extensions) out->add_extensions(e);
    return grpc::Status::OK;
  }
  grpc::Status ModelMetadata(grpc::ServerContext* ctx, const pb::ModelMetadataRequest* req,
                             pb::ModelMetadataResponse* out) override {
    if (auto s = Authorize(ctx); !s.ok()) return s;
    int status = 0;
    std::string error;
    auto inst = backend_.find(req->name(), req->version(), &status, &error);
    if (!inst) return Error(status, error);
    out->set_name(inst->name());
    out->add_versions(inst->version());
    out->set_platform("kiln");
    for (const auto& spec : inst->signature().inputs) FillTensorMetadata(spec, out->add_inputs());
    for (const auto& spec : inst->signature().outputs) FillTensorMetadata(spec, out->add_outputs());
    return grpc::Status::OK;
  }
  grpc::Status ModelInfer(grpc::ServerContext* ctx, const pb::ModelInferRequest* req,
                          pb::ModelInferResponse* out) override {
    if (auto s = Authorize(ctx); !s.ok()) return s;
    int status = 0;
    std::string error;
    auto inst = backend_.find(req->model_name(), req->model_version(), &status, &error);
    if (!inst) return Error(status, error);
    const ModelSignature& sig = inst->signature();
    auto parsed = GrpcInferRequest(*req, sig);
    if (!parsed.ok()) return Error(400, parsed.status().message());
    InferRequest request = std::move(*parsed);
    const int n = request.n;
    const std::vector<int> outputs = request.outputs;
    struct Outcome {
      int status = 0;
      std::string error;
      std::vector<std::vector<uint8_t>> results;
    };
    auto promise = std::make_shared<std::promise<Outcome>>();
    std::future<Outcome> future = promise->get_future();
    inst->Submit(std::move(request),
                 [promise](int st, const std::string& err, std::vector<std::vector<uint8_t>> results) {
                   promise->set_value(Outcome{st, err, std::move(results)});
                 });
    Outcome o = future.get();
    if (o.status != 200) return Error(o.status, o.error);
    out->set_model_name(inst->name());
    out->set_model_version(inst->version());
    if (!req->id().empty()) out->set_id(req->id());
    for (size_t k = 0; k < outputs.size(); ++k) {
      const runtime::TensorSpec& spec = sig.outputs[static_cast<size_t>(outputs[k])];
      auto* t = out->add_outputs();
      t->set_name(spec.name);
      t->set_datatype(KServeDatatype(spec.dtype));
      t->add_shape(n);
      for (size_t i = 1; i < spec.shape.size(); ++i) t->add_shape(spec.shape[i]);
      out->add_raw_output_contents(reinterpret_cast<const char*>(o.results[k].data()), o.results[k].size());
    }
    return grpc::Status::OK;
  }

 private:
  grpc::Status Authorize(grpc::ServerContext* ctx) const {
    if (backend_.auth_token.empty()) return grpc::Status::OK;
    const auto& md = ctx->client_metadata();
    auto it = md.find("authorization");
    if (it == md.end()) {
      return grpc::Status(grpc::StatusCode::UNAUTHENTICATED, "this call needs metadata \"authorization: Bearer <token>\"");
    }
    std::string_view value(it->second.data(), it->second.size());
    if (!BearerTokenMatches(value, backend_.auth_token)) {
      return grpc::Status(grpc::StatusCode::UNAUTHENTICATED, "the bearer token is not valid for this call");
    }
    return grpc::Status::OK;
  }

  GrpcBackend backend_;
};

StatusOr<std::unique_ptr<GrpcFrontend>> GrpcFrontend::Start(GrpcBackend backend, const GrpcOptions& options) {
  if (options.port < 0 || options.port > 65535) {
    return InvalidArgument("gRPC port " + std::to_string(options.port) + " is outside [0, 65535]");
  }
  if (options.tls_cert_file.empty() != options.tls_key_file.empty()) {
    return InvalidArgument("TLS needs both a certificate and a private key file");
  }
  std::shared_ptr<grpc::ServerCredentials> credentials = grpc::InsecureServerCredentials();
  if (!options.tls_cert_file.empty()) {
    ASSIGN_OR_RETURN(std::string cert, ReadPem(options.tls_cert_file));
    ASSIGN_OR_RETURN(std::string key, ReadPem(options.tls_key_file));
    grpc::SslServerCredentialsOptions ssl;
    ssl.pem_key_cert_pairs.push_back({key, cert});
    credentials = grpc::SslServerCredentials(ssl);
  }
  std::unique_ptr<GrpcFrontend> f(new GrpcFrontend());
  f->service_ = std::make_unique<Service>(std::move(backend));
  grpc::ServerBuilder builder;
  std::string address = options.host + ":" + std::to_string(options.port);
  builder.AddListeningPort(address, credentials, &f->port_);
  builder.RegisterService(f->service_.get());
  const int max_message = static_cast<int>(std::min<int64_t>(options.max_message_bytes, INT32_MAX));
  builder.SetMaxReceiveMessageSize(max_message);
  builder.SetMaxSendMessageSize(INT32_MAX);
  grpc::ResourceQuota quota("kiln-serve-grpc");
  quota.SetMaxThreads(std::max(4, options.max_threads));
  builder.SetResourceQuota(quota);
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);  // exclusive bind, as the HTTP port
  builder.AddChannelArgument(GRPC_ARG_MAX_CONCURRENT_STREAMS, std::max(1, options.max_streams));
  builder.AddChannelArgument(GRPC_ARG_MAX_CONNECTION_IDLE_MS,
                             static_cast<int>(std::min<int64_t>(options.idle_timeout_ms, INT32_MAX)));
  f->server_ = builder.BuildAndStart();
  if (!f->server_ || f->port_ == 0) {
    return InvalidArgument("cannot bind gRPC to " + address + " (Address already in use, or not an address here)");
  }
  return f;
}

void GrpcFrontend::Shutdown(int64_t grace_ms) {
  if (shut_down_ || !server_) return;
  shut_down_ = true;
  server_->Shutdown(std::chrono::system_clock::now() + std::chrono::milliseconds(grace_ms));
  server_->Wait();
}

GrpcFrontend::~GrpcFrontend() { Shutdown(0); }

}  // namespace kiln::serve
