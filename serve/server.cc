#include "serve/server.h"

#include <malloc.h>
#include <pthread.h>
#include <signal.h>

#include <algorithm>
#include <chrono>
#include <cctype>
#include <csignal>
#include <cstdio>
#include <fstream>
#include <future>
#include <nlohmann/json.hpp>
#include <set>

#include "serve/repository.h"

namespace kiln::serve {

using json = nlohmann::json;

namespace {

constexpr size_t kMaxParseQueue = 1024;

HttpResponse Reply(int status, const json& body) {
  HttpResponse r;
  r.status = status;
  r.body = body.dump(-1, ' ', false, json::error_handler_t::replace);
  return r;
}

int HttpStatusOf(const Status& s) {
  switch (s.code()) {
    case StatusCode::kNotFound: return 404;
    case StatusCode::kFailedPrecondition: return 400;
    case StatusCode::kInvalidArgument: return 400;
    default: return 500;
  }
}

// "/a/b/c" -> {"a","b","c"}; empty segments kept (so "//" does not match a route).
std::vector<std::string> Segments(const std::string& path) {
  std::vector<std::string> out;
  if (path.empty() || path[0] != '/') return out;
  size_t at = 1;
  for (;;) {
    size_t next = path.find('/', at);
    out.push_back(path.substr(at, next == std::string::npos ? std::string::npos : next - at));
    if (next == std::string::npos) break;
    at = next + 1;
  }
  return out;
}

bool VersionLess(const std::string& a, const std::string& b) {
  return a.size() != b.size() ? a.size() < b.size() : a < b;  // numeric folder names, no leading zeros
}

}  // namespace

BatchingConfig BatchingFrom(const ServerOptions& o) {
  BatchingConfig c;
  c.max_batch_size = o.max_batch_size;
  c.batch_delay_us = o.batch_delay_us;
  c.instances = o.workers;
  c.max_queue = o.max_queue;
  c.request_timeout_ms = o.request_timeout_ms;
  return c;
}

StatusOr<std::unique_ptr<InferenceServer>> InferenceServer::Create(std::shared_ptr<const runtime::Model> model,
                                                                   ServerOptions options) {
  if (!model) return InvalidArgument("serve: no model");
  if (options.http_threads < 1) return InvalidArgument("serve: http threads must be >= 1");
  if (options.max_body_bytes < 1) return InvalidArgument("serve: the body size limit must be >= 1 byte");
  std::string name = options.model_name.empty() ? model->name() : options.model_name;
  if (name.empty()) name = "model";
  ASSIGN_OR_RETURN(auto instance, ModelInstance::Create(name, "1", std::move(model), BatchingFrom(options)));
  std::unique_ptr<InferenceServer> server(new InferenceServer(std::move(options)));
  server->model_name_ = name;
  server->models_[name].versions.push_back({"1", std::move(instance), ""});
  return server;
}

StatusOr<std::unique_ptr<InferenceServer>> InferenceServer::CreateFromRepository(const std::string& dir,
                                                                                ServerOptions options) {
  if (options.http_threads < 1) return InvalidArgument("serve: http threads must be >= 1");
  if (options.max_body_bytes < 1) return InvalidArgument("serve: the body size limit must be >= 1 byte");
  ASSIGN_OR_RETURN(std::string root, RepositoryRoot(dir));
  std::unique_ptr<InferenceServer> server(new InferenceServer(std::move(options)));
  server->repository_ = root;
  return server;
}

InferenceServer::~InferenceServer() { Shutdown(); }

int InferenceServer::max_batch_size() const {
  std::lock_guard<std::mutex> lock(registry_mu_);
  if (!repository_.empty() || models_.empty() || models_.begin()->second.versions.empty()) return 0;
  const auto& inst = models_.begin()->second.versions.front().instance;
  return inst ? inst->max_batch_size() : 0;
}

std::vector<std::shared_ptr<ModelInstance>> InferenceServer::Instances() const {
  std::lock_guard<std::mutex> lock(registry_mu_);
  std::vector<std::shared_ptr<ModelInstance>> out;
  for (const auto& [name, entry] : models_) {
    for (const auto& v : entry.versions) {
      if (v.instance) out.push_back(v.instance);
    }
  }
  return out;
}

std::string InferenceServer::MetricsText() const { return serve::MetricsText(Instances()); }

HttpResponse InferenceServer::MetricsResponse() const {
  HttpResponse r;
  r.content_type = "text/plain; version=0.0.4";
  r.body = MetricsText();
  return r;
}

std::vector<std::string> InferenceServer::Extensions() const {
  std::vector<std::string> e = {"binary_tensor_data"};
  if (!repository_.empty()) e.push_back("model_repository");
  return e;
}

std::shared_ptr<ModelInstance> InferenceServer::Find(const std::string& name, const std::string& version, int* status,
                                                     std::string* error) const {
  std::lock_guard<std::mutex> lock(registry_mu_);
  auto it = models_.find(name);
  if (it == models_.end()) {
    *status = 404;
    std::string known;
    for (const auto& [n, e] : models_) known += (known.empty() ? "'" : ", '") + n + "'";
    *error = "unknown model '" + name + "'" + (known.empty() ? "" : " (models: " + known + ")");
    return nullptr;
  }
  const ModelEntry& entry = it->second;
  if (version.empty()) {
    for (auto v = entry.versions.rbegin(); v != entry.versions.rend(); ++v) {
      if (v->instance) return v->instance;
    }
    *status = 503;
    std::string reason = entry.reason;
    for (const auto& v : entry.versions) {
      if (reason.empty() && !v.reason.empty()) reason = "version " + v.version + ": " + v.reason;
    }
    *error = "model '" + name + "' has no ready version" + (reason.empty() ? "" : ": " + reason);
    return nullptr;
  }
  std::string versions;
  for (const auto& v : entry.versions) {
    if (v.version == version) {
      if (v.instance) return v.instance;
      *status = 503;
      *error = "model '" + name + "' version " + version + " is unavailable: " + v.reason;
      return nullptr;
    }
    versions += (versions.empty() ? "" : ", ") + v.version;
  }
  *status = 404;
  *error = "model '" + name + "' has no version '" + version + "' (versions: " + versions + ")";
  return nullptr;
}

StatusOr<std::string> ReadTokenFile(const std::string& path) {
  std::ifstream f(path);
  if (!f) return NotFound("token file " + path + " cannot be read");
  std::string line;
  std::getline(f, line);
  size_t b = line.find_first_not_of(" \t\r"), e = line.find_last_not_of(" \t\r");
  std::string token = b == std::string::npos ? "" : line.substr(b, e - b + 1);
  if (token.empty()) return InvalidArgument("token file " + path + ": the first line is empty");
  for (char c : token) {
    bool ok = std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.' || c == '_' || c == '~' || c == '+' ||
              c == '/' || c == '=';
    if (!ok) return InvalidArgument("token file " + path + ": the token may hold only A-Z a-z 0-9 - . _ ~ + / =");
  }
  return token;
}

void InferenceServer::Handle(HttpRequest req, HttpResponder respond) {
  std::vector<std::string> seg = Segments(req.path);
  // Authentication: liveness is always open; the repository takes the admin token.
  const bool live = seg.size() == 3 && seg[0] == "v2" && seg[1] == "health" && seg[2] == "live";
  const bool repository = seg.size() >= 2 && seg[0] == "v2" && seg[1] == "repository";
  const std::string& token =
      repository && !options_.admin_token.empty() ? options_.admin_token : options_.auth_token;
  if (!live && !token.empty()) {
    std::string auth = req.Header("authorization");
    if (!BearerTokenMatches(auth, token)) {
      HttpResponse r = JsonErrorResponse(401, auth.empty() ? "this endpoint needs \"Authorization: Bearer <token>\""
                                                    : "the bearer token is not valid for this endpoint");
      r.headers.emplace_back("WWW-Authenticate", auth.empty() ? "Bearer" : "Bearer error=\"invalid_token\"");
      return respond(std::move(r));
    }
  }
  const bool get = req.method == "GET";
  auto only = [&](bool allowed, const char* method) {
    if (allowed) return true;
    respond(JsonErrorResponse(405, "use " + std::string(method) + " for " + req.path));
    return false;
  };
  if (seg.size() == 3 && seg[0] == "v2" && seg[1] == "health" && (seg[2] == "live" || seg[2] == "ready")) {
    if (!only(get, "GET")) return;
    if (seg[2] == "live") return respond(Reply(200, {{"live", true}}));
    bool ready = !shutting_down_.load();
    return respond(Reply(ready ? 200 : 503, {{"ready", ready}}));
  }
  if (seg.size() == 1 && seg[0] == "v2") {
    if (!only(get, "GET")) return;
    return respond(Reply(200, {{"name", "kiln"}, {"version", "1"}, {"extensions", Extensions()}}));
  }
  if (seg.size() == 1 && seg[0] == "metrics") {
    if (!only(get, "GET")) return;
    return respond(MetricsResponse());
  }
  if (seg.size() >= 3 && seg[0] == "v2" && seg[1] == "models") return HandleModel(req, seg, respond);
  if (seg.size() >= 3 && seg[0] == "v2" && seg[1] == "repository") {
    if (!only(req.method == "POST", "POST")) return;
    return HandleRepository(req, seg, std::move(respond));
  }
  respond(JsonErrorResponse(404, "no endpoint " + req.method + " " + req.path));
}

void InferenceServer::HandleModel(HttpRequest& req, const std::vector<std::string>& seg, HttpResponder& respond) {
  const std::string& name = seg[2];
  size_t at = 3;
  std::string version;
  if (seg.size() >= 5 && seg[3] == "versions") {
    version = seg[4];
    at = 5;
  }
  std::string action = at < seg.size() ? seg[at] : "";
  if (at + 1 < seg.size() || (action != "" && action != "ready" && action != "infer")) {
    return respond(JsonErrorResponse(404, "no endpoint " + req.method + " " + req.path));
  }
  const bool get = req.method == "GET";
  if ((action == "infer") != (req.method == "POST") || (action != "infer" && !get)) {
    return respond(JsonErrorResponse(405, std::string("use ") + (action == "infer" ? "POST" : "GET") + " for " + req.path));
  }
  int status = 0;
  std::string error;
  std::shared_ptr<ModelInstance> inst = Find(name, version, &status, &error);
  if (action == "ready") {
    if (inst && !shutting_down_.load()) return respond(Reply(200, {{"name", name}, {"ready", true}}));
    if (status == 404) return respond(JsonErrorResponse(404, error));
    return respond(Reply(503, {{"name", name}, {"ready", false}, {"reason", error.empty() ? "shutting down" : error}}));
  }
  if (!inst) return respond(JsonErrorResponse(status, error));
  if (action == "") {
    json meta = json::parse(inst->MetadataJson());
    json versions = json::array();
    {
      std::lock_guard<std::mutex> lock(registry_mu_);
      auto it = models_.find(name);
      if (it != models_.end()) {
        for (const auto& v : it->second.versions) {
          if (v.instance) versions.push_back(v.version);
        }
      }
    }
    meta["versions"] = versions;
    return respond(Reply(200, meta));
  }
  if (shutting_down_.load()) return respond(JsonErrorResponse(503, "the server is shutting down"));
  // Binary tensor data extension: the JSON header's length.
  size_t json_bytes = std::string_view::npos;
  if (std::string h = req.Header("inference-header-content-length"); !h.empty()) {
    bool digits = h.size() <= 18;
    for (char c : h) digits = digits && c >= '0' && c <= '9';
    if (!digits) return respond(JsonErrorResponse(400, "Inference-Header-Content-Length '" + h.substr(0, 32) + "' is not a byte count"));
    json_bytes = static_cast<size_t>(std::stoull(h));
  }
  // Parse and queue on a parse thread; the I/O thread goes back to its connections.
  auto respond_later = std::make_shared<HttpResponder>(std::move(respond));
  bool queued = parse_queue_.Push(
      [inst, body = std::move(req.body), respond_later, json_bytes] { inst->Infer(body, *respond_later, json_bytes); },
      kMaxParseQueue);
  if (!queued) (*respond_later)(JsonErrorResponse(503, "too many requests are waiting to be parsed: retry later"));
}

void InferenceServer::HandleRepository(const HttpRequest& req, const std::vector<std::string>& seg,
                                       HttpResponder respond) {
  if (seg.size() == 3 && seg[2] == "index") return respond(Reply(200, json::parse(RepositoryIndexJson())));
  if (seg.size() == 5 && seg[2] == "models" && (seg[4] == "load" || seg[4] == "unload")) {
    if (repository_.empty()) {
      return respond(JsonErrorResponse(400, "this server serves one artifact; load and unload need --model-repository"));
    }
    std::string name = seg[3];
    bool load = seg[4] == "load";
    auto respond_later = std::make_shared<HttpResponder>(std::move(respond));
    bool queued = control_queue_.Push([this, name, load, respond_later] {
      Status s = load ? LoadModel(name) : UnloadModel(name);
      if (s.ok()) return (*respond_later)(Reply(200, json::object()));
      (*respond_later)(JsonErrorResponse(HttpStatusOf(s), s.message()));
    });
    if (!queued) (*respond_later)(JsonErrorResponse(503, "the server is shutting down"));
    return;
  }
  respond(JsonErrorResponse(404, "no endpoint " + req.method + " " + req.path));
}

bool TaskQueue::Push(std::function<void()> task, size_t max) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stop_ || tasks_.size() >= max) return false;
    tasks_.push_back(std::move(task));
  }
  cv_.notify_one();
  return true;
}

void TaskQueue::Run() {
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    cv_.wait(lock, [&] { return stop_ || !tasks_.empty(); });
    if (tasks_.empty()) return;
    auto task = std::move(tasks_.front());
    tasks_.pop_front();
    lock.unlock();
    task();
    task = nullptr;  // what it holds (a request's body) goes now, not with the next task
    lock.lock();
  }
}

void TaskQueue::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
}

Status InferenceServer::LoadModel(const std::string& name) {
  if (repository_.empty()) return FailedPrecondition("this server serves one artifact; it has no repository");
  RETURN_IF_ERROR(CheckModelName(name));
  std::lock_guard<std::mutex> serial(load_mu_);
  ModelEntry entry;
  Status result = OkStatus();
  auto config = ReadModelConfig(repository_, name, BatchingFrom(options_));
  auto versions = config.ok() ? ListVersions(repository_, name, config->latest_only)
                              : StatusOr<std::vector<VersionEntry>>(config.status());
  if (!versions.ok()) {
    if (versions.status().code() == StatusCode::kNotFound) {
      std::lock_guard<std::mutex> lock(registry_mu_);
      if (models_.count(name) == 0) return versions.status();
    }
    entry.reason = versions.status().message();
    result = versions.status();
  } else {
    std::string reasons;
    for (const VersionEntry& v : *versions) {
      if (v.version.empty()) {
        entry.reason = v.error;
        reasons = v.error;
        continue;
      }
      Version out{v.version, nullptr, v.error};
      if (v.error.empty()) {
        auto model = runtime::Model::Load(v.artifact);
        Status st = model.status();
        if (model.ok()) {
          auto inst = ModelInstance::Create(name, v.version, *model, config->batching);
          st = inst.status();
          if (inst.ok()) st = (*inst)->Start();
          if (st.ok()) out.instance = *inst;
        }
        if (!st.ok()) out.reason = st.message();
      }
      if (!out.instance) reasons += (reasons.empty() ? "" : "; ") + ("version " + v.version + ": " + out.reason);
      entry.versions.push_back(std::move(out));
    }
    bool any = false;
    for (const auto& v : entry.versions) any = any || v.instance != nullptr;
    if (!any) result = InvalidArgument("model '" + name + "': no version could be loaded: " + reasons);
  }
  std::sort(entry.versions.begin(), entry.versions.end(),
            [](const Version& a, const Version& b) { return VersionLess(a.version, b.version); });
  ModelEntry old;
  {
    std::lock_guard<std::mutex> lock(registry_mu_);
    old = std::move(models_[name]);
    models_[name] = std::move(entry);
  }
  // The replaced versions finish their queued requests; their memory goes with the last
  // reference (a request being routed may still hold one for a moment).
  for (auto& v : old.versions) {
    if (v.instance) v.instance->Stop();
  }
  return result;
}

Status InferenceServer::UnloadModel(const std::string& name) {
  if (repository_.empty()) return FailedPrecondition("this server serves one artifact; it has no repository");
  std::lock_guard<std::mutex> serial(load_mu_);
  ModelEntry old;
  {
    std::lock_guard<std::mutex> lock(registry_mu_);
    auto it = models_.find(name);
    bool loaded = false;
    if (it != models_.end()) {
      for (const auto& v : it->second.versions) loaded = loaded || v.instance != nullptr;
    }
    if (!loaded) return NotFound("model '" + name + "' is not loaded");
    old = std::move(it->second);
    it->second = ModelEntry();
    it->second.reason = "unloaded";
  }
  for (auto& v : old.versions) {
    if (v.instance) v.instance->Stop();
  }
  return OkStatus();
}

std::string InferenceServer::RepositoryIndexJson() const {
  json out = json::array();
  std::set<std::string> listed;
  {
    std::lock_guard<std::mutex> lock(registry_mu_);
    for (const auto& [name, entry] : models_) {
      listed.insert(name);
      if (entry.versions.empty()) {
        out.push_back({{"name", name}, {"state", "UNAVAILABLE"}, {"reason", entry.reason}});
      }
      for (const auto& v : entry.versions) {
        json row = {{"name", name}, {"version", v.version}, {"state", v.instance ? "READY" : "UNAVAILABLE"}};
        if (!v.instance) row["reason"] = v.reason;
        out.push_back(row);
      }
    }
  }
  if (!repository_.empty()) {
    auto names = ListModels(repository_);
    if (names.ok()) {
      for (const auto& n : *names) {
        if (!listed.count(n)) out.push_back({{"name", n}, {"state", "UNAVAILABLE"}, {"reason", "not loaded"}});
      }
    }
  }
  return out.dump(-1, ' ', false, json::error_handler_t::replace);
}

Status InferenceServer::Start() {
  // Request bodies and their tensors of 1 MiB and more are mmapped, so freeing them gives
  // the memory back to the system (glibc would otherwise raise its threshold to the
  // largest freed block and keep such blocks on its heap).
  mallopt(M_MMAP_THRESHOLD, 1 << 20);
  if (!repository_.empty()) {
    ASSIGN_OR_RETURN(auto names, ListModels(repository_));
    for (const auto& n : names) {
      Status s = LoadModel(n);  // a model that fails is UNAVAILABLE with its reason
      if (!s.ok()) std::fprintf(stderr, "kiln serve: model '%s' is unavailable: %s\n", n.c_str(), s.message().c_str());
    }
  } else {
    for (auto& inst : Instances()) RETURN_IF_ERROR(inst->Start());
  }
  control_ = std::thread([this] { control_queue_.Run(); });
  for (int i = 0; i < std::max(2, static_cast<int>(std::thread::hardware_concurrency())); ++i) {
    parsers_.emplace_back([this] { parse_queue_.Run(); });
  }
  HttpOptions http;
  http.host = options_.host;
  http.port = options_.port;
  http.io_threads = options_.http_threads;
  http.max_connections = options_.max_connections;
  http.max_body_bytes = options_.max_body_bytes;
  http.header_timeout_ms = options_.header_timeout_ms;
  http.body_timeout_ms = options_.body_timeout_ms;
  http.idle_timeout_ms = options_.idle_timeout_ms;
  http.tls_cert_file = options_.tls_cert_file;
  http.tls_key_file = options_.tls_key_file;
  auto server = HttpServer::Start(http, [this](HttpRequest req, HttpResponder respond) {
    Handle(std::move(req), std::move(respond));
  });
  if (!server.ok()) return InvalidArgument("serve: " + server.status().message());
  http_ = std::move(*server);
  port_ = http_->port();
  if (options_.metrics_port >= 0) {
    HttpOptions m;
    m.host = options_.host;
    m.port = options_.metrics_port;
    m.io_threads = 1;
    m.max_connections = 64;
    m.max_body_bytes = 1 << 10;
    m.header_timeout_ms = options_.header_timeout_ms;
    m.idle_timeout_ms = options_.idle_timeout_ms;
    auto metrics = HttpServer::Start(m, [this](HttpRequest req, HttpResponder respond) {
      if (req.path != "/metrics") return respond(JsonErrorResponse(404, "this port serves GET /metrics only"));
      if (req.method != "GET") return respond(JsonErrorResponse(405, "use GET for /metrics"));
      respond(MetricsResponse());
    });
    if (!metrics.ok()) return InvalidArgument("serve: metrics port: " + metrics.status().message());
    metrics_ = std::move(*metrics);
  }
  if (options_.grpc_port >= 0) {
    GrpcBackend backend;
    backend.ready = [this] { return !shutting_down_.load(); };
    backend.find = [this](const std::string& name, const std::string& version, int* status, std::string* error) {
      return Find(name, version, status, error);
    };
    backend.extensions = Extensions();
    backend.auth_token = options_.auth_token;
    GrpcOptions grpc;
    grpc.host = options_.host;
    grpc.port = options_.grpc_port;
    grpc.max_message_bytes = options_.max_body_bytes;
    grpc.idle_timeout_ms = options_.idle_timeout_ms;
    grpc.tls_cert_file = options_.tls_cert_file;
    grpc.tls_key_file = options_.tls_key_file;
    auto g = GrpcFrontend::Start(std::move(backend), grpc);
    if (!g.ok()) return InvalidArgument("serve: " + g.status().message());
    grpc_ = std::move(*g);
  }
  return OkStatus();
}

int InferenceServer::grpc_port() const { return grpc_ ? grpc_->port() : 0; }

void InferenceServer::Shutdown() {
  std::lock_guard<std::mutex> guard(shutdown_mu_);
  if (shut_down_) return;
  shut_down_ = true;
  shutting_down_ = true;
  // 1. Stop accepting connections; requests already read are still queued and answered.
  if (http_) http_->StopAccepting();
  // gRPC: no new calls; calls in flight finish (their batches still run) for up to 10 s.
  if (grpc_) grpc_->Shutdown(10'000);
  // 2. Finish the repository requests, then every model's queued batches.
  control_queue_.Stop();
  if (control_.joinable()) control_.join();
  parse_queue_.Stop();  // the parse threads queue what waits, then end
  for (auto& t : parsers_) t.join();
  parsers_.clear();
  for (auto& inst : Instances()) inst->Stop();
  // 3. Write the last responses (up to 10 s), then close every connection.
  if (http_) http_->Stop(std::chrono::milliseconds(10'000));
  if (metrics_) metrics_->Stop(std::chrono::milliseconds(1'000));
}

int ServeUntilSignal(const std::string& artifact_path, const ServerOptions& options,
                     const std::string& repository_dir) {
  // Block SIGTERM/SIGINT in every thread (threads inherit the mask), then wait for them here.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  // A peer that closes its socket must never kill the server (Asio and gRPC send with
  // MSG_NOSIGNAL already; this covers any other write).
  std::signal(SIGPIPE, SIG_IGN);
  StatusOr<std::unique_ptr<InferenceServer>> server = InvalidArgument("serve: give an artifact or --model-repository");
  if (!repository_dir.empty()) {
    server = InferenceServer::CreateFromRepository(repository_dir, options);
  } else {
    auto model = runtime::Model::Load(artifact_path);
    if (!model.ok()) {
      std::fprintf(stderr, "kiln serve: %s\n", model.status().ToString().c_str());
      return 1;
    }
    server = InferenceServer::Create(*model, options);
  }
  if (!server.ok()) {
    std::fprintf(stderr, "kiln serve: %s\n", server.status().ToString().c_str());
    return 1;
  }
  if (Status s = (*server)->Start(); !s.ok()) {
    std::fprintf(stderr, "kiln serve: %s\n", s.ToString().c_str());
    return 1;
  }
  if (repository_dir.empty()) {
    std::printf("kiln serve: model '%s' ready on %s://%s:%d (batch up to %d, delay %lld us)\n",
                (*server)->model_name().c_str(), options.tls_cert_file.empty() ? "http" : "https", options.host.c_str(), (*server)->port(), (*server)->max_batch_size(),
                static_cast<long long>(options.batch_delay_us));
  } else {
    std::printf("kiln serve: repository %s ready on %s://%s:%d: %s\n", repository_dir.c_str(),
                options.tls_cert_file.empty() ? "http" : "https", options.host.c_str(),
                (*server)->port(), (*server)->RepositoryIndexJson().c_str());
  }
  if ((*server)->metrics_port() > 0) {
    std::printf("kiln serve: metrics on http://%s:%d/metrics\n", options.host.c_str(), (*server)->metrics_port());
  }
  if ((*server)->grpc_port() > 0) {
    std::printf("kiln serve: gRPC (inference.GRPCInferenceService%s) on %s:%d\n",
                options.tls_cert_file.empty() ? "" : ", TLS", options.host.c_str(), (*server)->grpc_port());
  }
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
