// Command-line flags of `kiln serve` and `kiln-serve`, shared by both binaries (CLI11).
#pragma once

#include <CLI/CLI.hpp>
#include <string>

#include "serve/server.h"

namespace kiln::serve {

// Adds --host, --port, --model-name, --max-batch-size, --batch-delay-us, --max-body-bytes,
// --http-threads and --workers to `app`, writing into `options`.
inline void AddServeFlags(CLI::App& app, ServerOptions& options) {
  app.add_option("--host", options.host, "address to listen on")->capture_default_str();
  app.add_option("--port", options.port, "TCP port (0 = any free port)")->capture_default_str();
  app.add_option("--model-name", options.model_name, "model name in URLs (default: the artifact's name)");
  app.add_option("--max-batch-size", options.max_batch_size,
                 "samples per batched run, at most the artifact's batch (0 = the artifact's batch)")
      ->capture_default_str();
  app.add_option("--batch-delay-us", options.batch_delay_us,
                 "microseconds the first queued request waits for others to batch with")
      ->capture_default_str();
  app.add_option("--max-body-bytes", options.max_body_bytes, "larger request bodies get HTTP 413")
      ->capture_default_str();
  app.add_option("--http-threads", options.http_threads, "connections served at once")->capture_default_str();
  app.add_option("--workers", options.workers, "sessions running batches in parallel")->capture_default_str();
}

}  // namespace kiln::serve
