#include "backends/cuda/cuda_target.h"

#include <new>

#include "backends/cuda/cuda_driver.h"

namespace kiln::backends::cuda {
namespace {

std::string SmText(int sm) { return "sm_" + std::to_string(sm); }

class CudaStepsImpl final : public runtime::StepFactory {
 public:
  StatusOr<std::unique_ptr<runtime::Step>> Create(const runtime::StepDesc& desc) const override {
    RETURN_IF_ERROR(Driver::Get().status());
    return Unimplemented("cuda target: no GPU kernel for step kind '" + desc.kind + "' (" + desc.Where() +
                         ") yet: the cuda backend's kernels are not written (issue 16)");
  }
  StatusOr<int64_t> ScratchBytes(const runtime::StepDesc&) const override { return int64_t{0}; }
};

class CudaTargetImpl final : public runtime::Target {
 public:
  std::string_view name() const override { return "cuda"; }
  runtime::Device device() const override { return runtime::Device::kCuda; }
  std::string isa() const override { return kCompiledSms; }
  Status CheckIsa(std::string_view isa) const override {
    ASSIGN_OR_RETURN(std::vector<int> compiled, ParseSmList(isa));
    ASSIGN_OR_RETURN(Driver * driver, Driver::Get());
    ASSIGN_OR_RETURN(std::vector<int> device, ParseSmList(driver->sm()));
    return CheckSm(device[0], compiled);
  }
  const runtime::StepFactory& steps() const override { return CudaSteps(); }
  void* AllocateArena(int64_t bytes) const override {
    auto driver = Driver::Get();
    if (!driver.ok()) throw std::bad_alloc();
    auto p = (*driver)->Allocate(bytes);
    if (!p.ok()) throw std::bad_alloc();
    return reinterpret_cast<void*>(static_cast<uintptr_t>(*p));
  }
  void FreeArena(void* arena) const override {
    if (!arena) return;
    auto driver = Driver::Get();
    if (driver.ok()) (void)(*driver)->Free(static_cast<CUdeviceptr>(reinterpret_cast<uintptr_t>(arena)));
  }
};

}  // namespace

StatusOr<std::vector<int>> ParseSmList(std::string_view isa) {
  std::vector<int> out;
  size_t start = 0;
  while (start <= isa.size()) {
    size_t comma = isa.find(',', start);
    std::string_view item = isa.substr(start, comma == std::string_view::npos ? std::string_view::npos : comma - start);
    bool ok = item.size() >= 5 && item.size() <= 6 && item.substr(0, 3) == "sm_";
    int value = 0;
    for (size_t i = 3; ok && i < item.size(); ++i) {
      ok = item[i] >= '0' && item[i] <= '9';
      value = value * 10 + (item[i] - '0');
    }
    if (!ok || value < 50 || value > 199) {
      return InvalidArgument("cuda: '" + std::string(item) + "' in ISA \"" + std::string(isa) +
                             "\" is not an SM version sm_<NN> (e.g. sm_90)");
    }
    out.push_back(value);
    if (comma == std::string_view::npos) break;
    start = comma + 1;
  }
  return out;
}

Status CheckSm(int device_sm, const std::vector<int>& compiled) {
  std::string list;
  for (int sm : compiled) {
    if (sm <= device_sm) return OkStatus();
    list += (list.empty() ? "" : ",") + SmText(sm);
  }
  return FailedPrecondition("cuda: the artifact was compiled for " + list + ", this GPU is " + SmText(device_sm) +
                            " (older): recompile for " + SmText(device_sm));
}

const runtime::StepFactory& CudaSteps() {
  static const auto* steps = new CudaStepsImpl();
  return *steps;
}

const runtime::Target& CudaTarget() {
  static const auto* target = new CudaTargetImpl();
  return *target;
}

namespace {
const bool kRegistered = runtime::RegisterTarget(&CudaTarget());
}  // namespace

}  // namespace kiln::backends::cuda
