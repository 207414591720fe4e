// libFuzzer target for the .params reader (runtime/parameter_store.h ParseParams): any
// bytes must give a Status, never a crash, a huge allocation or a sanitizer report; a file
// that parses must write back to bytes that parse to the same tensors. Built and run by
// tools/fuzz.sh with clang++ -fsanitize=fuzzer,address,undefined.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <unistd.h>

#include "runtime/parameter_store.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace kiln;
  auto params = runtime::ParseParams(std::string(reinterpret_cast<const char*>(data), size), "fuzz.params");
  if (!params.ok()) return 0;
  // Round trip through the writer (with its checksum trailer): write a temp file, read it
  // back, compare.
  std::vector<std::pair<std::string, const Tensor*>> entries;
  for (const auto& [name, t] : *params) entries.emplace_back(name, &t);
  std::string path = "/tmp/kiln_params_fuzz." + std::to_string(::getpid()) + ".params";
  if (!runtime::WriteParamsFile(path, entries).ok()) return 0;
  auto back = runtime::ReadParamsFile(path);
  std::remove(path.c_str());
  if (!back.ok() || back->size() != params->size()) {
    std::fprintf(stderr, "written file does not read back: %s\n", back.ok() ? "count" : back.status().ToString().c_str());
    std::abort();
  }
  for (const auto& [name, t] : *params) {
    const Tensor& b = back->at(name);
    if (b.dtype() != t.dtype() || b.shape() != t.shape() ||
        std::memcmp(b.data(), t.data(), static_cast<size_t>(t.size_bytes())) != 0) {
      std::fprintf(stderr, "tensor '%s' changed in the round trip\n", name.c_str());
      std::abort();
    }
  }
  return 0;
}
