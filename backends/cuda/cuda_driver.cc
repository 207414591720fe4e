#include "backends/cuda/cuda_driver.h"

#include <dlfcn.h>

#include <cstdlib>
#include <cstring>

namespace kiln::backends::cuda {

const std::vector<std::string>& DriverSymbolNames() {
  static const std::vector<std::string> names = {
      "cuInit",           "cuGetErrorName",        "cuGetErrorString",          "cuDeviceGetCount",
      "cuDeviceGet",      "cuDeviceGetAttribute",  "cuDevicePrimaryCtxRetain",  "cuDevicePrimaryCtxRelease_v2",
      "cuCtxSetCurrent",  "cuMemAlloc_v2",         "cuMemFree_v2",              "cuMemcpyHtoD_v2",
      "cuMemcpyDtoH_v2",  "cuStreamCreate",        "cuStreamDestroy_v2",        "cuStreamSynchronize",
      "cuModuleLoadDataEx", "cuModuleUnload",      "cuModuleGetFunction",       "cuLaunchKernel",
  };
  return names;
}

namespace {

// The DriverApi members in DriverSymbolNames() order.
std::vector<void**> Slots(DriverApi& a) {
  return {reinterpret_cast<void**>(&a.cuInit),
          reinterpret_cast<void**>(&a.cuGetErrorName),
          reinterpret_cast<void**>(&a.cuGetErrorString),
          reinterpret_cast<void**>(&a.cuDeviceGetCount),
          reinterpret_cast<void**>(&a.cuDeviceGet),
          reinterpret_cast<void**>(&a.cuDeviceGetAttribute),
          reinterpret_cast<void**>(&a.cuDevicePrimaryCtxRetain),
          reinterpret_cast<void**>(&a.cuDevicePrimaryCtxRelease),
          reinterpret_cast<void**>(&a.cuCtxSetCurrent),
          reinterpret_cast<void**>(&a.cuMemAlloc),
          reinterpret_cast<void**>(&a.cuMemFree),
          reinterpret_cast<void**>(&a.cuMemcpyHtoD),
          reinterpret_cast<void**>(&a.cuMemcpyDtoH),
          reinterpret_cast<void**>(&a.cuStreamCreate),
          reinterpret_cast<void**>(&a.cuStreamDestroy),
          reinterpret_cast<void**>(&a.cuStreamSynchronize),
          reinterpret_cast<void**>(&a.cuModuleLoadDataEx),
          reinterpret_cast<void**>(&a.cuModuleUnload),
          reinterpret_cast<void**>(&a.cuModuleGetFunction),
          reinterpret_cast<void**>(&a.cuLaunchKernel)};
}

}  // namespace

uint64_t Fnv1a(std::string_view bytes) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : bytes) h = (h ^ c) * 1099511628211ull;
  return h;
}

StatusOr<std::unique_ptr<Driver>> Driver::Load(const std::string& library) {
  std::string path = library;
  if (path.empty()) {
    const char* env = std::getenv("KILN_CUDA_DRIVER");
    path = env && *env ? env : "libcuda.so.1";
  }
  std::unique_ptr<Driver> d(new Driver());
  d->handle_ = ::dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!d->handle_) {
    const char* err = ::dlerror();
    return FailedPrecondition("no CUDA driver: dlopen(" + path + ") failed: " + (err ? err : "unknown error"));
  }
  std::vector<void**> slots = Slots(d->api_);
  const auto& names = DriverSymbolNames();
  for (size_t i = 0; i < names.size(); ++i) {
    *slots[i] = ::dlsym(d->handle_, names[i].c_str());
    if (!*slots[i]) {
      return FailedPrecondition("no CUDA driver: " + path + " has no entry point " + names[i] +
                                " (a driver older than CUDA 12?)");
    }
  }
  CUresult r = d->api_.cuInit(0);
  if (r == kCudaErrorStubLibrary) {
    return FailedPrecondition("no CUDA driver: " + path +
                              " is the CUDA toolkit's stub library (cuInit: CUDA_ERROR_STUB_LIBRARY); install the "
                              "NVIDIA driver's libcuda.so.1");
  }
  if (r == kCudaErrorNoDevice) return FailedPrecondition("no CUDA driver: cuInit found no CUDA device");
  RETURN_IF_ERROR(d->Check(r, "cuInit"));
  RETURN_IF_ERROR(d->Check(d->api_.cuDeviceGetCount(&d->device_count_), "cuDeviceGetCount"));
  if (d->device_count_ < 1) return FailedPrecondition("no CUDA driver: no CUDA device (cuDeviceGetCount = 0)");
  RETURN_IF_ERROR(d->Check(d->api_.cuDeviceGet(&d->device_, 0), "cuDeviceGet(0)"));
  int major = 0, minor = 0;
  RETURN_IF_ERROR(
      d->Check(d->api_.cuDeviceGetAttribute(&major, kAttrComputeCapabilityMajor, d->device_), "cuDeviceGetAttribute"));
  RETURN_IF_ERROR(
      d->Check(d->api_.cuDeviceGetAttribute(&minor, kAttrComputeCapabilityMinor, d->device_), "cuDeviceGetAttribute"));
  d->sm_ = "sm_" + std::to_string(major) + std::to_string(minor);
  RETURN_IF_ERROR(d->Check(d->api_.cuDevicePrimaryCtxRetain(&d->context_, d->device_), "cuDevicePrimaryCtxRetain"));
  RETURN_IF_ERROR(d->MakeCurrent());
  return d;
}

StatusOr<Driver*> Driver::Get() {
  static StatusOr<std::unique_ptr<Driver>>* loaded = new StatusOr<std::unique_ptr<Driver>>(Load());
  if (!loaded->ok()) return loaded->status();
  return loaded->value().get();
}

Driver::~Driver() {
  if (context_ && api_.cuDevicePrimaryCtxRelease) api_.cuDevicePrimaryCtxRelease(device_);
  if (handle_) ::dlclose(handle_);
}

Status Driver::Check(CUresult result, std::string_view what) const {
  if (result == kCudaSuccess) return OkStatus();
  const char* name = nullptr;
  const char* text = nullptr;
  if (api_.cuGetErrorName) api_.cuGetErrorName(result, &name);
  if (api_.cuGetErrorString) api_.cuGetErrorString(result, &text);
  return Internal(std::string(what) + ": " + (name ? name : "CUDA error " + std::to_string(result)) + " (" +
                  (text ? text : "no description") + ")");
}

Status Driver::MakeCurrent() const { return Check(api_.cuCtxSetCurrent(context_), "cuCtxSetCurrent"); }

StatusOr<CUdeviceptr> Driver::Allocate(int64_t bytes) const {
  if (bytes <= 0) return InvalidArgument("cuda: allocation of " + std::to_string(bytes) + " bytes");
  CUdeviceptr p = 0;
  CUresult r = api_.cuMemAlloc(&p, static_cast<size_t>(bytes));
  if (r != kCudaSuccess) {
    return Check(r, "cuMemAlloc(" + std::to_string(bytes) + " bytes)");
  }
  return p;
}

Status Driver::Free(CUdeviceptr ptr) const { return Check(api_.cuMemFree(ptr), "cuMemFree"); }

StatusOr<CUmodule> Driver::LoadModule(const std::string& image, std::string_view name) const {
  // PTX must be NUL-terminated for the JIT; cubins carry their own size.
  std::string data = image;
  data.push_back('\0');
  std::vector<char> error_log(16384, '\0'), info_log(4096, '\0');
  int options[] = {kJitErrorLogBuffer, kJitErrorLogBufferSizeBytes, kJitInfoLogBuffer, kJitInfoLogBufferSizeBytes};
  void* values[] = {error_log.data(), reinterpret_cast<void*>(static_cast<uintptr_t>(error_log.size())),
                    info_log.data(), reinterpret_cast<void*>(static_cast<uintptr_t>(info_log.size()))};
  CUmodule module = nullptr;
  CUresult r = api_.cuModuleLoadDataEx(&module, data.data(), 4, options, values);
  if (r != kCudaSuccess) {
    Status s = Check(r, "cuModuleLoadDataEx(" + std::string(name) + ")");
    std::string log(error_log.data());
    return Status(s.code(), s.message() + (log.empty() ? "" : "; JIT log: " + log));
  }
  return module;
}

void** KernelArgs::params() {
  pointers_.clear();
  for (size_t off : offsets_) pointers_.push_back(storage_.data() + off);
  return pointers_.data();
}

KernelArgs& KernelArgs::Add(const void* data, size_t bytes) {
  size_t off = (storage_.size() + 7) / 8 * 8;
  storage_.resize(off + 8, 0);
  std::memcpy(storage_.data() + off, data, bytes);
  offsets_.push_back(off);
  return *this;
}

StatusOr<CUfunction> ModuleCache::Function(const std::string& image, const std::string& function) {
  std::lock_guard<std::mutex> lock(mu_);
  auto key = std::make_pair(Fnv1a(image), image);
  auto it = modules_.find(key);
  if (it == modules_.end()) {
    auto module = load_(image, function);
    if (!module.ok()) return module.status().WithContext("kernel '" + function + "'");
    ++loads_;
    it = modules_.emplace(std::move(key), *module).first;
  }
  auto fkey = std::make_pair(it->second, function);
  auto f = functions_.find(fkey);
  if (f == functions_.end()) {
    auto resolved = resolve_(it->second, function);
    if (!resolved.ok()) return resolved.status().WithContext("kernel '" + function + "'");
    f = functions_.emplace(fkey, *resolved).first;
  }
  return f->second;
}

}  // namespace kiln::backends::cuda
