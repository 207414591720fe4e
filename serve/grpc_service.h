// KServe v2 over gRPC (serve/proto/grpc_predict_v2.proto, inference.GRPCInferenceService)
// next to the HTTP front end: the same models, batching, limits, errors and metrics.
//
// ModelInfer takes each input either in InferTensorContents (the field of its datatype:
// fp32_contents for FP32, int_contents for INT8/INT16/INT32, uint_contents for
// UINT8/UINT16/UINT32, int64_contents, uint64_contents, fp64_contents) or in
// raw_input_contents (one little-endian entry per input, in the order of `inputs`; the only
// way to send FP16 and BF16), converted to the model's dtype with the range checks of the
// JSON path (serve/infer_request.h: AddInferInput gives both the same messages). The
// response carries every requested output in raw_output_contents (as Triton answers), with
// its datatype and shape [n, ...]. Errors are the call's status, mapped from the HTTP
// status the same request gets: 400 INVALID_ARGUMENT, 401 UNAUTHENTICATED, 404 NOT_FOUND,
// 503 UNAVAILABLE (queue full, no ready version, shutting down), 504 DEADLINE_EXCEEDED,
// 500 INTERNAL; messages are the same. Source: KServe "Open Inference Protocol" (GRPC),
// Triton's grpc_service.proto behaviour for raw contents; gRPC C++ sync server API.
//
// Limits: messages over `max_message_bytes` are refused by gRPC (RESOURCE_EXHAUSTED), the
// port is bound exclusively (GRPC_ARG_ALLOW_REUSEPORT off; a used port is an error),
// handler threads are capped (grpc::ResourceQuota), streams per connection are capped and
// idle connections closed after `idle_timeout_ms`.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "base/status.h"
#include "serve/model_instance.h"

namespace grpc {
class Server;
}

namespace kiln::serve {

// What the gRPC front end asks of the server (serve/server.h fills it).
struct GrpcBackend {
  // Whether the server is ready (not shutting down).
  std::function<bool()> ready;
  // The instance serving model `name`, version `version` ("" = the highest ready), or
  // null with the HTTP status (404, 503) and the message.
  std::function<std::shared_ptr<ModelInstance>(const std::string& name, const std::string& version, int* status,
                                               std::string* error)>
      find;
  std::vector<std::string> extensions;
  // Bearer token: with one, every call but ServerLive needs metadata
  // "authorization: Bearer <token>" (UNAUTHENTICATED otherwise). Empty: open.
  std::string auth_token;
};

struct GrpcOptions {
  std::string host = "127.0.0.1";
  int port = 8001;  // 0 = any free port
  int64_t max_message_bytes = int64_t{8} << 20;
  int max_threads = 256;           // handler threads (each in-flight call holds one; past it: RESOURCE_EXHAUSTED)
  int max_streams = 128;           // concurrent calls per connection
  int64_t idle_timeout_ms = 30'000;  // connections idle longer are closed
  // TLS: PEM files of the server's certificate chain and private key (both or neither).
  std::string tls_cert_file, tls_key_file;
};

class GrpcFrontend {
 public:
  // Binds host:port and starts serving. Errors: InvalidArgument when the port is outside
  // [0, 65535], cannot be bound (the message names it; e.g. in use) or the TLS files cannot
  // be read.
  static StatusOr<std::unique_ptr<GrpcFrontend>> Start(GrpcBackend backend, const GrpcOptions& options);
  ~GrpcFrontend();  // Shutdown(0)
  GrpcFrontend(const GrpcFrontend&) = delete;
  GrpcFrontend& operator=(const GrpcFrontend&) = delete;

  int port() const { return port_; }
  // Stops accepting calls, lets calls in flight finish for up to `grace_ms`, then cancels
  // the rest. Idempotent.
  void Shutdown(int64_t grace_ms);

 private:
  class Service;
  GrpcFrontend() = default;
  std::unique_ptr<Service> service_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
  bool shut_down_ = false;
};

// The gRPC status code for an HTTP status of the same error (400 -> INVALID_ARGUMENT, ...).
int GrpcCodeForHttpStatus(int http_status);

}  // namespace kiln::serve
