#include "backends/cpu/cpu_target.h"

#include <oneapi/dnnl/dnnl.hpp>

#include "backends/cpu/kernels_cpu.h"

namespace kiln::backends::cpu {
namespace {

struct IsaName {
  const char* name;
  dnnl_cpu_isa_t mask;
};
constexpr IsaName kIsas[] = {
    {"all", dnnl_cpu_isa_all},
    {"sse41", dnnl_cpu_isa_sse41},
    {"avx", dnnl_cpu_isa_avx},
    {"avx2", dnnl_cpu_isa_avx2},
    {"avx512_mic", dnnl_cpu_isa_avx512_mic},
    {"avx512_mic_4ops", dnnl_cpu_isa_avx512_mic_4ops},
    {"avx512_core", dnnl_cpu_isa_avx512_core},
    {"avx512_core_vnni", dnnl_cpu_isa_avx512_core_vnni},
    {"avx512_core_bf16", dnnl_cpu_isa_avx512_core_bf16},
    {"avx512_core_amx", dnnl_cpu_isa_avx512_core_amx},
    {"avx2_vnni", dnnl_cpu_isa_avx2_vnni},
};

class CpuTargetImpl final : public runtime::Target {
 public:
  std::string_view name() const override { return "cpu"; }
  runtime::Device device() const override { return runtime::Device::kHost; }
  std::string isa() const override {
    auto mask = static_cast<dnnl_cpu_isa_t>(dnnl_get_effective_cpu_isa());
    for (const IsaName& i : kIsas) {
      if (i.mask == mask) return i.name;
    }
    return "all";
  }
  Status CheckIsa(std::string_view isa) const override {
    int64_t want = IsaMask(isa);
    if (want < 0) return InvalidArgument("cpu target: unknown ISA '" + std::string(isa) + "'");
    int64_t have = IsaMask(this->isa());
    if ((want & have) != want) {
      return FailedPrecondition("cpu target: compiled for ISA " + std::string(isa) + ", but this machine runs " +
                                this->isa() + " (recompile on this machine or for a lower ISA)");
    }
    return OkStatus();
  }
  const runtime::StepFactory& steps() const override { return CpuSteps(); }
};

// Registered when the library is linked (alwayslink).
const bool kRegistered = runtime::RegisterTarget(&CpuTarget());

}  // namespace

int64_t IsaMask(std::string_view isa) {
  for (const IsaName& i : kIsas) {
    if (isa == i.name) return static_cast<int64_t>(i.mask);
  }
  return -1;
}

const runtime::Target& CpuTarget() {
  static const auto* target = new CpuTargetImpl();
  (void)kRegistered;
  return *target;
}

}  // namespace kiln::backends::cpu
