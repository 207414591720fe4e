// The CUDA driver loader without a GPU (backends/cuda/cuda_driver.h): a missing library and
// the toolkit's stub give "no CUDA driver" errors, the constants declared in place of cuda.h
// equal cuda.h's where the toolkit is installed, kernel arguments are packed as
// cuLaunchKernel reads them, the module cache loads an image once and resolves each
// function once, and SM version lists parse and check. On a machine with a driver the
// last case also checks what it reports; without one it says "skipped: no CUDA driver".
#include <catch2/catch.hpp>

#include <cstring>
#include <fstream>
#include <sstream>

#include "backends/cuda/cuda_driver.h"
#include "backends/cuda/cuda_target.h"

namespace kiln::backends::cuda {
namespace {

TEST_CASE("a missing driver library is a clear FailedPrecondition", "[cuda][driver]") {
  auto d = Driver::Load("/nonexistent/libcuda.so.1");
  REQUIRE_FALSE(d.ok());
  CHECK(d.status().code() == StatusCode::kFailedPrecondition);
  CHECK_THAT(d.status().message(), Catch::StartsWith("no CUDA driver: dlopen(/nonexistent/libcuda.so.1) failed"));
}

TEST_CASE("the toolkit's stub libcuda is recognised, not used", "[cuda][driver]") {
  const char* stub = "/usr/local/cuda/lib64/stubs/libcuda.so";
  if (!std::ifstream(stub).good()) {
    WARN("skipped: no CUDA toolkit stub at " << stub);
    return;
  }
  auto d = Driver::Load(stub);
  REQUIRE_FALSE(d.ok());
  CHECK(d.status().code() == StatusCode::kFailedPrecondition);
  CHECK_THAT(d.status().message(), Catch::Contains("stub library") && Catch::Contains("CUDA_ERROR_STUB_LIBRARY"));
}

TEST_CASE("the driver constants equal cuda.h's", "[cuda][driver]") {
  std::ifstream f("/usr/local/cuda/include/cuda.h");
  if (!f.good()) {
    WARN("skipped: no /usr/local/cuda/include/cuda.h");
    return;
  }
  std::stringstream text;
  text << f.rdbuf();
  std::string h = text.str();
  // "    NAME   = 34," on a line of its own (an enumerator).
  auto value = [&](const std::string& name) -> long {
    std::istringstream lines(h);
    std::string line;
    while (std::getline(lines, line)) {
      size_t at = line.find_first_not_of(" \t");
      if (at == std::string::npos || line.compare(at, name.size(), name) != 0) continue;
      size_t eq = line.find_first_not_of(" \t", at + name.size());
      if (eq == std::string::npos || line[eq] != '=') continue;
      return std::strtol(line.c_str() + eq + 1, nullptr, 0);
    }
    FAIL("no enumerator " << name << " in cuda.h");
    return -1;
  };
  CHECK(value("CUDA_SUCCESS") == kCudaSuccess);
  CHECK(value("CUDA_ERROR_NOT_INITIALIZED") == kCudaErrorNotInitialized);
  CHECK(value("CUDA_ERROR_STUB_LIBRARY") == kCudaErrorStubLibrary);
  CHECK(value("CUDA_ERROR_NO_DEVICE") == kCudaErrorNoDevice);
  CHECK(value("CUDA_ERROR_INVALID_PTX") == kCudaErrorInvalidPtx);
  CHECK(value("CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR") == kAttrComputeCapabilityMajor);
  CHECK(value("CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR") == kAttrComputeCapabilityMinor);
  CHECK(value("CU_JIT_INFO_LOG_BUFFER") == kJitInfoLogBuffer);
  CHECK(value("CU_JIT_INFO_LOG_BUFFER_SIZE_BYTES") == kJitInfoLogBufferSizeBytes);
  CHECK(value("CU_JIT_ERROR_LOG_BUFFER") == kJitErrorLogBuffer);
  CHECK(value("CU_JIT_ERROR_LOG_BUFFER_SIZE_BYTES") == kJitErrorLogBufferSizeBytes);
  // The versioned entry points are the names cuda.h maps the plain ones to.
  for (const std::string& name : DriverSymbolNames()) {
    INFO(name);
    size_t v = name.find("_v2");
    if (v == std::string::npos) {
      CHECK(h.find(name + "(") != std::string::npos);
    } else {
      CHECK(h.find(name.substr(0, v)) != std::string::npos);
      CHECK(h.find(name) != std::string::npos);
    }
  }
}

TEST_CASE("kernel arguments are packed as cuLaunchKernel reads them", "[cuda][driver]") {
  KernelArgs args;
  args.Pointer(0x1234567890ull).Int32(-7).Float(2.5f).Int64(int64_t{1} << 40);
  REQUIRE(args.size() == 4);
  void** p = args.params();
  CHECK(*static_cast<CUdeviceptr*>(p[0]) == 0x1234567890ull);
  CHECK(*static_cast<int32_t*>(p[1]) == -7);
  CHECK(*static_cast<float*>(p[2]) == 2.5f);
  CHECK(*static_cast<int64_t*>(p[3]) == (int64_t{1} << 40));
  for (size_t i = 0; i < args.size(); ++i) {
    CHECK(reinterpret_cast<uintptr_t>(p[i]) % 8 == 0);
    CHECK(p[i] == args.bytes(i));
  }
}

TEST_CASE("the module cache loads an image once and resolves a function once", "[cuda][driver]") {
  int loads = 0, resolves = 0;
  auto* fake_module = reinterpret_cast<CUmodule>(uintptr_t{0x1000});
  ModuleCache cache(
      [&](const std::string& image, std::string_view) -> StatusOr<CUmodule> {
        ++loads;
        if (image == "bad ptx") return Internal("cuModuleLoadDataEx: CUDA_ERROR_INVALID_PTX (a PTX JIT compilation failed)");
        return reinterpret_cast<CUmodule>(reinterpret_cast<uintptr_t>(fake_module) + static_cast<uintptr_t>(loads));
      },
      [&](CUmodule m, const std::string& name) -> StatusOr<CUfunction> {
        ++resolves;
        if (name == "missing") return Internal("cuModuleGetFunction: CUDA_ERROR_NOT_FOUND");
        return reinterpret_cast<CUfunction>(reinterpret_cast<uintptr_t>(m) + name.size());
      });
  auto a = cache.Function(".entry relu", "relu");
  auto b = cache.Function(".entry relu", "relu");
  REQUIRE(a.ok());
  REQUIRE(b.ok());
  CHECK(*a == *b);
  CHECK(loads == 1);
  CHECK(resolves == 1);
  auto c = cache.Function(".entry relu", "relu6");  // another function of the same module
  REQUIRE(c.ok());
  CHECK(loads == 1);
  CHECK(resolves == 2);
  auto d = cache.Function(".entry sgd", "sgd");  // another image
  REQUIRE(d.ok());
  CHECK(loads == 2);
  CHECK(cache.modules_loaded() == 2);
  auto bad = cache.Function("bad ptx", "k");
  REQUIRE_FALSE(bad.ok());
  CHECK_THAT(bad.status().message(), Catch::Contains("kernel 'k'") && Catch::Contains("CUDA_ERROR_INVALID_PTX"));
  auto missing = cache.Function(".entry relu", "missing");
  REQUIRE_FALSE(missing.ok());
  CHECK_THAT(missing.status().message(), Catch::Contains("kernel 'missing'"));
}

TEST_CASE("SM version lists parse and check forward compatibility", "[cuda][target]") {
  auto list = ParseSmList("sm_80,sm_90");
  REQUIRE(list.ok());
  CHECK(*list == std::vector<int>{80, 90});
  for (const char* bad : {"", "sm_", "sm_9x", "avx2", "sm_80,", "sm_8", "sm_1000"}) {
    INFO(bad);
    auto r = ParseSmList(bad);
    REQUIRE_FALSE(r.ok());
    CHECK(r.status().code() == StatusCode::kInvalidArgument);
  }
  CHECK(CheckSm(90, {80, 90}).ok());
  CHECK(CheckSm(86, {80, 90}).ok());   // the sm_80 code runs (PTX JIT or cubin of the same major)
  CHECK(CheckSm(100, {80, 90}).ok());  // PTX is JIT-compiled for newer GPUs
  Status old = CheckSm(75, {80, 90});
  CHECK(old.code() == StatusCode::kFailedPrecondition);
  CHECK_THAT(old.message(), Catch::Contains("sm_80,sm_90") && Catch::Contains("sm_75"));
}

TEST_CASE("the cuda target reports the driver it has", "[cuda][target][gpu]") {
  const runtime::Target& t = CudaTarget();
  CHECK(t.name() == "cuda");
  CHECK(t.device() == runtime::Device::kCuda);
  CHECK(t.isa() == std::string(kCompiledSms));
  auto driver = Driver::Get();
  Status isa = t.CheckIsa(kCompiledSms);
  if (!driver.ok()) {
    WARN("skipped: no CUDA driver (" << driver.status().message() << ")");
    CHECK(isa.code() == StatusCode::kFailedPrecondition);
    CHECK_THAT(isa.message(), Catch::StartsWith("no CUDA driver"));
    CHECK_THROWS_AS(t.AllocateArena(64), std::bad_alloc);
    return;
  }
  CHECK((*driver)->device_count() >= 1);
  CHECK(ParseSmList((*driver)->sm()).ok());
  CHECK(isa.ok());
  void* arena = t.AllocateArena(1 << 20);
  CHECK(arena != nullptr);
  t.FreeArena(arena);
}

}  // namespace
}  // namespace kiln::backends::cuda
