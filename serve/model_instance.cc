#include "serve/model_instance.h"

#include <chrono>
#include <cstdio>
#include <cstring>
#include <map>
#include <nlohmann/json.hpp>

namespace kiln::serve {

using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

namespace {

json VariableBatchShape(const Shape& s) {
  json j = json::array();
  for (size_t i = 0; i < s.size(); ++i) j.push_back(i == 0 ? int64_t{-1} : s[i]);
  return j;
}

json TensorMetadata(const runtime::TensorSpec& s) {
  return {{"name", s.name}, {"datatype", KServeDatatype(s.dtype)}, {"shape", VariableBatchShape(s.shape)}};
}

uint64_t Micros(Clock::duration d) {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::microseconds>(d).count());
}

void Observe(const std::vector<double>& bounds, std::vector<uint64_t>& counts, double v) {
  size_t i = 0;
  while (i < bounds.size() && v > bounds[i]) ++i;
  counts[i]++;
}

}  // namespace

struct ModelInstance::Job {
  InferRequest request;
  Clock::time_point received, enqueued, deadline;
  HttpResponder respond;  // an HTTP request's, or
  InferDone done;         // another front end's (gRPC)
  std::vector<std::vector<uint8_t>> results;
  // Answers with an error (the HTTP status and the message).
  void Fail(int status, const std::string& message) {
    if (done) {
      done(status, message, {});
    } else {
      respond(JsonErrorResponse(status, message));
    }
  }
};

ModelInstance::ModelInstance(std::string name, std::string version, std::shared_ptr<const runtime::Model> model,
                             BatchingConfig config, int batch)
    : name_(std::move(name)),
      version_(std::move(version)),
      model_(std::move(model)),
      config_(config),
      batch_(batch),
      max_batch_(config.max_batch_size > 0 ? config.max_batch_size : batch) {
  // Sessions for every bucket up to the smallest that holds max_batch_ samples.
  for (int64_t b : model_->info().batch_sizes) {
    buckets_.push_back(b);
    if (b >= max_batch_) break;
  }
  signature_.inputs = model_->executable(buckets_.back()).inputs();
  signature_.outputs = model_->executable(buckets_.back()).outputs();
  signature_.max_batch = max_batch_;
  for (int b = 1; b < max_batch_; b *= 2) stats_.batch_bounds.push_back(b);
  stats_.batch_bounds.push_back(max_batch_);
  stats_.batch_counts.assign(stats_.batch_bounds.size() + 1, 0);
  stats_.latency_bounds = {0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5};
  stats_.latency_counts.assign(stats_.latency_bounds.size() + 1, 0);
}

StatusOr<std::shared_ptr<ModelInstance>> ModelInstance::Create(std::string name, std::string version,
                                                               std::shared_ptr<const runtime::Model> model,
                                                               BatchingConfig config) {
  if (!model) return InvalidArgument("serve: no model");
  // The largest batch bucket (every bucket has the same signature but the batch dim).
  const int64_t largest = model->info().batch_sizes.empty() ? 0 : model->info().batch_sizes.back();
  const runtime::Executable& exe = model->executable(largest);
  int64_t batch = -1;
  auto check = [&](const runtime::TensorSpec& s, const char* role) -> Status {
    if (s.shape.empty()) {
      return InvalidArgument(std::string("serve: ") + role + " '" + s.name + "' is a scalar; batching needs [N, ...]");
    }
    if (batch < 0) batch = s.shape[0];
    if (s.shape[0] != batch || batch < 1) {
      return InvalidArgument(std::string("serve: ") + role + " '" + s.name + "' " + ShapeToString(s.shape) +
                             " does not have the batch dim N=" + std::to_string(batch) + " first");
    }
    if (s.dtype != DType::kF32 && s.dtype != DType::kS32) {
      return InvalidArgument(std::string("serve: ") + role + " '" + s.name + "' has dtype " +
                             std::string(DTypeName(s.dtype)) + "; the server takes f32 and s32");
    }
    return OkStatus();
  };
  if (exe.inputs().empty()) return InvalidArgument("serve: the model has no inputs");
  for (const auto& s : exe.inputs()) RETURN_IF_ERROR(check(s, "input"));
  for (const auto& s : exe.outputs()) RETURN_IF_ERROR(check(s, "output"));
  if (config.max_batch_size < 0 || config.max_batch_size > batch) {
    return InvalidArgument("serve: max_batch_size " + std::to_string(config.max_batch_size) + " must be in [1, " +
                           std::to_string(batch) + "], the largest batch the artifact was compiled for (0 = that batch)");
  }
  if (config.batch_delay_us < 0) return InvalidArgument("serve: the batch delay must be >= 0");
  if (config.instances < 1) return InvalidArgument("serve: instances (workers) must be >= 1");
  if (config.max_queue < 1) return InvalidArgument("serve: the queue must hold at least 1 request");
  if (config.request_timeout_ms < 0) return InvalidArgument("serve: the request timeout must be >= 0");
  return std::shared_ptr<ModelInstance>(
      new ModelInstance(std::move(name), std::move(version), std::move(model), config, static_cast<int>(batch)));
}

ModelInstance::~ModelInstance() { Stop(); }

Status ModelInstance::Start() {
  for (int i = 0; i < config_.instances; ++i) {
    std::vector<std::unique_ptr<runtime::Session>> per_bucket;
    for (int64_t b : buckets_) {
      ASSIGN_OR_RETURN(auto session, model_->NewSession(b));
      per_bucket.push_back(std::move(session));
    }
    sessions_.push_back(std::move(per_bucket));
  }
  // Warm-up (Triton's model_warmup): one run of every session on zeros, so that its prepack
  // steps (weight reorders, batch-norm folding) and first-touch page faults happen here and
  // not in the first requests' latency.
  for (auto& per_bucket : sessions_) {
    for (auto& session : per_bucket) {
      const runtime::Executable& exe = session->executable();
      std::vector<Tensor> inputs;
      std::vector<const Tensor*> in_ptrs;
      for (const auto& spec : exe.inputs()) {
        Tensor& t = inputs.emplace_back(spec.dtype, spec.shape);
        std::memset(t.data(), 0, static_cast<size_t>(t.size_bytes()));
        in_ptrs.push_back(&t);
      }
      std::vector<Tensor> outputs(exe.outputs().size());
      std::vector<Tensor*> out_ptrs;
      for (auto& t : outputs) out_ptrs.push_back(&t);
      Status s = session->Run(in_ptrs, out_ptrs);
      if (!s.ok()) return s.WithContext("warming up model '" + name_ + "' version " + version_);
    }
  }
  for (auto& s : sessions_) workers_.emplace_back([this, p = &s] { WorkerLoop(*p); });
  return OkStatus();
}

void ModelInstance::RecordFailure(double seconds) {
  std::lock_guard<std::mutex> lock(stats_mu_);
  stats_.request_failure++;
  stats_.latency_sum += seconds;
  Observe(stats_.latency_bounds, stats_.latency_counts, seconds);
}

void ModelInstance::Infer(std::string_view body, HttpResponder respond, size_t json_bytes) {
  auto received = Clock::now();
  auto fail = [&](int status, const std::string& message) {
    RecordFailure(std::chrono::duration<double>(Clock::now() - received).count());
    respond(JsonErrorResponse(status, message));
  };
  auto parsed = ParseInferRequest(body, signature_, json_bytes);
  if (!parsed.ok()) return fail(400, parsed.status().message());
  auto job = std::make_shared<Job>();
  job->request = std::move(*parsed);
  job->received = received;
  job->respond = std::move(respond);
  Enqueue(std::move(job));
}

void ModelInstance::Submit(InferRequest request, InferDone done) {
  auto job = std::make_shared<Job>();
  job->request = std::move(request);
  job->received = Clock::now();
  job->done = std::move(done);
  Enqueue(std::move(job));
}

void ModelInstance::Enqueue(std::shared_ptr<Job> job) {
  job->enqueued = Clock::now();
  job->deadline = config_.request_timeout_ms > 0
                      ? job->enqueued + std::chrono::milliseconds(config_.request_timeout_ms)
                      : Clock::time_point::max();
  std::string refused;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) {
      refused = "model '" + name_ + "' version " + version_ + " is being unloaded or shut down";
    } else if (static_cast<int>(queue_.size()) >= config_.max_queue) {
      refused = "the queue of model '" + name_ + "' is full (" + std::to_string(config_.max_queue) +
                " requests wait already): retry later";
    } else {
      queue_.push_back(job);
    }
  }
  if (!refused.empty()) {
    RecordFailure(std::chrono::duration<double>(Clock::now() - job->received).count());
    return job->Fail(503, refused);
  }
  cv_.notify_all();
}

void ModelInstance::RunBatch(const std::vector<std::unique_ptr<runtime::Session>>& sessions,
                             std::vector<std::shared_ptr<Job>>& jobs, Clock::time_point batch_start) {
  int samples = 0;
  for (const auto& j : jobs) samples += j->request.n;
  // The smallest bucket that holds the batch (samples <= max_batch_ <= buckets_.back()).
  size_t bucket = 0;
  while (bucket + 1 < buckets_.size() && buckets_[bucket] < samples) ++bucket;
  runtime::Session* session = sessions[bucket].get();
  const auto& in_specs = session->executable().inputs();
  const auto& out_specs = session->executable().outputs();
  // Pack: rows of each request in order, zero padding after them.
  std::vector<Tensor> inputs;
  std::vector<const Tensor*> in_ptrs;
  inputs.reserve(in_specs.size());
  for (size_t i = 0; i < in_specs.size(); ++i) {
    Tensor& t = inputs.emplace_back(in_specs[i].dtype, in_specs[i].shape);
    size_t at = 0;
    for (const auto& j : jobs) {
      const auto& rows = j->request.inputs[i];
      std::memcpy(static_cast<uint8_t*>(t.data()) + at, rows.data(), rows.size());
      at += rows.size();
    }
    std::memset(static_cast<uint8_t*>(t.data()) + at, 0, static_cast<size_t>(t.size_bytes()) - at);
    in_ptrs.push_back(&t);
  }
  std::vector<Tensor> outputs(out_specs.size());
  std::vector<Tensor*> out_ptrs;
  for (auto& t : outputs) out_ptrs.push_back(&t);
  auto infer_start = Clock::now();
  Status st = session->Run(in_ptrs, out_ptrs);
  auto infer_end = Clock::now();
  int row = 0;
  std::vector<uint64_t> output_us(jobs.size(), 0);
  std::vector<HttpResponse> responses(jobs.size());
  for (size_t r = 0; r < jobs.size(); ++r) {
    auto& j = jobs[r];
    const int n = j->request.n;
    auto out_start = Clock::now();
    if (st.ok()) {
      std::vector<std::vector<uint8_t>> results;
      for (int k : j->request.outputs) {
        const Tensor& t = outputs[static_cast<size_t>(k)];
        size_t row_bytes = static_cast<size_t>(t.size_bytes() / t.shape()[0]);
        const auto* base = static_cast<const uint8_t*>(t.data()) + row_bytes * static_cast<size_t>(row);
        results.emplace_back(base, base + row_bytes * static_cast<size_t>(n));
      }
      if (j->done) {  // the front end writes its own response
        j->results = std::move(results);
        output_us[r] = Micros(Clock::now() - out_start);
        row += n;
        continue;
      }
      HttpResponse& response = responses[r];
      size_t header_bytes = std::string::npos;
      response.body = WriteInferResponse(name_, version_, j->request, signature_, results, &header_bytes);
      if (header_bytes != std::string::npos) {
        response.content_type = "application/octet-stream";
        response.headers.emplace_back("Inference-Header-Content-Length", std::to_string(header_bytes));
      }
      output_us[r] = Micros(Clock::now() - out_start);
    } else {
      responses[r] = JsonErrorResponse(500, "the run of model '" + name_ + "' failed: " + st.message());
    }
    row += n;
  }
  // Counted before the answers go out, so a client that has its answer sees it counted.
  auto done = Clock::now();
  {
    std::lock_guard<std::mutex> lock(stats_mu_);
    stats_.exec_count++;
    stats_.padding_count += static_cast<uint64_t>(buckets_[bucket] - samples);
    Observe(stats_.batch_bounds, stats_.batch_counts, samples);
    for (size_t r = 0; r < jobs.size(); ++r) {
      const auto& j = jobs[r];
      double seconds = std::chrono::duration<double>(done - j->received).count();
      stats_.latency_sum += seconds;
      Observe(stats_.latency_bounds, stats_.latency_counts, seconds);
      if (!st.ok()) {
        stats_.request_failure++;
        continue;
      }
      stats_.request_success++;
      stats_.inference_count += static_cast<uint64_t>(j->request.n);
      stats_.request_duration_us += Micros(done - j->received);
      stats_.queue_duration_us += Micros(batch_start - j->enqueued);
      stats_.compute_input_duration_us += Micros(infer_start - batch_start);
      stats_.compute_infer_duration_us += Micros(infer_end - infer_start);
      stats_.compute_output_duration_us += output_us[r];
    }
  }
  for (size_t r = 0; r < jobs.size(); ++r) {
    Job& j = *jobs[r];
    if (!j.done) {
      j.respond(std::move(responses[r]));
    } else if (st.ok()) {
      j.done(200, "", std::move(j.results));
    } else {
      j.done(500, "the run of model '" + name_ + "' failed: " + st.message(), {});
    }
  }
}

void ModelInstance::WorkerLoop(const std::vector<std::unique_ptr<runtime::Session>>& sessions) {
  const auto delay = std::chrono::microseconds(config_.batch_delay_us);
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    cv_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
    if (queue_.empty()) return;  // stopping, nothing left
    // Wait for more requests until the batch is full or the first request's delay is over.
    auto deadline = queue_.front()->enqueued + delay;
    for (;;) {
      int queued = 0;
      for (const auto& j : queue_) queued += j->request.n;
      if (queued >= max_batch_ || stopping_) break;
      if (cv_.wait_until(lock, deadline) == std::cv_status::timeout) break;
      if (queue_.empty()) break;
    }
    if (queue_.empty()) continue;
    std::vector<std::shared_ptr<Job>> jobs, expired;
    int samples = 0;
    auto now = Clock::now();
    while (!queue_.empty() && samples + queue_.front()->request.n <= max_batch_) {
      std::shared_ptr<Job> j = std::move(queue_.front());
      queue_.pop_front();
      if (now > j->deadline) {
        expired.push_back(std::move(j));
        continue;
      }
      samples += j->request.n;
      jobs.push_back(std::move(j));
    }
    lock.unlock();
    for (auto& j : expired) {
      RecordFailure(std::chrono::duration<double>(now - j->received).count());
      j->Fail(504, "the request waited longer than the request timeout of " +
                       std::to_string(config_.request_timeout_ms) + " ms in the queue");
    }
    if (!jobs.empty()) RunBatch(sessions, jobs, now);
    lock.lock();
  }
}

void ModelInstance::Stop() {
  std::lock_guard<std::mutex> guard(stop_mu_);
  if (stopped_) return;
  stopped_ = true;
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  for (auto& w : workers_) w.join();
  workers_.clear();
  std::deque<std::shared_ptr<Job>> left;
  {
    std::lock_guard<std::mutex> lock(mu_);
    left.swap(queue_);
  }
  for (auto& j : left) j->Fail(503, "the server shut down before the request ran");
  sessions_.clear();
}

std::string ModelInstance::MetadataJson() const {
  json inputs = json::array(), outputs = json::array();
  for (const auto& spec : signature_.inputs) inputs.push_back(TensorMetadata(spec));
  for (const auto& spec : signature_.outputs) outputs.push_back(TensorMetadata(spec));
  json j = {{"name", name_},
            {"versions", {version_}},
            {"platform", "kiln"},
            {"inputs", inputs},
            {"outputs", outputs},
            {"parameters",
             {{"max_batch_size", max_batch_},
              {"compiled_batch_size", batch_},
              {"batch_buckets", buckets_},
              {"batch_delay_us", config_.batch_delay_us},
              {"instances", config_.instances}}}};
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

ModelStats ModelInstance::Stats() const {
  std::lock_guard<std::mutex> lock(stats_mu_);
  return stats_;
}

std::string MetricsText(const std::vector<std::shared_ptr<ModelInstance>>& instances) {
  std::vector<std::pair<std::string, ModelStats>> rows;
  for (const auto& m : instances) {
    // Label values escaped as Prometheus asks (backslash, quote, newline).
    auto esc = [](const std::string& s) {
      std::string o;
      for (char c : s) {
        if (c == '\\' || c == '"') o += '\\';
        if (c == '\n') {
          o += "\\n";
          continue;
        }
        o += c;
      }
      return o;
    };
    rows.emplace_back("model=\"" + esc(m->name()) + "\",version=\"" + esc(m->version()) + "\"", m->Stats());
  }
  std::string out;
  auto counter = [&](const char* name, const char* help, uint64_t ModelStats::*field) {
    out += std::string("# HELP ") + name + " " + help + "\n# TYPE " + name + " counter\n";
    for (const auto& [labels, s] : rows) out += std::string(name) + "{" + labels + "} " + std::to_string(s.*field) + "\n";
  };
  counter("kiln_inference_request_success", "Inference requests answered with outputs.", &ModelStats::request_success);
  counter("kiln_inference_request_failure", "Inference requests answered with an error.", &ModelStats::request_failure);
  counter("kiln_inference_count", "Samples inferred (a request of batch n counts n).", &ModelStats::inference_count);
  counter("kiln_inference_exec_count", "Batched runs of the compiled graph.", &ModelStats::exec_count);
  counter("kiln_inference_padding_count",
          "Zero samples computed to fill a batch bucket (0 when every batch size is compiled).",
          &ModelStats::padding_count);
  counter("kiln_inference_request_duration_us", "Cumulative end-to-end request time, microseconds.",
          &ModelStats::request_duration_us);
  counter("kiln_inference_queue_duration_us", "Cumulative time requests waited in the queue, microseconds.",
          &ModelStats::queue_duration_us);
  counter("kiln_inference_compute_input_duration_us", "Cumulative time packing inputs, microseconds.",
          &ModelStats::compute_input_duration_us);
  counter("kiln_inference_compute_infer_duration_us", "Cumulative time running the graph, microseconds.",
          &ModelStats::compute_infer_duration_us);
  counter("kiln_inference_compute_output_duration_us", "Cumulative time writing outputs, microseconds.",
          &ModelStats::compute_output_duration_us);
  auto histogram = [&](const char* name, const char* help, bool batch) {
    out += std::string("# HELP ") + name + " " + help + "\n# TYPE " + name + " histogram\n";
    char buf[64];
    for (const auto& [labels, s] : rows) {
      const auto& bounds = batch ? s.batch_bounds : s.latency_bounds;
      const auto& counts = batch ? s.batch_counts : s.latency_counts;
      uint64_t cumulative = 0;
      for (size_t i = 0; i <= bounds.size(); ++i) {
        cumulative += counts[i];
        std::string le = "+Inf";
        if (i < bounds.size()) {
          std::snprintf(buf, sizeof buf, "%g", bounds[i]);
          le = buf;
        }
        out += std::string(name) + "_bucket{" + labels + ",le=\"" + le + "\"} " + std::to_string(cumulative) + "\n";
      }
      double sum = batch ? static_cast<double>(s.inference_count) : s.latency_sum;
      std::snprintf(buf, sizeof buf, "%.9g", sum);
      out += std::string(name) + "_sum{" + labels + "} " + buf + "\n";
      out += std::string(name) + "_count{" + labels + "} " + std::to_string(cumulative) + "\n";
    }
  };
  histogram("kiln_batch_size", "Samples per batched run (before padding).", true);
  histogram("kiln_request_latency_seconds", "Inference request latency, parse to response.", false);
  return out;
}

}  // namespace kiln::serve
