// A model repository in Triton's layout, read by kiln-serve --model-repository DIR:
//
//   DIR/<model>/config.json          optional; batching and instances (below)
//   DIR/<model>/<version>/model.kiln  one artifact per version; versions are positive integers
//
// config.json (every key optional; the server's flags give the defaults):
//   {"max_batch_size": 8,             samples per run, at most the artifact's batch
//    "max_queue_delay_us": 2000,      Triton's dynamic_batching.max_queue_delay_microseconds
//    "instances": 1,                  sessions running batches in parallel (instance_group count)
//    "max_queue_size": 256,           queued requests before 503
//    "request_timeout_ms": 30000,     a request still queued after this gets 504 (0 = none)
//    "version_policy": "all"}         "all" versions, or "latest" (the highest only)
// Unknown keys are an error (a typo must not silently fall back to a default). Triton writes
// its config as protobuf text (config.pbtxt); kiln takes the same fields as JSON.
// Source: Triton Inference Server, "Model Repository" and "Model Configuration" docs.
//
// Paths are untrusted: a model name must be 1-128 characters of [A-Za-z0-9_.-] and not "."
// or ".."; the model folder, the version folder and model.kiln must resolve (symlinks
// followed) to paths inside the repository's real path, else the version is refused.
#pragma once

#include <string>
#include <vector>

#include "base/status.h"
#include "serve/model_instance.h"

namespace kiln::serve {

struct ModelConfig {
  BatchingConfig batching;
  bool latest_only = false;  // version_policy "latest"
};

struct VersionEntry {
  std::string version;   // the folder name, e.g. "3"
  std::string artifact;  // the real path of its model.kiln; "" when `error` is set
  std::string error;     // why this version cannot be loaded ("" = loadable)
};

// InvalidArgument unless `name` is a safe model name (above).
Status CheckModelName(const std::string& name);

// The real path of the repository folder. Errors: NotFound / InvalidArgument (not a folder).
StatusOr<std::string> RepositoryRoot(const std::string& dir);

// The model folders under `root` (sorted); entries with unsafe names are skipped.
StatusOr<std::vector<std::string>> ListModels(const std::string& root);

// Reads `root/<model>/config.json` over `defaults` (absent: the defaults). Errors:
// InvalidArgument naming the file and the key (malformed JSON, unknown key, wrong type or
// value out of range).
StatusOr<ModelConfig> ReadModelConfig(const std::string& root, const std::string& model,
                                      const BatchingConfig& defaults);

// The model's versions (numeric folders, in increasing order; only the highest with
// `latest_only`), each with its artifact path or the reason it cannot be loaded (no
// model.kiln, a path escaping the repository). Errors: NotFound when the model's folder
// does not exist; InvalidArgument for an unsafe name or a folder outside the repository.
StatusOr<std::vector<VersionEntry>> ListVersions(const std::string& root, const std::string& model, bool latest_only);

}  // namespace kiln::serve
