// An inference server for one kiln artifact: the Open Inference Protocol (KServe v2) over
// HTTP/JSON, with dynamic batching, Prometheus metrics and a graceful shutdown.
//
// Endpoints (KServe "Open Inference Protocol, HTTP/REST"):
//   GET  /v2/health/live            200 {"live":true}
//   GET  /v2/health/ready           200 {"ready":true} (503 while shutting down)
//   GET  /v2                        server metadata {"name","version","extensions"}
//   GET  /v2/models/<name>          model metadata: {"name","versions","platform","inputs",
//                                   "outputs"}; each tensor {"name","datatype","shape"} with
//                                   the batch dim as -1, e.g. [-1,1,28,28]
//   GET  /v2/models/<name>/ready    200 {"name","ready":true}
//   POST /v2/models/<name>/infer    request {"id"?, "inputs":[{"name","shape","datatype",
//                                   "data"}], "outputs"?:[{"name"}]}; `data` is the row-major
//                                   tensor, flat or nested; response {"model_name","id"?,
//                                   "outputs":[{"name","shape","datatype","data"}]}
//   GET  /metrics                   Prometheus text format 0.0.4
// Datatypes: FP32 (f32) and INT32 (s32). Errors: 400 {"error": "..."} naming the input, the
// expected and the received shape or datatype, or the JSON problem; 404 for an unknown
// model or path; 413 for a body over `max_body_bytes`; 503 while shutting down.
//
// Dynamic batching: the artifact is compiled for a fixed batch B (the first dim of every
// input and output). A request carries n samples (its inputs' first dim, 1 <= n <= B).
// Requests arriving within `batch_delay_us` of the first queued one are packed, in order,
// into one run of up to `max_batch_size` samples; the rest of the batch is zero-padded and
// each request gets its own rows back. Compile the artifact with the largest batch you want
// to serve (`kiln compile --input-shape 32,1,28,28`); a batch-1 artifact serves one sample
// per run. Source: KServe "Open Inference Protocol" (kserve.github.io, V2 REST), Triton's
// dynamic batcher (max_queue_delay_microseconds), Prometheus exposition format.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "base/status.h"
#include "runtime/model.h"

namespace httplib {
class Server;
}

namespace kiln::serve {

struct ServerOptions {
  std::string host = "127.0.0.1";
  int port = 8000;         // 0 = any free port (see InferenceServer::port())
  std::string model_name;  // "" = the artifact's model name
  int max_batch_size = 0;  // samples per run; 0 = the artifact's batch B; at most B
  int64_t batch_delay_us = 2000;            // how long the first queued request waits for others
  int64_t max_body_bytes = int64_t{8} << 20;  // larger request bodies get 413
  int http_threads = 16;  // concurrent connections handled (each waits for its batch)
  int workers = 1;        // sessions running batches in parallel (oneDNN already uses every core)
};

// Counters and histograms exported on /metrics (thread-safe).
class Metrics {
 public:
  explicit Metrics(int max_batch_size);
  void RecordRequest(bool ok, double seconds);
  void RecordBatch(int samples, int requests);
  // Prometheus text: kiln_requests_total, kiln_request_failures_total,
  // kiln_inference_runs_total, kiln_batch_size (histogram of samples per run),
  // kiln_batch_requests (histogram of requests per run), kiln_request_latency_seconds
  // (histogram), all labelled with model="<name>".
  std::string Text(const std::string& model_name) const;

 private:
  struct Histogram {
    std::vector<double> bounds;
    std::vector<uint64_t> counts;  // per bucket (not cumulative); last = +Inf
    double sum = 0;
    uint64_t count = 0;
    void Observe(double v);
    void Write(std::string* out, const std::string& name, const std::string& help, const std::string& labels) const;
  };
  mutable std::mutex mu_;
  uint64_t requests_ = 0, failures_ = 0, runs_ = 0;
  Histogram batch_size_, batch_requests_, latency_;
};

class InferenceServer {
 public:
  // Checks the options against the model: every input and output has the batch dim first
  // with the same B, max_batch_size <= B. Errors: InvalidArgument naming the tensor/option.
  static StatusOr<std::unique_ptr<InferenceServer>> Create(std::shared_ptr<const runtime::Model> model,
                                                           ServerOptions options);
  ~InferenceServer();

  // Binds host:port, starts the batch workers and the HTTP listener thread; returns once the
  // server accepts connections. Errors: InvalidArgument when the port cannot be bound.
  Status Start();
  // The bound port (valid after Start).
  int port() const { return port_; }
  const std::string& model_name() const { return model_name_; }
  int max_batch_size() const { return max_batch_; }
  // Graceful shutdown: stops accepting connections, lets in-flight requests finish (their
  // batches still run), then stops the workers. Idempotent; called by the destructor.
  void Shutdown();
  std::string MetricsText() const { return metrics_.Text(model_name_); }

 private:
  struct Job;
  InferenceServer(std::shared_ptr<const runtime::Model> model, ServerOptions options, int batch);
  void SetUpRoutes();
  void WorkerLoop(runtime::Session* session);
  void RunBatch(runtime::Session* session, std::vector<std::shared_ptr<Job>>& jobs);
  // Parses and validates an infer request body; on success returns the job (not queued).
  StatusOr<std::shared_ptr<Job>> ParseInfer(const std::string& body) const;

  std::shared_ptr<const runtime::Model> model_;
  ServerOptions options_;
  std::string model_name_;
  int batch_ = 1;      // the artifact's batch B
  int max_batch_ = 1;  // samples per run
  int port_ = 0;
  Metrics metrics_;
  std::unique_ptr<httplib::Server> http_;
  std::thread listener_;
  std::vector<std::thread> workers_;
  std::vector<std::unique_ptr<runtime::Session>> sessions_;

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::shared_ptr<Job>> queue_;
  bool stopping_workers_ = false;
  std::atomic<bool> shutting_down_{false};
  std::mutex shutdown_mu_;
  bool shut_down_ = false;
};

// `kiln serve`: loads `artifact_path`, serves it until SIGTERM or SIGINT, then shuts down
// gracefully. Prints "kiln serve: model '<name>' ready on http://<host>:<port> ..." to
// stdout once listening. Returns the process exit code (0 after a clean shutdown).
int ServeUntilSignal(const std::string& artifact_path, const ServerOptions& options);

}  // namespace kiln::serve
