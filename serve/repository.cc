#include "serve/repository.h"

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

namespace kiln::serve {

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

// True when `path` (already canonical) lies inside `root` (canonical).
bool Inside(const fs::path& root, const fs::path& path) {
  auto r = root.begin(), p = path.begin();
  for (; r != root.end(); ++r, ++p) {
    if (p == path.end() || *r != *p) return false;
  }
  return true;
}

// The canonical path of `p` when it exists and lies inside `root`, else an error message.
StatusOr<fs::path> Resolve(const fs::path& root, const fs::path& p) {
  std::error_code ec;
  fs::path real = fs::canonical(p, ec);
  if (ec) return NotFound(p.string() + ": " + ec.message());
  if (!Inside(root, real)) {
    return InvalidArgument(p.string() + " resolves to " + real.string() + ", outside the repository " + root.string());
  }
  return real;
}

bool IsVersionName(const std::string& s) {
  if (s.empty() || s.size() > 18 || s[0] == '0') return false;
  return std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

}  // namespace

Status CheckModelName(const std::string& name) {
  bool ok = !name.empty() && name.size() <= 128 && name != "." && name != "..";
  for (char c : name) {
    ok = ok && ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '.' ||
                c == '-');
  }
  if (!ok) {
    return InvalidArgument("model name '" + name.substr(0, 128) +
                           "' is not 1-128 characters of [A-Za-z0-9_.-] (and not '.' or '..')");
  }
  return OkStatus();
}

StatusOr<std::string> RepositoryRoot(const std::string& dir) {
  std::error_code ec;
  fs::path real = fs::canonical(dir, ec);
  if (ec) return NotFound("model repository " + dir + ": " + ec.message());
  if (!fs::is_directory(real, ec)) return InvalidArgument("model repository " + dir + " is not a folder");
  return real.string();
}

StatusOr<std::vector<std::string>> ListModels(const std::string& root) {
  std::vector<std::string> names;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(root, ec)) {
    std::string name = e.path().filename().string();
    if (!CheckModelName(name).ok()) continue;
    if (e.is_directory(ec)) names.push_back(name);
  }
  if (ec) return InvalidArgument("model repository " + root + ": " + ec.message());
  std::sort(names.begin(), names.end());
  return names;
}

StatusOr<ModelConfig> ReadModelConfig(const std::string& root, const std::string& model,
                                      const BatchingConfig& defaults) {
  RETURN_IF_ERROR(CheckModelName(model));
  ModelConfig config;
  config.batching = defaults;
  fs::path path = fs::path(root) / model / "config.json";
  std::error_code ec;
  if (!fs::exists(path, ec)) return config;
  ASSIGN_OR_RETURN(fs::path real, Resolve(fs::path(root), path));
  std::ifstream f(real, std::ios::binary);
  std::stringstream text;
  text << f.rdbuf();
  if (text.str().size() > (1 << 20)) return InvalidArgument(path.string() + ": larger than 1 MiB");
  json j = json::parse(text.str(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) return InvalidArgument(path.string() + ": not a JSON object");
  for (auto it = j.begin(); it != j.end(); ++it) {
    const std::string& key = it.key();
    const json& v = it.value();
    auto integer = [&](int64_t lo, int64_t hi, int64_t* out) -> Status {
      if (!v.is_number_integer() || v.get<int64_t>() < lo || v.get<int64_t>() > hi) {
        return InvalidArgument(path.string() + ": \"" + key + "\" must be an integer in [" + std::to_string(lo) + ", " +
                               std::to_string(hi) + "]");
      }
      *out = v.get<int64_t>();
      return OkStatus();
    };
    int64_t n = 0;
    if (key == "max_batch_size") {
      RETURN_IF_ERROR(integer(0, 1 << 20, &n));
      config.batching.max_batch_size = static_cast<int>(n);
    } else if (key == "max_queue_delay_us") {
      RETURN_IF_ERROR(integer(0, 60'000'000, &config.batching.batch_delay_us));
    } else if (key == "instances") {
      RETURN_IF_ERROR(integer(1, 256, &n));
      config.batching.instances = static_cast<int>(n);
    } else if (key == "max_queue_size") {
      RETURN_IF_ERROR(integer(1, 1'000'000, &n));
      config.batching.max_queue = static_cast<int>(n);
    } else if (key == "request_timeout_ms") {
      RETURN_IF_ERROR(integer(0, 3'600'000, &config.batching.request_timeout_ms));
    } else if (key == "version_policy") {
      if (!v.is_string() || (v != "all" && v != "latest")) {
        return InvalidArgument(path.string() + ": \"version_policy\" must be \"all\" or \"latest\"");
      }
      config.latest_only = v == "latest";
    } else {
      return InvalidArgument(path.string() + ": unknown key \"" + key +
                             "\" (known: max_batch_size, max_queue_delay_us, instances, max_queue_size, "
                             "request_timeout_ms, version_policy)");
    }
  }
  return config;
}

StatusOr<std::vector<VersionEntry>> ListVersions(const std::string& root, const std::string& model, bool latest_only) {
  RETURN_IF_ERROR(CheckModelName(model));
  fs::path rootp(root);
  fs::path dir = rootp / model;
  std::error_code ec;
  if (!fs::exists(dir, ec)) return NotFound("model '" + model + "' is not in the repository " + root);
  ASSIGN_OR_RETURN(fs::path real_dir, Resolve(rootp, dir));
  if (!fs::is_directory(real_dir, ec)) return InvalidArgument("model '" + model + "': " + dir.string() + " is not a folder");
  std::vector<std::pair<int64_t, std::string>> numbered;
  for (const auto& e : fs::directory_iterator(real_dir, ec)) {
    std::string name = e.path().filename().string();
    if (IsVersionName(name) && e.is_directory(ec)) numbered.emplace_back(std::atoll(name.c_str()), name);
  }
  std::sort(numbered.begin(), numbered.end());
  if (latest_only && numbered.size() > 1) numbered.erase(numbered.begin(), numbered.end() - 1);
  std::vector<VersionEntry> out;
  for (const auto& [number, name] : numbered) {
    VersionEntry v;
    v.version = name;
    fs::path artifact = real_dir / name / "model.kiln";
    if (!fs::exists(artifact, ec)) {
      v.error = "no model.kiln in " + (dir / name).string();
    } else if (auto real = Resolve(rootp, artifact); !real.ok()) {
      v.error = real.status().message();
    } else {
      v.artifact = real->string();
    }
    out.push_back(std::move(v));
  }
  if (out.empty()) {
    VersionEntry none;
    none.version = "";
    none.error = "no version folders (DIR/" + model + "/<n>/model.kiln) in " + dir.string();
    out.push_back(std::move(none));
  }
  return out;
}

}  // namespace kiln::serve
