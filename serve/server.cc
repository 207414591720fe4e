#include "serve/server.h"

#include <httplib.h>
#include <pthread.h>
#include <signal.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <future>
#include <limits>
#include <nlohmann/json.hpp>

namespace kiln::serve {

using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

namespace {

constexpr const char* kJson = "application/json";
constexpr int kMaxNesting = 32;

std::string DatatypeName(DType d) { return d == DType::kF32 ? "FP32" : "INT32"; }

// The spec's shape with the batch dim shown as -1 (KServe's variable dim).
json VariableBatchShape(const Shape& s) {
  json j = json::array();
  for (size_t i = 0; i < s.size(); ++i) j.push_back(i == 0 ? int64_t{-1} : s[i]);
  return j;
}

json TensorMetadata(const runtime::TensorSpec& s) {
  return {{"name", s.name}, {"datatype", DatatypeName(s.dtype)}, {"shape", VariableBatchShape(s.shape)}};
}

std::string ErrorBody(const std::string& message) { return json{{"error", message}}.dump(); }

std::string ShapeText(const json& shape) { return shape.dump(); }

// Appends the numbers of a (possibly nested) JSON array to `out` as `dtype`, row-major.
Status Flatten(const json& j, DType dtype, int depth, const std::string& input, std::vector<uint8_t>* out,
               int64_t max_elements) {
  if (depth > kMaxNesting) return InvalidArgument("input '" + input + "': data is nested too deeply");
  if (j.is_array()) {
    for (const json& e : j) RETURN_IF_ERROR(Flatten(e, dtype, depth + 1, input, out, max_elements));
    return OkStatus();
  }
  if (static_cast<int64_t>(out->size()) / 4 >= max_elements) {
    return InvalidArgument("input '" + input + "': data has more elements than its shape");
  }
  if (dtype == DType::kF32) {
    if (!j.is_number()) {
      return InvalidArgument("input '" + input + "': FP32 data must be numbers, got " + std::string(j.type_name()));
    }
    float v = static_cast<float>(j.get<double>());
    const auto* b = reinterpret_cast<const uint8_t*>(&v);
    out->insert(out->end(), b, b + 4);
  } else {
    if (!j.is_number_integer()) {
      return InvalidArgument("input '" + input + "': INT32 data must be integers, got " + std::string(j.type_name()) +
                             (j.is_number_float() ? " (a float)" : ""));
    }
    int64_t w = j.is_number_unsigned() ? static_cast<int64_t>(std::min<uint64_t>(j.get<uint64_t>(), 1ull << 40))
                                       : j.get<int64_t>();
    if (w < std::numeric_limits<int32_t>::min() || w > std::numeric_limits<int32_t>::max()) {
      return InvalidArgument("input '" + input + "': INT32 value " + std::to_string(w) + " is out of range");
    }
    int32_t v = static_cast<int32_t>(w);
    const auto* b = reinterpret_cast<const uint8_t*>(&v);
    out->insert(out->end(), b, b + 4);
  }
  return OkStatus();
}

}  // namespace

// ---------------------------------------------------------------------------------------
// Metrics.

void Metrics::Histogram::Observe(double v) {
  size_t i = 0;
  while (i < bounds.size() && v > bounds[i]) ++i;
  counts[i]++;
  sum += v;
  count++;
}

void Metrics::Histogram::Write(std::string* out, const std::string& name, const std::string& help,
                               const std::string& labels) const {
  *out += "# HELP " + name + " " + help + "\n# TYPE " + name + " histogram\n";
  uint64_t cumulative = 0;
  char buf[64];
  for (size_t i = 0; i <= bounds.size(); ++i) {
    cumulative += counts[i];
    std::string le = "+Inf";
    if (i < bounds.size()) {
      std::snprintf(buf, sizeof buf, "%g", bounds[i]);
      le = buf;
    }
    *out += name + "_bucket{" + labels + ",le=\"" + le + "\"} " + std::to_string(cumulative) + "\n";
  }
  std::snprintf(buf, sizeof buf, "%.9g", sum);
  *out += name + "_sum{" + labels + "} " + buf + "\n";
  *out += name + "_count{" + labels + "} " + std::to_string(count) + "\n";
}

Metrics::Metrics(int max_batch_size) {
  for (int b = 1; b < max_batch_size; b *= 2) batch_size_.bounds.push_back(b);
  batch_size_.bounds.push_back(max_batch_size);
  batch_requests_.bounds = batch_size_.bounds;
  latency_.bounds = {0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5};
  for (Histogram* h : {&batch_size_, &batch_requests_, &latency_}) h->counts.assign(h->bounds.size() + 1, 0);
}

void Metrics::RecordRequest(bool ok, double seconds) {
  std::lock_guard<std::mutex> lock(mu_);
  requests_++;
  if (!ok) failures_++;
  latency_.Observe(seconds);
}

void Metrics::RecordBatch(int samples, int requests) {
  std::lock_guard<std::mutex> lock(mu_);
  runs_++;
  batch_size_.Observe(samples);
  batch_requests_.Observe(requests);
}

std::string Metrics::Text(const std::string& model_name) const {
  std::lock_guard<std::mutex> lock(mu_);
  std::string labels = "model=\"" + model_name + "\"";
  std::string out;
  auto counter = [&](const std::string& name, const std::string& help, uint64_t v) {
    out += "# HELP " + name + " " + help + "\n# TYPE " + name + " counter\n";
    out += name + "{" + labels + "} " + std::to_string(v) + "\n";
  };
  counter("kiln_requests_total", "Inference requests received (POST .../infer).", requests_);
  counter("kiln_request_failures_total", "Inference requests answered with an error.", failures_);
  counter("kiln_inference_runs_total", "Batched runs of the compiled graph.", runs_);
  batch_size_.Write(&out, "kiln_batch_size", "Samples per batched run (before padding).", labels);
  batch_requests_.Write(&out, "kiln_batch_requests", "Requests packed into one batched run.", labels);
  latency_.Write(&out, "kiln_request_latency_seconds", "Inference request latency, parse to response.", labels);
  return out;
}

// ---------------------------------------------------------------------------------------
// The server.

struct InferenceServer::Job {
  int n = 0;                                // samples
  std::vector<std::vector<uint8_t>> inputs;  // per model input: n rows, row-major
  std::vector<int> outputs;                  // requested output indices
  json id;                                   // echoed when present
  Clock::time_point enqueued;
  std::vector<std::vector<uint8_t>> results;  // per requested output: n rows
  std::promise<Status> done;
};

InferenceServer::InferenceServer(std::shared_ptr<const runtime::Model> model, ServerOptions options, int batch)
    : model_(std::move(model)),
      options_(std::move(options)),
      batch_(batch),
      max_batch_(options_.max_batch_size > 0 ? options_.max_batch_size : batch),
      metrics_(max_batch_) {
  model_name_ = options_.model_name.empty() ? model_->name() : options_.model_name;
  if (model_name_.empty()) model_name_ = "model";
}

StatusOr<std::unique_ptr<InferenceServer>> InferenceServer::Create(std::shared_ptr<const runtime::Model> model,
                                                                   ServerOptions options) {
  if (!model) return InvalidArgument("serve: no model");
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
    return OkStatus();
  };
  for (const auto& s : model->inputs()) RETURN_IF_ERROR(check(s, "input"));
  for (const auto& s : model->outputs()) RETURN_IF_ERROR(check(s, "output"));
  if (model->inputs().empty()) return InvalidArgument("serve: the model has no inputs");
  if (options.max_batch_size < 0 || options.max_batch_size > batch) {
    return InvalidArgument("serve: --max-batch-size " + std::to_string(options.max_batch_size) +
                           " must be in [1, " + std::to_string(batch) +
                           "], the batch the artifact was compiled for (0 = that batch)");
  }
  if (options.batch_delay_us < 0) return InvalidArgument("serve: the batch delay must be >= 0");
  if (options.workers < 1 || options.http_threads < 1) {
    return InvalidArgument("serve: workers and http threads must be >= 1");
  }
  if (options.max_body_bytes < 1) return InvalidArgument("serve: the body size limit must be >= 1 byte");
  return std::unique_ptr<InferenceServer>(new InferenceServer(std::move(model), std::move(options),
                                                              static_cast<int>(batch)));
}

InferenceServer::~InferenceServer() { Shutdown(); }

StatusOr<std::shared_ptr<InferenceServer::Job>> InferenceServer::ParseInfer(const std::string& body) const {
  json req = json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (req.is_discarded()) return InvalidArgument("malformed JSON in the request body");
  if (!req.is_object()) return InvalidArgument("the request body must be a JSON object");
  auto job = std::make_shared<Job>();
  if (req.contains("id")) {
    if (!req["id"].is_string()) return InvalidArgument("\"id\" must be a string");
    job->id = req["id"];
  }
  if (!req.contains("inputs") || !req["inputs"].is_array() || req["inputs"].empty()) {
    return InvalidArgument("the request needs a non-empty \"inputs\" array");
  }
  const auto& specs = model_->inputs();
  job->inputs.resize(specs.size());
  std::vector<bool> seen(specs.size(), false);
  job->n = -1;
  for (const json& in : req["inputs"]) {
    if (!in.is_object()) return InvalidArgument("each entry of \"inputs\" must be an object");
    if (!in.contains("name") || !in["name"].is_string()) return InvalidArgument("an input has no \"name\" string");
    std::string name = in["name"];
    int index = model_->executable().InputIndex(name);
    if (index < 0) {
      std::string known;
      for (const auto& s : specs) known += (known.empty() ? "'" : ", '") + s.name + "'";
      return InvalidArgument("unknown input '" + name + "' (the model's inputs: " + known + ")");
    }
    const runtime::TensorSpec& spec = specs[static_cast<size_t>(index)];
    if (seen[static_cast<size_t>(index)]) return InvalidArgument("input '" + name + "' is given twice");
    seen[static_cast<size_t>(index)] = true;
    if (!in.contains("datatype") || !in["datatype"].is_string()) {
      return InvalidArgument("input '" + name + "' has no \"datatype\" string");
    }
    std::string datatype = in["datatype"];
    if (datatype != DatatypeName(spec.dtype)) {
      return InvalidArgument("input '" + name + "': datatype " + datatype + " but the model expects " +
                             DatatypeName(spec.dtype));
    }
    if (!in.contains("shape") || !in["shape"].is_array()) {
      return InvalidArgument("input '" + name + "' has no \"shape\" array");
    }
    const json& shape = in["shape"];
    std::string expected = "[N";
    for (size_t i = 1; i < spec.shape.size(); ++i) expected += "," + std::to_string(spec.shape[i]);
    expected += "] with 1 <= N <= " + std::to_string(max_batch_);
    bool shape_ok = shape.size() == spec.shape.size();
    for (size_t i = 0; shape_ok && i < shape.size(); ++i) {
      if (!shape[i].is_number_integer()) {
        shape_ok = false;
      } else if (i == 0) {
        int64_t n = shape[i].get<int64_t>();
        shape_ok = n >= 1 && n <= max_batch_;
      } else {
        shape_ok = shape[i].get<int64_t>() == spec.shape[i];
      }
    }
    if (!shape_ok) {
      return InvalidArgument("input '" + name + "': shape " + ShapeText(shape) + " but the model expects " + expected);
    }
    int n = static_cast<int>(shape[0].get<int64_t>());
    if (job->n >= 0 && n != job->n) {
      return InvalidArgument("input '" + name + "' has batch " + std::to_string(n) + " but another input has " +
                             std::to_string(job->n));
    }
    job->n = n;
    if (!in.contains("data")) return InvalidArgument("input '" + name + "' has no \"data\"");
    int64_t row_elements = NumElements(spec.shape) / spec.shape[0];
    int64_t elements = row_elements * n;
    std::vector<uint8_t>& bytes = job->inputs[static_cast<size_t>(index)];
    bytes.reserve(static_cast<size_t>(elements) * 4);
    RETURN_IF_ERROR(Flatten(in["data"], spec.dtype, 0, name, &bytes, elements));
    if (static_cast<int64_t>(bytes.size()) != elements * 4) {
      return InvalidArgument("input '" + name + "': shape " + ShapeText(shape) + " needs " + std::to_string(elements) +
                             " values, \"data\" has " + std::to_string(bytes.size() / 4));
    }
  }
  for (size_t i = 0; i < specs.size(); ++i) {
    if (!seen[i]) return InvalidArgument("input '" + specs[i].name + "' is missing");
  }
  if (req.contains("outputs")) {
    if (!req["outputs"].is_array()) return InvalidArgument("\"outputs\" must be an array");
    for (const json& o : req["outputs"]) {
      if (!o.is_object() || !o.contains("name") || !o["name"].is_string()) {
        return InvalidArgument("each entry of \"outputs\" needs a \"name\" string");
      }
      int index = model_->executable().OutputIndex(o["name"].get<std::string>());
      if (index < 0) return InvalidArgument("unknown output '" + o["name"].get<std::string>() + "'");
      job->outputs.push_back(index);
    }
  }
  if (job->outputs.empty()) {
    for (size_t i = 0; i < model_->outputs().size(); ++i) job->outputs.push_back(static_cast<int>(i));
  }
  return job;
}

void InferenceServer::SetUpRoutes() {
  httplib::Server& s = *http_;
  auto reply = [](httplib::Response& res, int status, const json& body) {
    res.status = status;
    res.set_content(body.dump(), kJson);
  };
  s.Get("/v2/health/live", [reply](const httplib::Request&, httplib::Response& res) {
    reply(res, 200, {{"live", true}});
  });
  s.Get("/v2/health/ready", [this, reply](const httplib::Request&, httplib::Response& res) {
    bool ready = !shutting_down_.load();
    reply(res, ready ? 200 : 503, {{"ready", ready}});
  });
  s.Get("/v2", [reply](const httplib::Request&, httplib::Response& res) {
    reply(res, 200, {{"name", "kiln"}, {"version", "1"}, {"extensions", json::array()}});
  });
  s.Get(R"(/v2/models/([^/]+))", [this, reply](const httplib::Request& req, httplib::Response& res) {
    if (req.matches[1] != model_name_) return reply(res, 404, {{"error", "unknown model '" + std::string(req.matches[1]) + "'"}});
    json inputs = json::array(), outputs = json::array();
    for (const auto& spec : model_->inputs()) inputs.push_back(TensorMetadata(spec));
    for (const auto& spec : model_->outputs()) outputs.push_back(TensorMetadata(spec));
    reply(res, 200,
          {{"name", model_name_}, {"versions", {"1"}}, {"platform", "kiln"}, {"inputs", inputs}, {"outputs", outputs},
           {"parameters", {{"max_batch_size", max_batch_}, {"compiled_batch_size", batch_},
                           {"batch_delay_us", options_.batch_delay_us}}}});
  });
  s.Get(R"(/v2/models/([^/]+)/ready)", [this, reply](const httplib::Request& req, httplib::Response& res) {
    if (req.matches[1] != model_name_) return reply(res, 404, {{"error", "unknown model '" + std::string(req.matches[1]) + "'"}});
    reply(res, 200, {{"name", model_name_}, {"ready", !shutting_down_.load()}});
  });
  s.Post(R"(/v2/models/([^/]+)/infer)", [this, reply](const httplib::Request& req, httplib::Response& res) {
    auto start = Clock::now();
    auto finish = [&](int status, const json& body) {
      reply(res, status, body);
      metrics_.RecordRequest(status == 200, std::chrono::duration<double>(Clock::now() - start).count());
    };
    if (req.matches[1] != model_name_) return finish(404, {{"error", "unknown model '" + std::string(req.matches[1]) + "'"}});
    if (shutting_down_.load()) return finish(503, {{"error", "the server is shutting down"}});
    auto job = ParseInfer(req.body);
    if (!job.ok()) return finish(400, {{"error", job.status().message()}});
    std::shared_ptr<Job> j = *job;
    j->enqueued = Clock::now();
    std::future<Status> done = j->done.get_future();
    {
      std::lock_guard<std::mutex> lock(mu_);
      queue_.push_back(j);
    }
    cv_.notify_all();
    Status st = done.get();
    if (!st.ok()) return finish(500, {{"error", st.message()}});
    json out = {{"model_name", model_name_}, {"model_version", "1"}};
    if (!j->id.is_null()) out["id"] = j->id;
    json outputs = json::array();
    for (size_t k = 0; k < j->outputs.size(); ++k) {
      const runtime::TensorSpec& spec = model_->outputs()[static_cast<size_t>(j->outputs[k])];
      Shape shape = spec.shape;
      shape[0] = j->n;
      json data = json::array();
      const std::vector<uint8_t>& bytes = j->results[k];
      size_t count = bytes.size() / 4;
      if (spec.dtype == DType::kF32) {
        const auto* p = reinterpret_cast<const float*>(bytes.data());
        for (size_t i = 0; i < count; ++i) data.push_back(p[i]);
      } else {
        const auto* p = reinterpret_cast<const int32_t*>(bytes.data());
        for (size_t i = 0; i < count; ++i) data.push_back(p[i]);
      }
      outputs.push_back({{"name", spec.name}, {"datatype", DatatypeName(spec.dtype)}, {"shape", shape}, {"data", data}});
    }
    out["outputs"] = outputs;
    finish(200, out);
  });
  s.Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
    res.set_content(MetricsText(), "text/plain; version=0.0.4");
  });
  // Errors httplib raises itself (413 over the size limit, 404 for unknown paths) get a
  // JSON body too.
  s.set_error_handler([this](const httplib::Request& req, httplib::Response& res) {
    if (!res.body.empty()) return;
    std::string message = "HTTP " + std::to_string(res.status);
    if (res.status == 413) {
      message = "request body exceeds the limit of " + std::to_string(options_.max_body_bytes) + " bytes";
    } else if (res.status == 404) {
      message = "no endpoint " + req.method + " " + req.path;
    } else if (res.status == 400) {
      message = "malformed HTTP request";
    }
    if (req.path.find("/infer") != std::string::npos) metrics_.RecordRequest(false, 0);
    res.set_content(ErrorBody(message), kJson);
  });
  s.set_exception_handler([](const httplib::Request&, httplib::Response& res, std::exception_ptr ep) {
    std::string what = "internal error";
    try {
      std::rethrow_exception(ep);
    } catch (const std::exception& e) {
      what += std::string(": ") + e.what();
    } catch (...) {
    }
    res.status = 500;
    res.set_content(ErrorBody(what), kJson);
  });
}

void InferenceServer::RunBatch(runtime::Session* session, std::vector<std::shared_ptr<Job>>& jobs) {
  const auto& in_specs = model_->inputs();
  const auto& out_specs = model_->outputs();
  int samples = 0;
  for (const auto& j : jobs) samples += j->n;
  // Pack: rows of each request in order, zero padding after them.
  std::vector<Tensor> inputs;
  std::vector<const Tensor*> in_ptrs;
  inputs.reserve(in_specs.size());
  for (size_t i = 0; i < in_specs.size(); ++i) {
    Tensor& t = inputs.emplace_back(in_specs[i].dtype, in_specs[i].shape);
    size_t at = 0;
    for (const auto& j : jobs) {
      std::memcpy(static_cast<uint8_t*>(t.data()) + at, j->inputs[i].data(), j->inputs[i].size());
      at += j->inputs[i].size();
    }
    in_ptrs.push_back(&t);
  }
  std::vector<Tensor> outputs(out_specs.size());
  std::vector<Tensor*> out_ptrs;
  for (auto& t : outputs) out_ptrs.push_back(&t);
  Status st = session->Run(in_ptrs, out_ptrs);
  metrics_.RecordBatch(samples, static_cast<int>(jobs.size()));
  int row = 0;
  for (auto& j : jobs) {
    if (st.ok()) {
      for (int k : j->outputs) {
        const Tensor& t = outputs[static_cast<size_t>(k)];
        size_t row_bytes = static_cast<size_t>(t.size_bytes() / t.shape()[0]);
        const auto* base = static_cast<const uint8_t*>(t.data()) + row_bytes * static_cast<size_t>(row);
        j->results.emplace_back(base, base + row_bytes * static_cast<size_t>(j->n));
      }
    }
    row += j->n;
    j->done.set_value(st);
  }
}

void InferenceServer::WorkerLoop(runtime::Session* session) {
  const auto delay = std::chrono::microseconds(options_.batch_delay_us);
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    cv_.wait(lock, [&] { return stopping_workers_ || !queue_.empty(); });
    if (queue_.empty()) return;  // stopping, nothing left
    // Wait for more requests until the batch is full or the first request's delay is over.
    auto deadline = queue_.front()->enqueued + delay;
    for (;;) {
      int queued = 0;
      for (const auto& j : queue_) queued += j->n;
      if (queued >= max_batch_ || stopping_workers_) break;
      if (cv_.wait_until(lock, deadline) == std::cv_status::timeout) break;
      if (queue_.empty()) break;
    }
    if (queue_.empty()) continue;
    std::vector<std::shared_ptr<Job>> jobs;
    int samples = 0;
    while (!queue_.empty() && samples + queue_.front()->n <= max_batch_) {
      samples += queue_.front()->n;
      jobs.push_back(queue_.front());
      queue_.pop_front();
    }
    lock.unlock();
    RunBatch(session, jobs);
    lock.lock();
  }
}

Status InferenceServer::Start() {
  for (int i = 0; i < options_.workers; ++i) {
    ASSIGN_OR_RETURN(auto session, model_->NewSession());
    sessions_.push_back(std::move(session));
  }
  http_ = std::make_unique<httplib::Server>();
  int threads = options_.http_threads;
  http_->new_task_queue = [threads] { return new httplib::ThreadPool(static_cast<size_t>(threads)); };
  http_->set_payload_max_length(static_cast<size_t>(options_.max_body_bytes));
  http_->set_keep_alive_max_count(100000);
  http_->set_tcp_nodelay(true);
  SetUpRoutes();
  if (options_.port == 0) {
    port_ = http_->bind_to_any_port(options_.host);
  } else {
    port_ = http_->bind_to_port(options_.host, options_.port) ? options_.port : -1;
  }
  if (port_ <= 0) {
    return InvalidArgument("serve: cannot bind " + options_.host + ":" + std::to_string(options_.port));
  }
  for (auto& s : sessions_) workers_.emplace_back([this, p = s.get()] { WorkerLoop(p); });
  listener_ = std::thread([this] { http_->listen_after_bind(); });
  for (int i = 0; i < 5000 && !http_->is_running(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  if (!http_->is_running()) return Internal("serve: the HTTP listener did not start");
  return OkStatus();
}

void InferenceServer::Shutdown() {
  std::lock_guard<std::mutex> guard(shutdown_mu_);
  if (shut_down_) return;
  shut_down_ = true;
  shutting_down_ = true;
  // 1. Stop accepting; httplib's stop() returns after the listener closed, and the listener
  //    thread ends once the connection threads finished their requests (which still get
  //    their batches run, since the workers keep going).
  if (http_) http_->stop();
  if (listener_.joinable()) listener_.join();
  // 2. Stop the workers once the queue is empty.
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_workers_ = true;
  }
  cv_.notify_all();
  for (auto& w : workers_) w.join();
  workers_.clear();
  std::lock_guard<std::mutex> lock(mu_);
  for (auto& j : queue_) j->done.set_value(Internal("the server shut down before the request ran"));
  queue_.clear();
}

int ServeUntilSignal(const std::string& artifact_path, const ServerOptions& options) {
  // Block SIGTERM/SIGINT in every thread (threads inherit the mask), then wait for them here.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  auto model = runtime::Model::Load(artifact_path);
  if (!model.ok()) {
    std::fprintf(stderr, "kiln serve: %s\n", model.status().ToString().c_str());
    return 1;
  }
  auto server = InferenceServer::Create(*model, options);
  if (!server.ok()) {
    std::fprintf(stderr, "kiln serve: %s\n", server.status().ToString().c_str());
    return 1;
  }
  if (Status s = (*server)->Start(); !s.ok()) {
    std::fprintf(stderr, "kiln serve: %s\n", s.ToString().c_str());
    return 1;
  }
  std::printf("kiln serve: model '%s' ready on http://%s:%d (batch up to %d, delay %lld us)\n",
              (*server)->model_name().c_str(), options.host.c_str(), (*server)->port(), (*server)->max_batch_size(),
              static_cast<long long>(options.batch_delay_us));
  std::fflush(stdout);
  int sig = 0;
  sigwait(&signals, &sig);
  std::printf("kiln serve: %s received, finishing in-flight requests\n", sig == SIGTERM ? "SIGTERM" : "SIGINT");
  std::fflush(stdout);
  (*server)->Shutdown();
  std::printf("kiln serve: stopped\n");
  std::fflush(stdout);
  return 0;
}

}  // namespace kiln::serve
