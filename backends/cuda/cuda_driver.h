// The CUDA driver API, loaded at run time (dlopen "libcuda.so.1", dlsym), so that kiln
// builds and runs on machines without a GPU or a CUDA toolkit: nothing links -lcuda, and
// no header of the toolkit is needed (the few types and constants used are declared here
// with the values of CUDA 13's cuda.h, which tests/backends/cuda/cuda_driver_test.cc checks
// against /usr/local/cuda/include/cuda.h where it exists). Versioned entry points are
// looked up by their versioned names (cuMemAlloc_v2, ...), as cuda.h's #defines map them.
//
// Source: CUDA Driver API reference (Initialization, Device Management, Primary Context,
// Memory Management, Module Management, Execution Control; cuModuleLoadDataEx's JIT
// options CU_JIT_ERROR_LOG_BUFFER / _SIZE_BYTES); TOOLCHAIN.md section 3 (no libcuda.so.1
// on the build machines, the stub returns CUDA_ERROR_STUB_LIBRARY from cuInit).
//
// NOT TESTED ON A GPU: no device was available to the sessions that wrote this; only the
// paths without a driver (missing library, stub library, argument packing, the module
// cache's keying) have run.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"

namespace kiln::backends::cuda {

// Driver API types (cuda.h): opaque handles and the result code.
using CUresult = int;
using CUdevice = int;
using CUdeviceptr = unsigned long long;
struct CUctx_st;
struct CUmod_st;
struct CUfunc_st;
struct CUstream_st;
using CUcontext = CUctx_st*;
using CUmodule = CUmod_st*;
using CUfunction = CUfunc_st*;
using CUstream = CUstream_st*;

// The cuda.h values kiln uses.
inline constexpr CUresult kCudaSuccess = 0;               // CUDA_SUCCESS
inline constexpr CUresult kCudaErrorNotInitialized = 3;   // CUDA_ERROR_NOT_INITIALIZED
inline constexpr CUresult kCudaErrorStubLibrary = 34;     // CUDA_ERROR_STUB_LIBRARY
inline constexpr CUresult kCudaErrorNoDevice = 100;       // CUDA_ERROR_NO_DEVICE
inline constexpr CUresult kCudaErrorInvalidPtx = 218;     // CUDA_ERROR_INVALID_PTX
inline constexpr int kAttrComputeCapabilityMajor = 75;    // CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR
inline constexpr int kAttrComputeCapabilityMinor = 76;    // CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR
inline constexpr int kJitInfoLogBuffer = 3;               // CU_JIT_INFO_LOG_BUFFER
inline constexpr int kJitInfoLogBufferSizeBytes = 4;      // CU_JIT_INFO_LOG_BUFFER_SIZE_BYTES
inline constexpr int kJitErrorLogBuffer = 5;              // CU_JIT_ERROR_LOG_BUFFER
inline constexpr int kJitErrorLogBufferSizeBytes = 6;     // CU_JIT_ERROR_LOG_BUFFER_SIZE_BYTES

// The entry points, resolved by dlsym (signatures as cuda.h declares them).
struct DriverApi {
  CUresult (*cuInit)(unsigned int flags) = nullptr;
  CUresult (*cuGetErrorName)(CUresult error, const char** name) = nullptr;
  CUresult (*cuGetErrorString)(CUresult error, const char** text) = nullptr;
  CUresult (*cuDeviceGetCount)(int* count) = nullptr;
  CUresult (*cuDeviceGet)(CUdevice* device, int ordinal) = nullptr;
  CUresult (*cuDeviceGetAttribute)(int* value, int attribute, CUdevice device) = nullptr;
  CUresult (*cuDevicePrimaryCtxRetain)(CUcontext* context, CUdevice device) = nullptr;
  CUresult (*cuDevicePrimaryCtxRelease)(CUdevice device) = nullptr;      // _v2
  CUresult (*cuCtxSetCurrent)(CUcontext context) = nullptr;
  CUresult (*cuMemAlloc)(CUdeviceptr* ptr, size_t bytes) = nullptr;      // _v2
  CUresult (*cuMemFree)(CUdeviceptr ptr) = nullptr;                      // _v2
  CUresult (*cuMemcpyHtoD)(CUdeviceptr dst, const void* src, size_t bytes) = nullptr;  // _v2
  CUresult (*cuMemcpyDtoH)(void* dst, CUdeviceptr src, size_t bytes) = nullptr;        // _v2
  CUresult (*cuStreamCreate)(CUstream* stream, unsigned int flags) = nullptr;
  CUresult (*cuStreamDestroy)(CUstream stream) = nullptr;                // _v2
  CUresult (*cuStreamSynchronize)(CUstream stream) = nullptr;
  CUresult (*cuModuleLoadDataEx)(CUmodule* module, const void* image, unsigned int num_options, int* options,
                                 void** option_values) = nullptr;
  CUresult (*cuModuleUnload)(CUmodule module) = nullptr;
  CUresult (*cuModuleGetFunction)(CUfunction* function, CUmodule module, const char* name) = nullptr;
  CUresult (*cuLaunchKernel)(CUfunction f, unsigned int grid_x, unsigned int grid_y, unsigned int grid_z,
                             unsigned int block_x, unsigned int block_y, unsigned int block_z,
                             unsigned int shared_bytes, CUstream stream, void** params, void** extra) = nullptr;
};

// The dlsym names of DriverApi's members, in declaration order ("cuMemAlloc_v2", ...).
const std::vector<std::string>& DriverSymbolNames();

// The loaded driver with device 0's primary context current on the calling thread.
class Driver {
 public:
  // Loads `library` ("" = $KILN_CUDA_DRIVER if set, else "libcuda.so.1"), resolves every
  // entry point, calls cuInit(0), and retains device 0's primary context. Errors:
  // FailedPrecondition "no CUDA driver: ..." when the library cannot be opened (with
  // dlerror's text), lacks an entry point (naming it), is the toolkit's stub
  // (CUDA_ERROR_STUB_LIBRARY from cuInit) or finds no device; Internal for other driver
  // errors (named, e.g. "cuInit: CUDA_ERROR_... (text)").
  static StatusOr<std::unique_ptr<Driver>> Load(const std::string& library = "");
  // The process's driver, loaded on first use; a failure is remembered and returned again.
  static StatusOr<Driver*> Get();
  ~Driver();
  Driver(const Driver&) = delete;
  Driver& operator=(const Driver&) = delete;

  const DriverApi& api() const { return api_; }
  // Device 0's compute capability as kiln names ISAs, e.g. "sm_90" (9.0), "sm_80".
  const std::string& sm() const { return sm_; }
  int device_count() const { return device_count_; }
  // OK for kCudaSuccess; else Internal "<what>: <CUDA_ERROR_NAME> (<text>)".
  Status Check(CUresult result, std::string_view what) const;
  // Makes the primary context current on the calling thread (each thread that launches).
  Status MakeCurrent() const;

  // Device memory: `bytes` (> 0) on device 0. Errors: InvalidArgument for bytes <= 0;
  // Check's errors naming the size (e.g. CUDA_ERROR_OUT_OF_MEMORY).
  StatusOr<CUdeviceptr> Allocate(int64_t bytes) const;
  Status Free(CUdeviceptr ptr) const;

  // Loads a PTX or cubin image (cuModuleLoadDataEx) with the JIT's error log captured:
  // errors name the module and carry the log (e.g. ptxas's message for bad PTX).
  StatusOr<CUmodule> LoadModule(const std::string& image, std::string_view name) const;

 private:
  Driver() = default;
  void* handle_ = nullptr;
  DriverApi api_;
  CUdevice device_ = 0;
  CUcontext context_ = nullptr;
  int device_count_ = 0;
  std::string sm_;
};

// The parameter array of cuLaunchKernel: each argument's bytes kept in stable storage and
// an array of pointers to them, in argument order (the driver reads argument i from
// params()[i], its size from the kernel's signature). Source: CUDA Driver API,
// cuLaunchKernel ("kernelParams").
class KernelArgs {
 public:
  KernelArgs& Pointer(CUdeviceptr p) { return Add(&p, sizeof p); }
  KernelArgs& Int32(int32_t v) { return Add(&v, sizeof v); }
  KernelArgs& Int64(int64_t v) { return Add(&v, sizeof v); }
  KernelArgs& Float(float v) { return Add(&v, sizeof v); }
  // The pointers to the arguments' bytes (valid until the next Add).
  void** params();
  size_t size() const { return offsets_.size(); }
  // The bytes of argument i (for tests).
  const uint8_t* bytes(size_t i) const { return storage_.data() + offsets_.at(i); }

 private:
  KernelArgs& Add(const void* data, size_t bytes);
  std::vector<uint8_t> storage_;  // each argument 8-byte aligned
  std::vector<size_t> offsets_;
  std::vector<void*> pointers_;
};

// Loaded modules by image (FNV-1a of the bytes plus the bytes themselves, so equal images
// from different artifacts load once) and their functions by name. Thread-safe. `load` is
// Driver::LoadModule in the runtime; tests pass their own.
class ModuleCache {
 public:
  using Loader = std::function<StatusOr<CUmodule>(const std::string& image, std::string_view name)>;
  using Resolver = std::function<StatusOr<CUfunction>(CUmodule module, const std::string& function)>;
  ModuleCache(Loader load, Resolver resolve) : load_(std::move(load)), resolve_(std::move(resolve)) {}
  // The function `function` of the module `image` (loaded on first use). Errors: the
  // loader's or the resolver's, with the function named.
  StatusOr<CUfunction> Function(const std::string& image, const std::string& function);
  int modules_loaded() const { return loads_; }

 private:
  Loader load_;
  Resolver resolve_;
  std::mutex mu_;
  std::map<std::pair<uint64_t, std::string>, CUmodule> modules_;  // (hash, image) -> module
  std::map<std::pair<CUmodule, std::string>, CUfunction> functions_;
  int loads_ = 0;
};

// FNV-1a, 64 bit.
uint64_t Fnv1a(std::string_view bytes);

}  // namespace kiln::backends::cuda
