// kiln-serve's inference server: the Open Inference Protocol (KServe v2) over HTTP/JSON for
// one artifact or a model repository of several models and versions, with dynamic
// batching, the repository extension, Prometheus metrics and a graceful shutdown.
//
// Endpoints (KServe "Open Inference Protocol, HTTP/REST"); "/versions/<v>" may follow
// <m> in every model route (without it: the highest ready version):
//   GET  /v2/health/live            200 {"live":true}
//   GET  /v2/health/ready           200 {"ready":true} (503 while shutting down)
//   GET  /v2                        server metadata {"name","version","extensions"}
//   GET  /v2/models/<m>             model metadata: {"name","versions","platform","inputs",
//                                   "outputs","parameters"}; each tensor {"name","datatype",
//                                   "shape"} with the batch dim as -1, e.g. [-1,1,28,28]
//   GET  /v2/models/<m>/ready       200 {"name","ready":true}; 503 {"ready":false,"reason"}
//                                   for a version that failed to load or was unloaded
//   POST /v2/models/<m>/infer       request and response: serve/infer_request.h, JSON or with
//                                   binary tensor data (Inference-Header-Content-Length)
//   POST /v2/repository/index       [{"name","version","state":"READY"|"UNAVAILABLE","reason"?}]
//   POST /v2/repository/models/<m>/load    (re)loads every version of <m> from the repository
//   POST /v2/repository/models/<m>/unload  stops <m>: queued requests finish, memory is freed
//   GET  /metrics                   Prometheus text format 0.0.4 (serve/model_instance.h)
// An artifact server serves its model as version "1"; load and unload need a repository.
// Errors, each with a JSON body {"error": "..."}: 400 naming the input, the expected and
// the received shape or datatype, a value out of range and its index, or the JSON problem;
// 404 for an unknown model, version or path; 405 for a known path with another method;
// 413 for a body over `max_body_bytes` (chunked bodies included); 415 for a compressed
// body; 431 for oversized headers; 503 when the queue holds `max_queue` requests, when
// `max_connections` are open, for an unavailable version, or while shutting down; 504 for
// a request still queued after `request_timeout_ms`; 401 (with WWW-Authenticate: Bearer)
// without the right token when authentication is on. Slow clients are dropped after the
// header/body timeouts and hold no thread meanwhile (serve/http.h), so health checks keep
// answering. Batching: serve/model_instance.h. Repository layout: serve/repository.h.
// Source: KServe "Open Inference Protocol" (kserve.github.io, V2 REST), Triton's model
// repository extension and dynamic batcher, Prometheus exposition format.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "base/status.h"
#include "runtime/model.h"
#include "serve/grpc_service.h"
#include "serve/http.h"
#include "serve/model_instance.h"

namespace kiln::serve {

struct ServerOptions {
  std::string host = "127.0.0.1";
  int port = 8000;         // 0 = any free port (see InferenceServer::port())
  // KServe v2 gRPC (serve/grpc_service.h) on this port as well; -1 = none, 0 = any free port
  // (InferenceServer::grpc_port()). Shares the models, queues, limits and tokens with HTTP;
  // gRPC messages are capped at max_body_bytes.
  int grpc_port = -1;
  // Prometheus metrics (GET /metrics, nothing else) on a port of their own as well, plain
  // HTTP without a token, for a scraper on a monitoring network (Triton's --metrics-port);
  // -1 = none, 0 = any free port. /metrics on `port` stays, behind the auth token.
  int metrics_port = -1;
  std::string model_name;  // artifact server: "" = the artifact's model name
  // Batching defaults (a repository model's config.json overrides them):
  int max_batch_size = 0;  // samples per run; 0 = the artifact's batch B; at most B
  int64_t batch_delay_us = 2000;            // how long the first queued request waits for others
  int workers = 1;        // sessions running batches in parallel (oneDNN already uses every core)
  int max_queue = 256;                 // queued requests per model version; one more gets 503
  int64_t request_timeout_ms = 30'000;  // a request still queued after this gets 504; 0 = none
  // HTTP (serve/http.h):
  int64_t max_body_bytes = int64_t{8} << 20;  // larger request bodies get 413
  int http_threads = 2;   // I/O threads (asynchronous: a waiting connection holds no thread)
  int max_connections = 512;         // open at once; one more gets 503
  int64_t header_timeout_ms = 10'000;  // a request's headers must arrive within this
  int64_t body_timeout_ms = 60'000;    // and its body within this
  int64_t idle_timeout_ms = 30'000;    // keep-alive connections idle longer are closed
  // Bearer-token authentication (RFC 6750). With `auth_token` set, every endpoint but
  // /v2/health/live needs "Authorization: Bearer <auth_token>" (else 401). With
  // `admin_token` set, the repository endpoints (/v2/repository/...) need it instead, even
  // when inference is open; when only `auth_token` is set, they need that one. Empty: open.
  std::string auth_token;
  std::string admin_token;
  // TLS for HTTP and gRPC: PEM certificate chain and private key files (both or neither).
  // With them HTTP is HTTPS only (serve/http.h) and gRPC takes TLS credentials only.
  std::string tls_cert_file, tls_key_file;
};

// Reads a token file for --auth-token-file / --admin-token-file: its first line, without
// surrounding whitespace (tokens stay out of the process list). Errors: NotFound,
// InvalidArgument for an empty token or one with characters outside RFC 6750's token68.
StatusOr<std::string> ReadTokenFile(const std::string& path);

// Tasks run in order by the threads that call Run (the parse threads, the control thread).
class TaskQueue {
 public:
  // Queues `task`; false (the task is dropped) once stopped or while `max` tasks wait.
  bool Push(std::function<void()> task, size_t max = SIZE_MAX);
  // Runs tasks until Stop was called and none is left.
  void Run();
  void Stop();

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> tasks_;
  bool stop_ = false;
};

// The batching part of the options.
BatchingConfig BatchingFrom(const ServerOptions& options);

class InferenceServer {
 public:
  // Serves one artifact as model `options.model_name` (or the artifact's name), version
  // "1". Checks the options against the model (ModelInstance::Create). Errors:
  // InvalidArgument naming the tensor or option.
  static StatusOr<std::unique_ptr<InferenceServer>> Create(std::shared_ptr<const runtime::Model> model,
                                                           ServerOptions options);
  // Serves the repository `dir` (serve/repository.h); Start loads every model found. A
  // version that does not load is UNAVAILABLE with its reason while the others serve.
  // Errors: NotFound / InvalidArgument when `dir` is not a readable folder.
  static StatusOr<std::unique_ptr<InferenceServer>> CreateFromRepository(const std::string& dir,
                                                                        ServerOptions options);
  ~InferenceServer();

  // Loads the repository's models (repository server), starts the batch threads, binds
  // host:port and starts the HTTP I/O threads; returns once the server accepts
  // connections. Sets glibc's M_MMAP_THRESHOLD to 1 MiB (process-wide) so that large
  // request bodies go back to the system when freed. Errors: InvalidArgument when the port
  // is outside [0, 65535] or cannot be bound (in use: the message says so).
  Status Start();
  // The bound port (valid after Start).
  int port() const { return port_; }
  // The bound gRPC port (after Start; 0 without gRPC).
  int grpc_port() const;
  // The bound metrics port (after Start; 0 without one).
  int metrics_port() const { return metrics_ ? metrics_->port() : 0; }
  // Artifact server: its model's name and samples per run ("" and 0 for a repository).
  const std::string& model_name() const { return model_name_; }
  int max_batch_size() const;
  // Graceful shutdown: stops accepting connections, lets queued requests finish (their
  // batches still run), writes their responses, then stops. Idempotent; called by the
  // destructor.
  void Shutdown();
  std::string MetricsText() const;

  // The repository extension (also over HTTP; serialized with each other).
  // LoadModel reads the model's config and versions anew and loads them; versions already
  // serving keep serving until their replacements are ready. Errors: FailedPrecondition for
  // an artifact server; InvalidArgument for an unsafe name; NotFound when the model is not
  // in the repository; the reasons when no version could be loaded.
  Status LoadModel(const std::string& name);
  // Stops and frees every version of `name` (queued requests are answered first). Errors:
  // FailedPrecondition for an artifact server; NotFound for a model not loaded.
  Status UnloadModel(const std::string& name);
  // [{"name","version","state","reason"?}] for every model in the repository (or served).
  std::string RepositoryIndexJson() const;

 private:
  struct Version {
    std::string version;
    std::shared_ptr<ModelInstance> instance;  // null when unavailable
    std::string reason;                       // why it is unavailable
  };
  struct ModelEntry {
    std::vector<Version> versions;  // increasing version order
    std::string reason;             // model-level problem (config, no versions, unloaded)
  };
  explicit InferenceServer(ServerOptions options) : options_(std::move(options)) {}
  void Handle(HttpRequest request, HttpResponder respond);
  void HandleModel(HttpRequest& req, const std::vector<std::string>& seg, HttpResponder& respond);
  void HandleRepository(const HttpRequest& req, const std::vector<std::string>& seg, HttpResponder respond);
  // The instance serving <m> (and <v>, "" = the highest ready), or the HTTP error.
  std::shared_ptr<ModelInstance> Find(const std::string& name, const std::string& version, int* status,
                                      std::string* error) const;
  std::vector<std::shared_ptr<ModelInstance>> Instances() const;
  // GET /metrics (main port and metrics port): Prometheus text of every version.
  HttpResponse MetricsResponse() const;
  // The protocol extensions served, for HTTP and gRPC server metadata.
  std::vector<std::string> Extensions() const;

  ServerOptions options_;
  std::string repository_;  // real path; "" = artifact server
  std::string model_name_;
  int port_ = 0;
  std::unique_ptr<HttpServer> http_;
  std::unique_ptr<GrpcFrontend> grpc_;
  std::unique_ptr<HttpServer> metrics_;

  mutable std::mutex registry_mu_;
  std::map<std::string, ModelEntry> models_;

  std::mutex load_mu_;  // serializes LoadModel / UnloadModel
  // Repository requests run on this thread (loading takes long; I/O threads must not block).
  TaskQueue control_queue_;
  std::thread control_;
  // Infer requests are parsed on these threads (parsing a large JSON body takes long; the
  // I/O threads must keep reading other connections). At most `kMaxParseQueue` wait.
  TaskQueue parse_queue_;
  std::vector<std::thread> parsers_;

  std::atomic<bool> shutting_down_{false};
  std::mutex shutdown_mu_;
  bool shut_down_ = false;
};

// `kiln serve` / `kiln-serve`: loads `artifact_path` (or, when it is "", the repository
// `repository_dir`), serves it until SIGTERM or SIGINT, then shuts down gracefully. Prints
// "kiln serve: ... ready on http://<host>:<port> ..." to stdout once listening. Returns the
// process exit code (0 after a clean shutdown, 1 when loading or binding fails).
int ServeUntilSignal(const std::string& artifact_path, const ServerOptions& options,
                     const std::string& repository_dir = "");

}  // namespace kiln::serve
