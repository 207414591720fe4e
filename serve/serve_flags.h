// Command-line flags of `kiln serve` and `kiln-serve`, shared by both binaries (CLI11).
#pragma once

#include <CLI/CLI.hpp>
#include <string>

#include "serve/server.h"

namespace kiln::serve {

// Adds what to serve: the positional `artifact` or `--model-repository DIR`, exactly one
// (neither or both is a usage error at parse time).
inline void AddServeSource(CLI::App& app, std::string& artifact, std::string& repository) {
  auto* a = app.add_option("artifact", artifact, "the .kiln file to serve (or --model-repository)");
  auto* r = app.add_option("--model-repository", repository,
                           "serve every model of this folder, DIR/<model>/<version>/model.kiln (serve/repository.h)");
  a->excludes(r);
  app.callback([&artifact, &repository] {
    if (artifact.empty() && repository.empty()) throw CLI::RequiredError("an artifact or --model-repository");
  });
}

// Adds --host, --port, --model-name, --max-batch-size, --batch-delay-us, --max-body-bytes,
// --http-threads, --workers, --max-connections, the header/body/idle timeouts, --max-queue,
// --request-timeout-ms, --auth-token-file and --admin-token-file to `app`, writing into
// `options`, with their ranges (a value outside is a usage error at parse time,
// tools/flags.h).
inline void AddServeFlags(CLI::App& app, ServerOptions& options) {
  // Token files are read at parse time (a missing or malformed file is a usage error).
  auto token_from = [](std::string* out) {
    return [out](const std::string& path) {
      auto token = ReadTokenFile(path);
      if (!token.ok()) throw CLI::ValidationError(token.status().message());
      *out = *token;
    };
  };
  app.add_option_function<std::string>("--auth-token-file", token_from(&options.auth_token),
                                        "every endpoint but /v2/health/live needs this file's bearer token");
  app.add_option_function<std::string>("--admin-token-file", token_from(&options.admin_token),
                                        "the repository endpoints (load, unload, index) need this file's bearer token");
  app.add_option("--host", options.host, "address to listen on")->capture_default_str();
  app.add_option("--port", options.port, "TCP port (0 = any free port)")->check(CLI::Range(0, 65535))->capture_default_str();
  app.add_option("--tls-cert-file", options.tls_cert_file,
                 "PEM certificate chain: serve HTTPS (and gRPC over TLS) only; needs --tls-key-file")
      ->check(CLI::ExistingFile);
  app.add_option("--tls-key-file", options.tls_key_file, "PEM private key of --tls-cert-file")
      ->check(CLI::ExistingFile);
  app.add_option("--metrics-port", options.metrics_port,
                 "also serve GET /metrics on this TCP port, plain HTTP without a token (0 = any free port; "
                 "default: /metrics on --port only)")
      ->check(CLI::Range(0, 65535));
  app.add_option("--grpc-port", options.grpc_port,
                 "also serve KServe v2 gRPC (inference.GRPCInferenceService) on this TCP port (0 = any free port; "
                 "default: no gRPC)")
      ->check(CLI::Range(0, 65535));
  app.add_option("--model-name", options.model_name, "model name in URLs (default: the artifact's name)");
  app.add_option("--max-batch-size", options.max_batch_size,
                 "samples per batched run, at most the artifact's batch (0 = the artifact's batch)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  app.add_option("--batch-delay-us", options.batch_delay_us,
                 "microseconds the first queued request waits for others to batch with")
      ->check(CLI::Range(int64_t{0}, int64_t{60'000'000}))
      ->capture_default_str();
  app.add_option("--max-body-bytes", options.max_body_bytes, "larger request bodies get HTTP 413")
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 40))
      ->capture_default_str();
  app.add_option("--http-threads", options.http_threads,
                 "I/O threads (asynchronous: waiting connections hold no thread)")
      ->check(CLI::Range(1, 256))
      ->capture_default_str();
  app.add_option("--max-connections", options.max_connections, "connections open at once; one more gets 503")
      ->check(CLI::Range(1, 1'000'000))
      ->capture_default_str();
  app.add_option("--header-timeout-ms", options.header_timeout_ms,
                 "a request's headers must arrive within this many ms of their first byte")
      ->check(CLI::Range(int64_t{1}, int64_t{3'600'000}))
      ->capture_default_str();
  app.add_option("--body-timeout-ms", options.body_timeout_ms, "a request's body must arrive within this many ms")
      ->check(CLI::Range(int64_t{1}, int64_t{3'600'000}))
      ->capture_default_str();
  app.add_option("--idle-timeout-ms", options.idle_timeout_ms, "keep-alive connections idle longer are closed")
      ->check(CLI::Range(int64_t{1}, int64_t{3'600'000}))
      ->capture_default_str();
  app.add_option("--max-queue", options.max_queue, "requests waiting for a batch; one more gets 503")
      ->check(CLI::Range(1, 1'000'000))
      ->capture_default_str();
  app.add_option("--request-timeout-ms", options.request_timeout_ms,
                 "a request still queued after this many ms gets 504 (0 = no timeout)")
      ->check(CLI::Range(int64_t{0}, int64_t{3'600'000}))
      ->capture_default_str();
  app.add_option("--workers", options.workers, "sessions running batches in parallel")
      ->check(CLI::Range(1, 256))
      ->capture_default_str();
}

}  // namespace kiln::serve
