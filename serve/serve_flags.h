// Command-line flags of `kiln serve` and `kiln-serve`, shared by both binaries (CLI11).
#pragma once

#include <CLI/CLI.hpp>
#include <string>

#include "serve/server.h"

namespace kiln::serve {

// Adds --host, --port, --model-name, --max-batch-size, --batch-delay-us, --max-body-bytes,
// --http-threads and --workers to `app`, writing into `options`, with their ranges (a value
// outside is a usage error at parse time, tools/flags.h).
inline void AddServeFlags(CLI::App& app, ServerOptions& options) {
  app.add_option("--host", options.host, "address to listen on")->capture_default_str();
  app.add_option("--port", options.port, "TCP port (0 = any free port)")->check(CLI::Range(0, 65535))->capture_default_str();
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
  app.add_option("--http-threads", options.http_threads, "connections served at once")
      ->check(CLI::Range(1, 4096))
      ->capture_default_str();
  app.add_option("--workers", options.workers, "sessions running batches in parallel")
      ->check(CLI::Range(1, 256))
      ->capture_default_str();
}

}  // namespace kiln::serve
