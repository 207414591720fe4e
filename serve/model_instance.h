// One model version being served: its loaded artifact, sessions on their own threads, the
// dynamic batcher's bounded queue, and its metrics in Triton's vocabulary.
//
// Dynamic batching: the artifact is compiled for one or more batch sizes (batch buckets,
// runtime/model.h; B = the largest; the first dim of every input and output). A request
// carries n samples (1 <= n <= max_batch_size <= B). Requests arriving within
// `batch_delay_us` of the first queued one are packed, in order, into one run of up to
// `max_batch_size` samples (dispatched at once when that many are queued), on the smallest
// bucket that holds them; the rest of that bucket is zero-padded (counted in
// kiln_inference_padding_count) and each request gets its own rows back. Each worker holds
// a session per bucket it may use (memory: per worker, the sum of those buckets' arenas and
// prepacked weights; `kiln inspect` prints them). Source: Triton's dynamic batcher
// (preferred_batch_size, max_queue_delay_microseconds, max_queue_size,
// default_queue_policy timeout).
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "base/status.h"
#include "runtime/model.h"
#include "serve/http.h"
#include "serve/infer_request.h"

namespace kiln::serve {

struct BatchingConfig {
  int max_batch_size = 0;          // samples per run; 0 = the artifact's batch B; at most B
  int64_t batch_delay_us = 2000;   // how long the first queued request waits for others
  int instances = 1;               // sessions running batches in parallel, one thread each
  int max_queue = 256;             // queued requests; one more gets 503
  int64_t request_timeout_ms = 30'000;  // a request still queued after this gets 504; 0 = none
};

// Counters and histograms of one model version (thread-safe). Durations are cumulative
// microseconds per request, as Triton counts them (a batch's compute time is added to each
// of its requests).
struct ModelStats {
  uint64_t request_success = 0, request_failure = 0;
  uint64_t inference_count = 0;  // samples inferred (sum of the requests' n)
  uint64_t exec_count = 0;       // batched runs of the graph (inference_count / exec_count = average batch)
  uint64_t padding_count = 0;    // zero samples computed to fill the bucket a batch ran on
  uint64_t request_duration_us = 0, queue_duration_us = 0;
  uint64_t compute_input_duration_us = 0, compute_infer_duration_us = 0, compute_output_duration_us = 0;
  std::vector<double> batch_bounds;     // histogram of samples per run: upper bounds
  std::vector<uint64_t> batch_counts;   // per bucket, last = +Inf
  std::vector<double> latency_bounds;   // histogram of request latency in seconds
  std::vector<uint64_t> latency_counts;
  double latency_sum = 0;
};

class ModelInstance {
 public:
  // Checks the model against the config: every input and output has the batch dim B first,
  // dtype f32 or s32; max_batch_size <= B. Errors: InvalidArgument naming the tensor or
  // option.
  static StatusOr<std::shared_ptr<ModelInstance>> Create(std::string name, std::string version,
                                                         std::shared_ptr<const runtime::Model> model,
                                                         BatchingConfig config);
  ~ModelInstance();  // Stop()
  ModelInstance(const ModelInstance&) = delete;
  ModelInstance& operator=(const ModelInstance&) = delete;

  // Creates the sessions (one arena each) and starts their threads. Errors: as NewSession.
  Status Start();
  // Parses the KServe v2 body (serve/infer_request.h; `json_bytes`: the JSON header's
  // length when binary tensor data follows it, else npos) and queues the request; the
  // response is sent from a batch thread (binary outputs after a JSON header, with the
  // Inference-Header-Content-Length header). Answers 400 for a bad request, 503 when the
  // queue is full or the instance is stopping, 504 after the request timeout, 500 when the
  // run fails.
  void Infer(std::string_view body, HttpResponder respond, size_t json_bytes = std::string_view::npos);
  // The outcome of a request submitted by another front end: `status` 200 with the rows of
  // each requested output (request.outputs order, n rows each), or the HTTP status Infer
  // would answer (503 queue full or stopping, 504 timeout, 500 run failed) and its message.
  // Called once, from a batch thread (or the caller's, when refused at once).
  using InferDone =
      std::function<void(int status, const std::string& error, std::vector<std::vector<uint8_t>> results)>;
  // Queues a request already checked against signature() (e.g. built with AddInferInput).
  void Submit(InferRequest request, InferDone done);
  const ModelSignature& signature() const { return signature_; }
  // Finishes every queued request (their batches still run), then joins the threads;
  // requests arriving meanwhile get 503. Idempotent.
  void Stop();

  const std::string& name() const { return name_; }
  const std::string& version() const { return version_; }
  int max_batch_size() const { return max_batch_; }
  int compiled_batch_size() const { return batch_; }  // the largest bucket
  // The batch buckets the workers run, ascending (up to the one holding max_batch_size).
  const std::vector<int64_t>& buckets() const { return buckets_; }
  const BatchingConfig& config() const { return config_; }
  const runtime::Model& model() const { return *model_; }
  // KServe model metadata: {"name","versions":[version],"platform":"kiln","inputs","outputs",
  // "parameters"} with each tensor's batch dim as -1.
  std::string MetadataJson() const;
  ModelStats Stats() const;

 private:
  struct Job;
  ModelInstance(std::string name, std::string version, std::shared_ptr<const runtime::Model> model,
                BatchingConfig config, int batch);
  using BucketSessions = std::vector<std::unique_ptr<runtime::Session>>;  // one per buckets_ entry
  void WorkerLoop(const BucketSessions& sessions);
  void RunBatch(const BucketSessions& sessions, std::vector<std::shared_ptr<Job>>& jobs,
                std::chrono::steady_clock::time_point batch_start);
  void RecordFailure(double seconds);
  void Enqueue(std::shared_ptr<Job> job);

  std::string name_, version_;
  std::shared_ptr<const runtime::Model> model_;
  BatchingConfig config_;
  ModelSignature signature_;
  int batch_ = 1;
  int max_batch_ = 1;
  std::vector<int64_t> buckets_;
  std::vector<BucketSessions> sessions_;  // per worker
  std::vector<std::thread> workers_;

  std::mutex mu_;  // queue_, stopping_
  std::condition_variable cv_;
  std::deque<std::shared_ptr<Job>> queue_;
  bool stopping_ = false;
  std::mutex stop_mu_;
  bool stopped_ = false;

  mutable std::mutex stats_mu_;
  ModelStats stats_;
};

// Prometheus text format 0.0.4 for the given model versions: each family written once, with
// a sample per version labelled model="<name>",version="<v>". Families (Triton's names with
// the kiln_ prefix): kiln_inference_request_success, kiln_inference_request_failure,
// kiln_inference_count, kiln_inference_exec_count, kiln_inference_padding_count (counters);
// kiln_inference_request_duration_us, kiln_inference_queue_duration_us,
// kiln_inference_compute_input_duration_us, kiln_inference_compute_infer_duration_us,
// kiln_inference_compute_output_duration_us (cumulative microseconds); kiln_batch_size
// (histogram of samples per run), kiln_request_latency_seconds (histogram).
std::string MetricsText(const std::vector<std::shared_ptr<ModelInstance>>& instances);

}  // namespace kiln::serve
